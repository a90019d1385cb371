"""``crm-attribution attribute``: attribution of an aggregated path file or a raw event log."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_attribution.cli import UserError
from crm_attribution.commands.common import (
    apply_record_limits,
    attribution_settings_from,
    check_output_args,
    write_output,
)
from crm_attribution.commands.input_report import (
    StderrConsole,
    fail_if_nothing_valid,
    fail_if_strict,
    progress_bar,
    report_invalid,
)

if TYPE_CHECKING:
    from crm_attribution.settings.shipped import ShippedAttribution
    from crm_attribution.settings.typed import AttributionSettings

    Attribution = AttributionSettings | ShippedAttribution

CSV_FIELDS = ("model", "channel", "conversions", "value", "removal_effect", "removal_effect_value")
CI_FIELDS = ("conversions_low", "conversions_high", "value_low", "value_high")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "attribute",
        help="attribute conversions of a path file or an event log to channels",
        description=(
            "Attribute conversions to channels. INPUT is a path file in ChannelAttribution's "
            "layout (CSV, CSV.gz or Parquet), or with --events a raw event log (JSON Lines, "
            "CSV or Parquet)."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="path file, or event log with --events")
    p.add_argument("--events", action="store_true", help="INPUT is a raw event log")
    p.add_argument(
        "--input-format",
        choices=("jsonl", "csv", "parquet"),
        help="format of the event log (default: from the extension)",
    )
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated models, or all (default: all that apply to the input)",
    )
    p.add_argument(
        "--order",
        type=int,
        default=None,
        help="Markov chain order (default: config attribution.markov_order)",
    )
    p.add_argument(
        "--markov-states",
        choices=("merged", "raw"),
        default=None,
        help="merged: consecutive repeats merged; raw: kept, as ChannelAttribution "
        "(default: config attribution.markov_states)",
    )
    p.add_argument(
        "--max-steps", type=int, default=None, help="Markov path length cap (default: none)"
    )
    p.add_argument("--sep", default=">", help="channel separator in paths (one character)")
    p.add_argument(
        "--lookback-days",
        type=float,
        default=None,
        help="touches older than this before a purchase get no credit "
        "(default: config attribution.lookback_days)",
    )
    p.add_argument(
        "--half-life-days",
        type=float,
        default=None,
        help="time-decay half-life (default: config attribution.half_life_days)",
    )
    p.add_argument(
        "--format",
        choices=("json", "csv", "table", "html"),
        default="json",
        help="json (default), csv, table (terminal), or html: the dashboard as one offline file",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here instead of stdout (needed for html)"
    )
    p.add_argument(
        "--ci",
        type=float,
        metavar="LEVEL",
        default=None,
        help="confidence intervals at this level (e.g. 0.95) on every credit, by a bootstrap "
        "over customers; events only (default: none)",
    )
    p.add_argument("--resamples", type=int, default=200, help="bootstrap resamples for --ci")
    p.add_argument(
        "--seed", type=int, default=0, help="bootstrap seed for --ci (same seed, same intervals)"
    )
    p.add_argument("--strict", action="store_true", help="fail (exit 2) on any invalid record")
    p.add_argument("--path-column", default="path", help="path file: column of the paths")
    p.add_argument(
        "--conversions-column",
        default="total_conversions",
        help="path file: column of the conversion counts",
    )
    p.add_argument(
        "--value-column",
        default="total_conversion_value",
        help="path file: column of the conversion values",
    )
    p.add_argument(
        "--null-column", default="total_null", help="path file: column of the null path counts"
    )
    p.add_argument(
        "--invalid-report",
        metavar="FILE",
        help="write every invalid record here, as JSON Lines (default: none written)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the input, run the models, print the report."""
    apply_record_limits(args)
    from attribution.io import ReadError
    from attribution.models.registry import UnknownModel

    settings = attribution_settings_from(args)
    _check_args(args)
    html = check_output_args(args)
    path = Path(args.input)
    if not path.exists():
        raise UserError(f"input file {path} does not exist")
    if path.is_dir():
        raise UserError(f"input {path} is a directory, not a file")
    err = StderrConsole()
    try:
        models = _models(args, settings)
        if args.events:
            report, invalid, paths = _from_events(args, settings, path, models, err)
        else:
            report, invalid, paths = _from_paths(args, settings, path, models, err)
    except (ReadError, UnknownModel) as error:
        raise UserError(str(error)) from None
    except UnicodeDecodeError as error:
        raise UserError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    report_invalid(args, invalid, err)
    if html:
        from crm_attribution.dashboard.batch import attribute_dashboard

        write_output(args.output, attribute_dashboard(report, paths()), err)
        return 0
    _print(args.format, report.to_json(), args.output, err)
    return 0


def _check_args(args: argparse.Namespace) -> None:
    if len(args.sep) != 1:
        raise UserError(f"--sep must be exactly one character, got {args.sep!r}")
    if args.order is not None and args.order < 1:
        raise UserError(f"--order must be at least 1, got {args.order}")
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {args.max_steps}")
    if args.lookback_days is not None and args.lookback_days <= 0:
        raise UserError(f"--lookback-days must be positive, got {args.lookback_days}")
    if args.half_life_days is not None and args.half_life_days <= 0:
        raise UserError(f"--half-life-days must be positive, got {args.half_life_days}")
    if args.ci is not None:
        if not 0 < args.ci < 1:
            raise UserError(f"--ci must be a level between 0 and 1 (e.g. 0.95), got {args.ci}")
        if not args.events:
            raise UserError(
                "--ci resamples customers, which only an event log has: run with --events"
            )
    if args.resamples < 2:
        raise UserError(f"--resamples must be at least 2, got {args.resamples}")


