"""``crm-attribution report``: customer analytics of an event log (RFM, CLV, share, holdout)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from crm_attribution.cli import UserError
from crm_attribution.commands.common import (
    apply_record_limits,
    check_output_args,
    settings_from,
    write_output,
)
from crm_attribution.commands.input_report import (
    fail_if_nothing_valid,
    fail_if_strict,
    progress_bar,
    report_invalid,
    stage_status,
)
from crm_attribution.settings.typed import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "report",
        help="customer analytics of an event log: RFM, CLV, revenue share, holdout, campaigns",
        description=(
            "Fold an event log (JSON Lines, CSV or Parquet) into the customer analytics "
            "report: RFM segments and their movement, lifetime value, channel revenue share, "
            "assisted conversions, holdout lift and campaign economics."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="event log")
    p.add_argument(
        "--input-format",
        choices=("jsonl", "csv", "parquet"),
        help="format of the event log (default: from the extension)",
    )
    p.add_argument(
        "--format",
        choices=("json", "table", "html"),
        default="json",
        help="json (default), table (terminal), or html: the dashboard as one offline file",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here instead of stdout (needed for html)"
    )
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated models, or all (default: config attribution.models)",
    )
    p.add_argument(
        "--lookback-days",
        type=float,
        default=None,
        help="touches older than this before a purchase get no credit "
        "(default: config attribution.lookback_days)",
    )
    p.add_argument(
        "--as-of",
        metavar="ISO",
        help="report time, ISO 8601 with offset (default: the newest event); later events "
        "are left out",
    )
    p.add_argument(
        "--compare-days",
        type=float,
        default=30.0,
        help="RFM movement from this many days before the report time",
    )
    p.add_argument("--customers", action="store_true", help="include every customer's RFM")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) on any invalid record")
    p.add_argument(
        "--invalid-report",
        metavar="FILE",
        help="write every invalid record here, as JSON Lines (default: none written)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the log, fold it, attribute it, print the report."""
    apply_record_limits(args)
    settings = settings_from(args)
    as_of = _check_args(args)
    html = check_output_args(args)
    err = Console(stderr=True)
    table, read, models = read_log(args, settings, as_of, err)
    # The dashboard's R x F grid needs every customer's scores; the JSON has them on request.
    with stage_status(err, "analysing") as stage:
        built = built_report(table, settings, models, args, as_of, args.customers or html, stage)
    report = built.report
    report["invalid_records"] = len(read.invalid)
    report["attribution"]["invalid_records"] = len(read.invalid)
    report_invalid(args, read.invalid, err)
    window = settings.analytics.rfm_window_days
    if html:
        from crm_attribution.dashboard.batch import report_dashboard

        write_output(args.output, report_dashboard(built, window), err)
        return 0
    if args.format == "json":
        write_output(args.output, json.dumps(report, sort_keys=True) + "\n", err)
    else:
        from crm_attribution.render_fit import output_console
        from crm_attribution.render_report import report_tables

        output_console().print(report_tables(report, window))
    sys.stdout.flush()
    return 0


def read_log(
    args: argparse.Namespace, settings: Settings, as_of: int | None, err: Console
) -> tuple[Any, Any, list[str]]:
    """The event table of ``args.input`` up to ``as_of``, the read result and the models."""
    from attribution.io import ReadError
    from attribution.models.registry import UnknownModel, resolve_models

    path = Path(args.input)
    if not path.exists():
        raise UserError(f"input file {path} does not exist")
    if path.is_dir():
        raise UserError(f"input {path} is a directory, not a file")
    try:
        models = resolve_models(args.models or ",".join(settings.attribution.models))
        read = _read(args, path, err)
    except (ReadError, UnknownModel) as error:
        raise UserError(str(error)) from None
    except UnicodeDecodeError as error:
        raise UserError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    from attribution.money import apply_money, merged_invalid
    from crm_attribution.commands.common import money_from

    money, _ = money_from(args)
    table = read.table if as_of is None else read.table.filter(read.table["ts_ms"] <= as_of)
    # After the --as-of cut: a refund or a rate after the report time is not known at it.
    table, unapplied = apply_money(table, money)
    read.invalid = merged_invalid(read.invalid, unapplied)
    fail_if_strict(args, read.invalid)
    when = "" if as_of is None else f" at or before --as-of {args.as_of}"
    fail_if_nothing_valid(args, table.height, read.invalid, err, "report", when)
    return table, read, models


def check_args(args: argparse.Namespace) -> int | None:
    """Validate the numeric options; return --as-of in epoch ms (None when not given)."""
    return _check_args(args)


def _check_args(args: argparse.Namespace) -> int | None:
    from attribution.events import parse_timestamp

    if args.lookback_days is not None and args.lookback_days <= 0:
        raise UserError(f"--lookback-days must be positive, got {args.lookback_days}")
    if args.compare_days <= 0:
        raise UserError(f"--compare-days must be positive, got {args.compare_days}")
    if args.as_of is None:
        return None
    try:
        moment = parse_timestamp(args.as_of)
    except ValueError as error:
        raise UserError(f"--as-of: {error}") from None
    # Integer arithmetic, as the events' own ts_ms: a float would round far dates differently.
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _read(args: argparse.Namespace, path: Path, err: Console) -> Any:
    from attribution.io.events_reader import read_event_table

    with progress_bar(err, f"reading {path.name}") as update:
        return read_event_table(path, args.input_format, progress=update)


def build_report(
    events: Any,
    settings: Settings,
    models: list[str],
    args: argparse.Namespace,
    as_of: int | None,
) -> dict[str, Any]:
    """Attribute an event table (or a list of events) and assemble the report (the JSON)."""
    return built_report(events, settings, models, args, as_of).report


def built_report(
    events: Any,
    settings: Settings,
    models: list[str],
    args: argparse.Namespace,
    as_of: int | None,
    customer_scores: bool | None = None,
    stage: Any = None,
) -> Any:
    """The report with the attribution and journeys it was made from (a BuiltReport)."""
    from attribution.analytics.inputs import AmountsTooLarge
    from attribution.report_build import ReportParameters
    from attribution.report_build import build_report as assemble

    params = ReportParameters.from_settings(settings, models, args.lookback_days, args.compare_days)
    scores = args.customers if customer_scores is None else customer_scores
    try:
        if stage is None:
            return assemble(events, params, as_of, scores)
        return assemble(events, params, as_of, scores, stage=stage)
    except AmountsTooLarge as error:
        raise UserError(str(error)) from None
