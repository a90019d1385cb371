"""``crm-attribution demo``: embedded Kafka, a worker and the generator, with live tables."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from crm_attribution.cli import UserError
from crm_attribution.commands.common import check_kafka_access, settings_from
from crm_attribution.render import attribution_tables

if TYPE_CHECKING:
    from crm_attribution.settings.typed import KafkaSettings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand."""
    p = sub.add_parser("demo", help="run the whole pipeline locally and show live tables")
    p.add_argument("--customers", type=int, default=3000, help="customers to simulate")
    p.add_argument("--days", type=int, default=30, help="days of activity to simulate")
    p.add_argument("--rate", type=float, default=3000.0, help="events per second to produce")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--web-port", type=int, help="worker HTTP port (default: a free one)")
    p.add_argument(
        "--keep-topics",
        action="store_true",
        help="leave this run's topics on the broker (default: delete them when the demo stops)",
    )
    p.set_defaults(handler=run)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Feeder(threading.Thread):
    """Sends generated events at a steady rate until stopped."""

    def __init__(self, lines: list[str], bootstrap: str, settings: Any, rate: float) -> None:
        super().__init__(daemon=True)
        self.lines, self.bootstrap, self.settings, self.rate = lines, bootstrap, settings, rate
        self.sent = 0
        self.stop_event = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        from stream.kafka.producer import EventProducer, produce_lines

        started = time.monotonic()
        try:
            with EventProducer(self.bootstrap, self.settings.kafka) as producer:
                for i in range(0, len(self.lines), 100):
                    if self.stop_event.is_set():
                        return
                    chunk = [(i + j + 1, line) for j, line in enumerate(self.lines[i : i + 100])]
                    produce_lines(chunk, producer, self.settings)
                    self.sent += len(chunk)
                    ahead = self.sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except Exception as error:  # noqa: BLE001 - shown on screen, demo keeps running
            self.error = str(error)


