"""The batch engine's answers for a generated log, what the stream's tests compare with."""

from __future__ import annotations

import argparse
import json
from typing import Any

from attribution.engine import attribute_events
from attribution.events import InvalidRecord, parse_event
from attribution.journeys import JourneyRules
from attribution.models.options import ModelOptions
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


def batch_attribution(lines: list[str], settings: Settings) -> dict[str, Any]:
    """``crm-attribution attribute --events --format json`` for the log."""
    events, invalid = valid_events(lines)
    a = settings.attribution
    rules = JourneyRules.from_days(a.lookback_days, a.timeout_days, a.allowed_lateness_hours)
    options = ModelOptions(a.markov_order, None, a.direct_channel, a.half_life_days)
    customer_events = [e for e in events if e.type in ("touchpoint", "purchase")]
    report = attribute_events(customer_events, rules, list(a.models), options)
    report.totals.invalid_records = invalid
    return report.to_json()


def batch_report(lines: list[str], settings: Settings) -> dict[str, Any]:
    """``crm-attribution report --format json`` for the log."""
    events, invalid = valid_events(lines)
    args = argparse.Namespace(lookback_days=None, compare_days=30.0, customers=False)
    expected = build_report(events, settings, list(settings.attribution.models), args, None)
    expected["invalid_records"] = invalid
    expected["attribution"]["invalid_records"] = invalid
    return expected
