"""``crm-attribution generate``: write a synthetic CRM event log (JSON Lines, CSV or Parquet)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from crm_attribution.cli import UserError

FORMAT_OF_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
                    ".parquet": "parquet"}  # fmt: skip


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "generate",
        help="write a realistic synthetic CRM event log",
        description=(
            "Write a synthetic CRM event log in arrival order: touchpoints, purchases, daily "
            "campaign costs and holdout assignments. 60,000 customers over 180 days make about "
            "two million events."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "output", help="file to write (.jsonl, .csv or .parquet), or - for JSON Lines on stdout"
    )
    p.add_argument(
        "--format",
        choices=("jsonl", "csv", "parquet"),
        default=None,
        help="output format (default: from the file extension)",
    )
    p.add_argument("--customers", type=int, default=2000, help="number of customers")
    p.add_argument("--days", type=int, default=30, help="days of activity")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same log)")
    p.add_argument("--start", default="2026-01-05", help="first day, YYYY-MM-DD (UTC)")
    p.add_argument(
        "--invalid-rate",
        type=float,
        default=0.0,
        help="share of invalid records inserted (JSON Lines and CSV only)",
    )
    p.add_argument("--duplicate-rate", type=float, default=0.01, help="share of repeated events")
    p.add_argument(
        "--lateness-minutes", type=float, default=30.0, help="how late events may arrive"
    )
    p.add_argument(
        "--control-share", type=float, default=0.05, help="share of customers in the holdout"
    )
    p.set_defaults(handler=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output == "-":
        return "jsonl"
    suffix = Path(args.output).suffix.lower()
    fmt = FORMAT_OF_SUFFIX.get(suffix)
    if fmt is None:
        raise UserError(
            f"cannot tell the format from the extension {suffix or '(none)'!r} of "
            f"{args.output}; use .jsonl, .csv or .parquet, or pass --format"
        )
    return fmt


def _check(args: argparse.Namespace, fmt: str) -> None:
    if args.customers < 1 or args.days < 1:
        raise UserError("--customers and --days must be at least 1")
    for name in ("invalid_rate", "duplicate_rate"):
        value = getattr(args, name)
        if not 0 <= value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be in [0, 1), got {value}")
    if not 0 <= args.control_share <= 1:
        raise UserError(f"--control-share must be between 0 and 1, got {args.control_share}")
    if not args.lateness_minutes >= 0:
        raise UserError(f"--lateness-minutes must not be negative, got {args.lateness_minutes}")
    if fmt == "parquet" and args.invalid_rate:
        raise UserError(
            "--invalid-rate inserts invalid JSON text, which Parquet cannot hold: "
            "write .jsonl or .csv, or leave --invalid-rate out"
        )
    if fmt == "parquet" and args.output == "-":
        raise UserError("Parquet cannot go to standard output: name a .parquet file")


def run(args: argparse.Namespace) -> int:
    """Write the log."""
    from crm_attribution.generator import GeneratorConfig, write_log

    fmt = _format(args)
    _check(args, fmt)
    try:
        start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    except ValueError:
        raise UserError(f"--start {args.start!r} is not a date (YYYY-MM-DD)") from None
    cfg = GeneratorConfig(
        customers=args.customers,
        days=args.days,
        start=start,
        seed=args.seed,
        control_share=args.control_share,
        lateness_minutes=args.lateness_minutes,
        duplicate_rate=args.duplicate_rate,
        invalid_rate=args.invalid_rate,
    )
    show = args.output != "-" and sys.stderr.isatty()

    def progress(written: int) -> None:
        if show:
            print(f"\rgenerating: {written:,} records written", end="", file=sys.stderr)

    try:
        count = write_log(cfg, args.output, fmt, progress)
    except OSError as error:
        raise UserError(f"cannot write {args.output}: {error.strerror or error}") from None
    if args.output != "-":
        end = "\n" if show else ""
        print(f"{end}wrote {count:,} records to {args.output} ({fmt})", file=sys.stderr)
    return 0
