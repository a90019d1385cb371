"""``crm-attribution sink postgres``: keep PostgreSQL tables current from the stream."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from types import FrameType

from rich.console import Console

from crm_attribution.cli import UserError
from crm_attribution.commands.common import bootstrap_from, settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "sink",
        help="keep PostgreSQL tables current from the stream (docs/sql.md)",
        description=(
            "Consume the attributions topic into PostgreSQL (one row per order, model and "
            "channel, retractions applied; credits per day) and refresh the analytics "
            "snapshot tables (RFM, movement, CLV, holdout, campaigns) from a worker. Tables "
            "and indexes are created when missing; offsets live in the database, so a "
            "restart resumes exactly where the last committed batch ended."
        ),
    )
    p.add_argument("target", choices=("postgres",), help="where to write")
    p.add_argument("--dsn", required=True, help="PostgreSQL connection string (libpq format)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: config / local broker)")
    p.add_argument("--topic", help="attributions topic (default: config topics.attributions)")
    p.add_argument(
        "--worker-url",
        help="worker whose /analytics fills the snapshot tables "
        "(default: http://<worker.web_host>:<worker.web_port>)",
    )
    p.add_argument(
        "--no-snapshots", action="store_true", help="only the attributions and credits tables"
    )
    p.add_argument(
        "--snapshot-seconds", type=float, default=60.0, help="seconds between snapshots (60)"
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="catch up with the topic, take one snapshot, and exit (for cron jobs and tests)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the sink until interrupted (or once)."""
    from stream.api.access import client_headers
    from stream.sinks.postgres import PostgresSink, SinkError

    if args.snapshot_seconds <= 0:
        raise UserError(f"--snapshot-seconds must be positive, got {args.snapshot_seconds}")
    settings = settings_from(args)
    bootstrap = bootstrap_from(settings, args.bootstrap)
    worker = None
    if not args.no_snapshots:
        worker = args.worker_url or f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    sink = PostgresSink(
        args.dsn,
        bootstrap,
        args.topic or settings.topics.attributions,
        settings.kafka,
        worker,
        args.snapshot_seconds,
        worker_headers=client_headers(settings),
    )
    err = Console(stderr=True, soft_wrap=True)
    try:
        sink.start()
        err.print(f"sink: {sink.topic} on {bootstrap} -> PostgreSQL", highlight=False)
        if args.once:
            applied = sink.catch_up()
            took = sink.refresh_snapshot()
            err.print(
                f"sink: {applied} records applied, {sink.stats.skipped} skipped; snapshot "
                + ("refreshed" if took else f"not refreshed ({sink.stats.last_error or 'off'})"),
                highlight=False,
            )
            return 0 if took or worker is None else 3
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        with contextlib.suppress(KeyboardInterrupt):
            sink.run(stop)
        err.print(f"sink: stopped after {sink.stats.records} records", highlight=False)
        return 0
    except SinkError as error:
        raise UserError(str(error)) from None
    finally:
        sink.close()