def _models(args: argparse.Namespace, settings: Attribution) -> list[str]:
    from attribution.models.registry import NEEDS_EVENTS, resolve_models

    if args.models is None:
        wanted = resolve_models(",".join(settings.models))
        return wanted if args.events else [m for m in wanted if m not in NEEDS_EVENTS]
    wanted = resolve_models(args.models)
    if args.events:
        return wanted
    if args.models.strip() == "all":
        return [m for m in wanted if m not in NEEDS_EVENTS]
    needs = [m for m in wanted if m in NEEDS_EVENTS]
    if needs:
        raise UserError(
            f"{', '.join(needs)} needs the age of every touch, which only raw events give: "
            "run with --events on an event log, or leave it out of --models"
        )
    return wanted


def _options(args: argparse.Namespace, s: Attribution) -> Any:
    from attribution.models.options import ModelOptions

    return ModelOptions(
        order=args.order if args.order is not None else s.markov_order,
        max_steps=args.max_steps,
        direct_channel=s.direct_channel,
        half_life_days=args.half_life_days or s.half_life_days,
        markov_states=args.markov_states or s.markov_states,
    )


def _from_paths(
    args: argparse.Namespace,
    settings: Attribution,
    path: Path,
    models: list[str],
    err: StderrConsole,
) -> tuple[Any, list[Any], Callable[[], Any]]:
    from attribution.engine import attribute_paths
    from attribution.io.paths_reader import PathColumns, read_paths

    columns = PathColumns(
        args.path_column, args.conversions_column, args.value_column, args.null_column
    )
    with progress_bar(err, f"reading {path.name}") as update:
        read = read_paths(path, sep=args.sep, columns=columns, progress=update)
    fail_if_strict(args, read.invalid)
    fail_if_nothing_valid(args, read.table.n_paths, read.invalid, err, "attribute", noun="path")
    with progress_bar(err, "attributing") as update:
        update(0, None)
        report = attribute_paths(read.table, read.totals, models, _options(args, settings))
    return report, read.invalid, lambda: read.table


def _from_events(
    args: argparse.Namespace,
    s: Attribution,
    path: Path,
    models: list[str],
    err: StderrConsole,
) -> tuple[Any, list[Any], Callable[[], Any]]:
    from attribution.engine import attribute_journeys
    from attribution.io.events_reader import read_event_table
    from attribution.journey_table import build_journey_table
    from attribution.journeys import JourneyRules

    lookback = args.lookback_days or s.lookback_days
    rules = JourneyRules.from_days(
        lookback, s.journey_timeout_days or lookback, s.allowed_lateness_hours
    )
    from attribution.money import apply_money, merged_invalid
    from crm_attribution.commands.common import money_from

    money, _ = money_from(args)
    with progress_bar(err, f"reading {path.name}") as update:
        read = read_event_table(path, args.input_format, progress=update)
    # Amounts into the base currency and net of refunds; what cannot be is invalid too.
    read.table, unapplied = apply_money(read.table, money)
    read.invalid = merged_invalid(read.invalid, unapplied)
    fail_if_strict(args, read.invalid)
    fail_if_nothing_valid(args, read.count, read.invalid, err, "attribute")
    with progress_bar(err, "attributing") as update:
        update(0, None)
        journeys = build_journey_table(read.table, rules)
        options = _options(args, s)
        report = attribute_journeys(journeys, models, options)
    if args.ci is not None:
        from attribution.bootstrap import journey_credit_intervals

        with progress_bar(err, f"bootstrap: {args.resamples} resamples") as update:
            update(0, None)
            report.confidence = journey_credit_intervals(
                journeys, models, options, args.resamples, args.ci, args.seed
            )
    report.totals.invalid_records = len(read.invalid)

    def paths() -> Any:
        # Only the dashboard needs the journeys' path table.
        return journeys.path_table()

    return report, read.invalid, paths


def _print(fmt: str, data: dict[str, Any], output: str | None, err: StderrConsole) -> None:
    if fmt == "json":
        write_output(output, json.dumps(data) + "\n", err)
    elif fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        intervals = "confidence" in data
        writer.writerow(CSV_FIELDS + (CI_FIELDS if intervals else ()))
        for model, result in data["models"].items():
            for channel, credit in result["channels"].items():
                row = [model, channel, *(credit.get(name, "") for name in CSV_FIELDS[2:])]
                if intervals:
                    ci = credit.get("ci") or {}
                    row += [*(ci.get("conversions") or ["", ""]), *(ci.get("value") or ["", ""])]
                writer.writerow(row)
        write_output(output, buffer.getvalue(), err)
    else:
        from crm_attribution.render import render_attribution
        from crm_attribution.render_fit import output_console

        render_attribution(output_console(), data)
    sys.stdout.flush()
