"""``crm-attribution broker start|stop|status``: the local single-node Kafka broker."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from crm_attribution.cli import UserError
from crm_attribution.commands.common import settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommand."""
    p = sub.add_parser("broker", help="start, stop or inspect the local Kafka broker")
    actions = p.add_subparsers(dest="broker_action", metavar="ACTION", required=True)
    state_help = "where broker.json records the running broker (default: the cache directory)"

    start = actions.add_parser("start", help="start the broker (fetches Kafka once via Maven)")
    start.add_argument("--port", type=int, help="client port on 127.0.0.1 (default: a free one)")
    start.add_argument("--data-dir", help="broker data directory (default: <cache>/broker-data)")
    start.add_argument("--fresh", action="store_true", help="delete the data directory first")
    start.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for it")
    start.add_argument("--state-dir", help=state_help)
    start.set_defaults(handler=run_start)

    stop = actions.add_parser("stop", help="stop the broker started by `broker start`")
    stop.add_argument("--state-dir", help=state_help)
    stop.set_defaults(handler=run_stop)

    status = actions.add_parser("status", help="show the broker; exit code 0 if it runs")
    status.add_argument("--state-dir", help=state_help)
    status.set_defaults(handler=run_status)


def run_start(args: argparse.Namespace) -> int:
    """Start the broker (or report the one running) and print its bootstrap address."""
    from stream.broker.jars import jars_cached
    from stream.broker.launcher import BrokerError, broker_status, cache_dir_for, start_broker

    settings = settings_from(args)
    if args.port is not None and not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is not a TCP port")
    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout} must be positive")
    before = broker_status(settings, args.state_dir)
    console = Console()
    if before is None or not before.running:
        version = settings.kafka.kafka_version
        fetching = not jars_cached(cache_dir_for(settings), version)
        console.print(
            f"starting Kafka {version}"
            + (" (fetching it from Maven Central first, about a minute)..." if fetching else "...")
        )
    try:
        info = start_broker(
            settings,
            port=args.port,
            data_dir=args.data_dir,
            state_dir=args.state_dir,
            fresh=args.fresh,
            timeout_s=args.timeout,
        )
    except BrokerError as error:
        raise UserError(str(error)) from None
    already = before is not None and before.pid == info.pid
    console.print(
        f"Kafka {'already running' if already else 'started'} at [bold]{info.bootstrap}[/] "
        f"(pid {info.pid}, data {info.data_dir}, log {info.log_file})",
        highlight=False,
    )
    # The address alone on the last line, for scripts: BOOTSTRAP=$(... | tail -1).
    print(info.bootstrap)
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Stop the recorded broker."""
    from stream.broker.launcher import BrokerError, stop_broker

    settings = settings_from(args)
    try:
        info = stop_broker(settings, args.state_dir)
    except BrokerError as error:
        raise UserError(str(error)) from None
    console = Console()
    if info is None:
        console.print("no local broker was running")
    else:
        console.print(f"stopped the Kafka broker at {info.bootstrap} (pid {info.pid})")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print the broker's state; exit code 0 if it runs, 1 if not."""
    from stream.broker.launcher import broker_status

    settings = settings_from(args)
    info = broker_status(settings, args.state_dir)
    running = info is not None and info.running
    table = Table(title="local Kafka broker", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")  # paths are copied from here: never cut them
    table.add_row("status", "[green]running[/]" if running else "[red]stopped[/]")
    if info is not None:
        table.add_row("pid", str(info.pid) if running else f"{info.pid} (not running)")
        table.add_row("bootstrap", info.bootstrap)
        table.add_row("data dir", info.data_dir)
        table.add_row("log file", info.log_file)
        table.add_row("kafka", info.kafka_version)
    Console().print(table)
    return 0 if running else 1
