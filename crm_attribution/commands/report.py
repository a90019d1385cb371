"""``crm-attribution report``: customer analytics of an event log (RFM, CLV, share, holdout)."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from config.settings import Settings
from crm_attribution.cli import UserError
from crm_attribution.commands.common import settings_from
from crm_attribution.commands.input_report import fail_if_strict, progress_bar, report_invalid


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
    p.add_argument("--format", choices=("json", "table"), default="json")
    p.add_argument(
        "--models", default=None, help="comma-separated models, or all (default: config)"
    )
    p.add_argument("--lookback-days", type=float, default=None, help="default: config")
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
        help="RFM movement from this many days before the report time (default 30)",
    )
    p.add_argument("--customers", action="store_true", help="include every customer's RFM")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) on any invalid record")
    p.add_argument(
        "--invalid-report", metavar="FILE", help="write every invalid record here (JSON Lines)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the log, fold it, attribute it, print the report."""
    from attribution.io import ReadError
    from attribution.models.registry import UnknownModel, resolve_models

    settings = settings_from(args)
    as_of = _check_args(args)
    path = Path(args.input)
    if not path.exists():
        raise UserError(f"input file {path} does not exist")
    if path.is_dir():
        raise UserError(f"input {path} is a directory, not a file")
    err = Console(stderr=True)
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
    fail_if_strict(args, read.invalid)
    table = read.table if as_of is None else read.table.filter(read.table["ts_ms"] <= as_of)
    if table.height == 0:
        when = "" if as_of is None else f" at or before --as-of {args.as_of}"
        raise UserError(f"{path} holds no valid event{when}: nothing to report")
    with progress_bar(err, "analysing") as update:
        update(0, None)
        try:
            report = build_report(table, settings, models, args, as_of)
        except ValueError as error:
            raise UserError(str(error)) from None
    report["invalid_records"] = len(read.invalid)
    report["attribution"]["invalid_records"] = len(read.invalid)
    report_invalid(args, read.invalid, err)
    if args.format == "json":
        sys.stdout.write(json.dumps(report, sort_keys=True) + "\n")
    else:
        Console().print(report_tables(report))
    sys.stdout.flush()
    return 0


