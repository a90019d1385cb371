"""``crm-attribution generate``: write a synthetic CRM event stream (JSON Lines)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from crm_attribution.cli import UserError
from crm_attribution.generator import GeneratorConfig, generate


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand."""
    p = sub.add_parser("generate", help="write a realistic synthetic CRM event stream")
    p.add_argument("output", help="JSON Lines file to write, or - for standard output")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default="2026-01-05", help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--invalid-rate", type=float, default=0.0, help="share of invalid records")
    p.add_argument("--duplicate-rate", type=float, default=0.01)
    p.add_argument("--lateness-minutes", type=float, default=30.0)
    p.add_argument("--control-share", type=float, default=0.05)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write the stream."""
    if args.customers < 1 or args.days < 1:
        raise UserError("--customers and --days must be at least 1")
    if not 0 <= args.invalid_rate < 1 or not 0 <= args.duplicate_rate < 1:
        raise UserError("--invalid-rate and --duplicate-rate must be in [0, 1)")
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
    lines = generate(cfg)
    if args.output == "-":
        for line in lines:
            sys.stdout.write(line + "\n")
        return 0
    path = Path(args.output)
    try:
        with path.open("w", encoding="utf-8") as handle:
            count = 0
            for line in lines:
                handle.write(line + "\n")
                count += 1
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    print(f"wrote {count} records to {path}", file=sys.stderr)
    return 0
