"""``crm-attribution produce FILE``: validate events and send them to Kafka."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from crm_attribution.cli import UserError
from crm_attribution.commands.common import apply_record_limits, bootstrap_from, settings_from

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand."""
    p = sub.add_parser("produce", help="validate events and send them to Kafka")
    p.add_argument("file", help="JSON Lines, CSV or Parquet file of events")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: configured or local)")
    p.add_argument(
        "--send-invalid",
        action="store_true",
        help="also send invalid records unchanged (to exercise the dead-letter topic)",
    )
    p.set_defaults(handler=run)


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\n")


def run(args: argparse.Namespace) -> int:
    """Send the file's events."""
    apply_record_limits(args)
    from stream.kafka.admin import ensure_topics
    from stream.kafka.producer import DeliveryError, EventProducer, produce_events, produce_lines

    settings = settings_from(args)
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path} does not exist or is not a file")
    bootstrap = bootstrap_from(settings, args.bootstrap)
    err = Console(stderr=True)
    try:
        ensure_topics(bootstrap, settings)
    except Exception as error:  # noqa: BLE001 - any client failure means the broker is unusable
        raise UserError(f"cannot reach Kafka at {bootstrap}: {error}") from None
    is_json = path.suffix.lower() in JSON_SUFFIXES
    total = sum(1 for _ in path.open("rb")) if is_json else None
    progress = Progress(
        TextColumn("producing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    try:
        with progress, EventProducer(bootstrap, settings.kafka) as producer:
            task = progress.add_task("produce", total=total)

            def tick() -> None:
                progress.advance(task)

            if is_json:
                report = produce_lines(
                    _numbered_lines(path),
                    producer,
                    settings,
                    send_invalid=args.send_invalid,
                    on_record=tick,
                )
            else:
                from attribution.io.event_table import to_events
                from attribution.io.events_reader import read_event_table
                from stream.kafka.producer import Rejected

                read = read_event_table(path)
                report = produce_events(to_events(read.table), producer, settings, on_record=tick)
                report.rejected = [Rejected(r.line, r.reason) for r in read.invalid]
    except DeliveryError as error:
        raise UserError(str(error)) from None
    table = Table(title=f"sent to {bootstrap}")
    table.add_column("topic")
    table.add_column("records", justify="right")
    for topic, count in sorted(report.sent.items()):
        table.add_row(topic, str(count))
    if report.sent_unvalidated:
        table.add_row("(invalid, sent unvalidated)", str(report.sent_unvalidated))
    table.add_row("rejected (not sent)", str(len(report.rejected)))
    err.print(table)
    for rejected in report.rejected[:20]:
        err.print(f"line {rejected.line}: {rejected.reason}", highlight=False)
    if len(report.rejected) > 20:
        err.print(f"... and {len(report.rejected) - 20} more rejected records")
    sys.stderr.flush()
    return 0
