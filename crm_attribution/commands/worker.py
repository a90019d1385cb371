"""``crm-attribution worker``: run a stream worker against the configured broker."""

from __future__ import annotations

import argparse

from crm_attribution.cli import UserError
from crm_attribution.commands.common import bootstrap_from, settings_from


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand."""
    p = sub.add_parser("worker", help="run a stream worker (Faust) against Kafka")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: configured or local)")
    p.add_argument("--web-port", type=int, help="HTTP port (default: config worker.web_port)")
    p.add_argument("--data-dir", help="where the worker keeps its state")
    p.add_argument("--tick-seconds", type=float, default=5.0, help="seconds between expiry ticks")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run until stopped."""
    from stream.worker.run import run_worker

    settings = settings_from(args)
    bootstrap = bootstrap_from(settings, args.bootstrap)
    if args.web_port is not None and not 0 < args.web_port < 65536:
        raise UserError(f"--web-port {args.web_port} is not a TCP port")
    run_worker(
        settings,
        bootstrap,
        web_port=args.web_port,
        data_dir=args.data_dir,
        tick_seconds=args.tick_seconds,
    )
    return 0
