"""The batch engine's answers for a generated log, what the stream's tests compare with."""

from __future__ import annotations

import argparse
import json
from typing import Any

import polars as pl

from attribution.bootstrap import journey_credit_intervals
from attribution.engine import attribute_journeys
from attribution.events import InvalidRecord, parse_event, parse_record
from attribution.io.event_table import from_events
from attribution.journey_table import build_journey_table
from attribution.journeys import JourneyRules
from attribution.money import MoneySettings, apply_money, read_rates_file
from crm_attribution.commands.report import build_report
from crm_attribution.settings.typed import Settings, load_settings

# Short windows so that lookback, timeout and expiry all matter within the generated days.
LOOKBACK_DAYS = "3"


def stream_settings(partitions: int = 3, **environ: str) -> Settings:
    """Default settings with a 3-day lookback and ``partitions`` input partitions."""
    return load_settings(
        environ={
            "CRM_ATTRIBUTION__LOOKBACK_DAYS": LOOKBACK_DAYS,
            "CRM_TOPICS__PARTITIONS": str(partitions),
            **environ,
        }
    )


def valid_events(lines: list[str]) -> tuple[list[Any], int]:
    """The valid events of a log, and how many lines were invalid."""
    events, invalid = [], 0
    for line in lines:
        try:
            events.append(parse_event(json.loads(line)))
        except (InvalidRecord, json.JSONDecodeError):
            invalid += 1
    return events, invalid


def valid_table(lines: list[str], settings: Settings) -> tuple[pl.DataFrame, int]:
    """The log as the batch commands read it (every event type; amounts in the base currency,
    net of refunds: attribution/money.py), and how many lines were invalid."""
    records, numbers, invalid = [], [], 0
    for number, line in enumerate(lines, start=1):
        try:
            records.append(parse_record(json.loads(line)))
            numbers.append(number)
        except (InvalidRecord, json.JSONDecodeError):
            invalid += 1
    business = settings.business
    rates = read_rates_file(business.rates_file) if business.rates_file else ()
    table, unapplied = apply_money(
        from_events(records, numbers), MoneySettings(business.base_currency, rates)
    )
    return table, invalid + len(unapplied)


def batch_attribution(
    lines: list[str],
    settings: Settings,
    ci: float | None = None,
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """``crm-attribution attribute --events --format json`` for the log (with ``ci``: and
    ``--ci CI --resamples N --seed S``)."""
    table, invalid = valid_table(lines, settings)
    a = settings.attribution
    rules = JourneyRules.from_days(a.lookback_days, a.timeout_days, a.allowed_lateness_hours)
    options = a.model_options
    journeys = build_journey_table(table, rules)
    report = attribute_journeys(journeys, list(a.models), options)
    if ci is not None:
        report.confidence = journey_credit_intervals(
            journeys, list(a.models), options, resamples, ci, seed
        )
    report.totals.invalid_records = invalid
    return report.to_json()


def batch_report(lines: list[str], settings: Settings) -> dict[str, Any]:
    """``crm-attribution report --format json`` for the log."""
    table, invalid = valid_table(lines, settings)
    args = argparse.Namespace(lookback_days=None, compare_days=30.0, customers=False)
    expected = build_report(table, settings, list(settings.attribution.models), args, None)
    expected["invalid_records"] = invalid
    expected["attribution"]["invalid_records"] = invalid
    return expected