def _check_args(args: argparse.Namespace) -> int | None:
    """Validate the numeric options; return --as-of in epoch ms (None when not given)."""
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
    table: Any,
    settings: Settings,
    models: list[str],
    args: argparse.Namespace,
    as_of: int | None,
) -> dict[str, Any]:
    """Attribute an event table (or a list of events) and assemble the analytics report."""
    import polars as pl

    from attribution.analytics.holdout import HashMembership
    from attribution.analytics.inputs import inputs_from_events
    from attribution.analytics.report import (
        ReportOptions,
        analytics_report,
        clv_section,
        previous_snapshot,
    )
    from attribution.engine import attribute_journeys
    from attribution.journey_table import build_journey_table
    from attribution.journeys import JourneyRules
    from attribution.models.options import ModelOptions

    if not isinstance(table, pl.DataFrame):
        from attribution.io.event_table import from_events

        table = from_events(table)
    s, a = settings.attribution, settings.analytics
    hashing = HashMembership(a.holdout_salt, a.holdout_control_share)
    inputs = inputs_from_events(table, hashing if a.holdout_from_hash else None)
    when = inputs.newest_ms if as_of is None else as_of
    assert when is not None  # the table is not empty
    lookback = args.lookback_days or s.lookback_days
    rules = JourneyRules.from_days(
        lookback, s.journey_timeout_days or lookback, s.allowed_lateness_hours
    )
    model_options = ModelOptions(
        order=s.markov_order, direct_channel=s.direct_channel, half_life_days=s.half_life_days
    )
    options = ReportOptions.from_settings(settings, model_options)
    # The lifetime-value fits need no journeys: they run on a second thread (numpy and Polars
    # release the interpreter lock) while the journeys are built and attributed.
    with ThreadPoolExecutor(max_workers=1) as pool:
        clv = pool.submit(clv_section, inputs, options, when, args.customers)
        # Journeys expire on the customer-event clock (as in `attribute` and the stream): a
        # later cost or assignment event does not age anyone's journey.
        journeys = build_journey_table(table, rules, as_of)
        attribution = attribute_journeys(journeys, models, model_options)
        before = previous_snapshot(inputs, when, args.compare_days, a.rfm_window_days)
        report = analytics_report(
            inputs, attribution, journeys, options, when, args.customers,
            previous_snapshot=before, clv=clv.result(),
        )  # fmt: skip
    report["attribution"] = attribution.to_json()["totals"]
    return report


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def report_tables(report: dict[str, Any]) -> Group:
    """Segments, grades, retention, revenue share (all time, monthly), holdout, campaigns."""
    from attribution.analytics.rfm_segments import SEGMENTS

    rfm = report["rfm"]
    segments = _table(f"RFM segments as of {report['as_of']}", ["segment", "customers"])
    for name in SEGMENTS:
        segments.add_row(name, _num(rfm["segments"].get(name, 0)))
    grades = _table("RFM grades", ["grade", "customers"])
    for grade, n in rfm["grades"].items():
        grades.add_row(grade, _num(n))

    shares = report["revenue_share"]
    models = list(shares["models"])
    channels = sorted({ch for m in shares["models"].values() for ch in m["channels"]})
    share = _table(
        f"Revenue share of {_num(shares['total_revenue'])} total revenue", ["channel", *models]
    )
    for ch in channels:
        cells = [shares["models"][m]["channels"].get(ch, {}).get("share") for m in models]
        share.add_row(ch, *(_pct(c) for c in cells))
    share.add_row("CRM share", *(_pct(shares["crm_share"][m]) for m in models))
    monthly = _table("CRM share of revenue per month", ["month", "revenue", *models])
    for month, row in (shares.get("periods") or {}).items():
        monthly.add_row(
            month,
            _num(row["total_revenue"]),
            *(_pct(row["crm_share"].get(m)) for m in models),
        )

    retention = _table("Retention", ["from", "to", "at start", "at end", "new", "rate"])
    kept = report.get("retention")
    if kept:
        retention.add_row(
            kept["from"],
            kept["to"],
            _num(kept["customers_at_start"]),
            _num(kept["customers_at_end"]),
            _num(kept["new_customers"]),
            _pct(kept["retention_rate"]),
        )

    holdout = _table(
        "Holdout",
        ["experiment", "treated", "control", "incremental revenue", "95% CI", "lift", "note"],
    )
    rows = [("(overall)", report["holdout"]["overall"])]
    rows += list(report["holdout"]["campaigns"].items())
    for name, row in rows:
        if row is None:
            continue
        ci = row["ci95"]
        holdout.add_row(
            name,
            _num(row["n_treated"]),
            _num(row["n_control"]),
            _num(row["incremental_revenue"]),
            "-" if ci is None else f"{_num(ci[0])} .. {_num(ci[1])}",
            _pct(row["conversion_lift"]),
            "underpowered" if row["underpowered"] else "",
        )

    model = "last_touch" if "last_touch" in models else (models[0] if models else None)
    campaigns = _table(
        f"Campaigns ({model or 'no model'} credit)",
        ["campaign", "cost", "revenue", "ROI", "revenue:cost", "CAC", "open rate", "CTR"],
    )
    for name, row in report["campaigns"].items():
        economics = row["models"].get(model, {}) if model else {}
        campaigns.add_row(
            name,
            _num(row["cost"]),
            _num(economics.get("attributed_revenue")),
            _num(economics.get("roi")),
            economics.get("revenue_cost_ratio_text") or "-",
            _num(economics.get("cac")),
            _pct(row["open_rate"]),
            _pct(row["ctr"]),
        )
    return Group(segments, grades, retention, share, monthly, holdout, campaigns)