def _fetch(
    url: str, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> dict[str, Any] | None:
    import json
    import urllib.request

    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except Exception:  # noqa: BLE001 - worker still starting or rebalancing
        return None


def analytics_table(report: dict[str, Any]) -> Table:
    """The live customer analytics in one table: segments, holdout lift, CRM revenue share."""
    table = Table(title=f"Live: customers as of {report.get('as_of')}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for segment, count in (report["rfm"].get("segments") or {}).items():
        if count:
            table.add_row(f"RFM {segment}", f"{count:,}")
    overall = (report.get("holdout") or {}).get("overall") or {}
    if overall.get("incremental_revenue") is not None:
        low, high = overall.get("ci95") or (None, None)
        interval = "" if low is None else f" [{low:,.0f}, {high:,.0f}]"
        table.add_row(
            "holdout incremental revenue", f"{overall['incremental_revenue']:,.0f}{interval}"
        )
        table.add_row(
            "treated / control",
            f"{overall.get('n_treated', 0):,} / {overall.get('n_control', 0):,}",
        )
    share = report.get("revenue_share") or {}
    for model, value in (share.get("crm_share") or {}).items():
        if value is not None:
            table.add_row(f"CRM revenue share, {model}", f"{value:.1%}")
    return table


def run_topics(names: Iterable[str], run_id: str) -> list[str]:
    """The topics one demo run made: its own, and its worker's changelogs and internal ones."""
    prefixes = (f"demo-{run_id}-", f"crm-demo-{run_id}-")
    return sorted(name for name in names if name.startswith(prefixes))


def delete_run_topics(bootstrap: str, run_id: str, kafka: KafkaSettings) -> int:
    """Delete the topics of a demo run (a demo left running each time fills the broker)."""
    from kafka.admin import KafkaAdminClient

    from stream.kafka.security import kafka_python_args

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, **kafka_python_args(kafka)
    )
    try:
        names = run_topics(admin.list_topics(), run_id)
        if names:
            admin.delete_topics(names)
        return len(names)
    finally:
        admin.close()


def _start_worker(bootstrap: str, port: int, env: dict[str, str], log: Any, data_dir: Path) -> Any:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crm_attribution",
            "worker",
            "--bootstrap",
            bootstrap,
            "--web-port",
            str(port),
            "--tick-seconds",
            "2",
            # Kept across the restarts below: a restarted worker aborts its predecessor's
            # open transaction at once (docs/reliability.md).
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _last_line(path: Path) -> str:
    """The last line of a log file, for a one-line reason."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][-200:] if lines else "empty log"


def run(args: argparse.Namespace) -> int:
    """Run until Ctrl-C (or --duration), then stop everything that was started."""
    from crm_attribution.generator import GeneratorConfig, generate
    from stream.api.access import server_token
    from stream.broker.launcher import cache_dir_for, ensure_broker, stop_broker

    settings = settings_from(args)
    console = Console()
    if args.rate <= 0:
        raise UserError("--rate must be positive")
    bootstrap, started_broker = ensure_broker(settings)
    if not started_broker:
        check_kafka_access(bootstrap, settings)
    console.print(
        f"Kafka at [bold]{bootstrap}[/] ({'started for the demo' if started_broker else 'running'})"
    )
    run_id = str(int(time.time()))
    env = dict(os.environ)
    env.update(
        {
            "CRM_WORKER__APP_ID": f"crm-demo-{run_id}",
            "CRM_TOPICS__TOUCHPOINTS": f"demo-{run_id}-touchpoints",
            "CRM_TOPICS__PURCHASES": f"demo-{run_id}-purchases",
            "CRM_TOPICS__COSTS": f"demo-{run_id}-costs",
            "CRM_TOPICS__ASSIGNMENTS": f"demo-{run_id}-assignments",
            "CRM_TOPICS__DEAD_LETTER": f"demo-{run_id}-dead-letter",
            "CRM_TOPICS__ATTRIBUTIONS": f"demo-{run_id}-attributions",
            "CRM_ATTRIBUTION__MARKOV_REFRESH_SECONDS": "3",
        }
    )
    for name, value in env.items():
        if name.startswith("CRM_TOPICS__") or name == "CRM_WORKER__APP_ID":
            os.environ[name] = value
    demo_settings = settings_from(args)
    # The worker's API token: the configured one, or the token file, made now if missing, so
    # that the worker (which reads the same file) and `crm-attribution query` agree on it.
    token, _ = server_token(demo_settings)
    auth = {"Authorization": f"Bearer {token}"}
    port = args.web_port or free_port()
    # The worker's log, kept after the demo: the screen has no room for it, and it is where
    # to look when the tables stay empty.
    worker_log = cache_dir_for(settings) / "demo-worker.log"
    worker_log.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"worker log: {worker_log}")
    console.print(f"dashboard: http://127.0.0.1:{port}/dashboard?token={token}", soft_wrap=True)
    data_dir = cache_dir_for(settings) / f"demo-{run_id}-worker"

    def start_worker(mode: str) -> Any:
        with worker_log.open(mode) as log_file:
            return _start_worker(bootstrap, port, env, log_file, data_dir)

    worker = start_worker("wb")
    restarts = 0
    lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days)))
    feeder = Feeder(lines, bootstrap, demo_settings, args.rate)
    url = f"http://127.0.0.1:{port}"
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        with Live(Text("starting the worker..."), console=console, refresh_per_second=1) as live:
            while _fetch(f"{url}/health") is None:
                if worker.poll() is not None:
                    raise UserError(f"the worker exited at start; see its log: {worker_log}")
                time.sleep(0.5)
            feeder.start()
            analytics: dict[str, Any] | None = None
            analytics_at = 0.0
            while deadline is None or time.monotonic() < deadline:
                if worker.poll() is not None:
                    # A supervisor's job: a worker exits (with one line in its log saying why)
                    # when it cannot go on, e.g. its broker was gone too long; start it again.
                    restarts += 1
                    console.print(
                        f"the worker exited with status {worker.returncode}; restarting it "
                        f"(restart {restarts}; why: {_last_line(worker_log)})"
                    )
                    worker = start_worker("ab")
                data = _fetch(f"{url}/attribution", headers=auth)
                if time.monotonic() - analytics_at > 10.0:
                    # The whole report (RFM, CLV fit, holdout): every 10 s is plenty.
                    analytics = _fetch(f"{url}/analytics", 30, auth) or analytics
                    analytics_at = time.monotonic()
                status = Text(
                    f"produced {feeder.sent:,}/{len(lines):,} events at ~{args.rate:,.0f}/s · "
                    f"worker {url} · Ctrl-C to stop"
                    + (f" · producer error: {feeder.error}" if feeder.error else "")
                )
                if data is not None:
                    parts: list[Any] = [status, attribution_tables(data, title="Live")]
                    if analytics is not None and "rfm" in analytics:
                        parts.append(analytics_table(analytics))
                    live.update(Group(*parts))
                else:
                    live.update(Group(status, Text("waiting for the worker (rebalancing)...")))
                time.sleep(2.0)
    except KeyboardInterrupt:
        pass
    finally:
        feeder.stop_event.set()
        console.print("stopping the worker...")
        try:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            worker.kill()
        if not args.keep_topics:
            try:
                deleted = delete_run_topics(bootstrap, run_id, settings.kafka)
                console.print(f"deleted this run's {deleted} topics (--keep-topics keeps them)")
            except Exception as error:  # noqa: BLE001 - cleanup must not hide the demo's end
                console.print(f"could not delete this run's topics: {error}")
        if started_broker:
            console.print("stopping Kafka...")
            stop_broker(settings)
    return 0
