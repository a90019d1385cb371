"""The batch engine: totals, the JSON shape, and events versus paths."""

from __future__ import annotations

import json
import math

import pytest

from attribution.engine import Totals, attribute_events, attribute_paths
from attribution.journeys import JourneyRules
from attribution.models.options import ModelOptions
from attribution.paths import PathTable
from tests.attribution.test_journeys import buy, day, touch

RULES = JourneyRules.from_days(lookback_days=30)
OPTIONS = ModelOptions()
HEURISTICS = ["first_touch", "last_touch", "last_non_direct", "linear", "position_based"]


def log() -> list:
    return [
        touch("t1", day(0), "email", "alice"),
        touch("t2", day(2), "direct", "alice"),
        buy("p1", day(3), 40.0, "alice"),
        buy("p1", day(3), 40.0, "alice"),  # duplicate: counted once
        buy("p2", day(4), 15.5, "bob"),  # no touch: unattributed
        touch("t3", day(1), "sms", "carol"),  # expires: null path
        touch("t4", day(40), "push", "dave"),  # newest event: still open
    ]


def test_totals_count_duplicates_once_and_unattributed() -> None:
    report = attribute_events(log(), RULES, HEURISTICS, OPTIONS)
    assert report.to_json()["totals"] == {
        "conversions": 2,
        "value": 55.5,
        "null": 1,
        "unattributed_conversions": 1,
        "invalid_records": 0,
    }
    assert report.open_journeys == 1


def test_json_shape_and_credits() -> None:
    report = attribute_events(log(), RULES, [*HEURISTICS, "time_decay"], OPTIONS)
    data = json.loads(json.dumps(report.to_json()))
    assert list(data) == ["totals", "models"]
    assert list(data["models"]) == [*HEURISTICS, "time_decay"]
    assert data["models"]["first_touch"] == {
        "channels": {"email": {"conversions": 1.0, "value": 40.0}}
    }
    assert data["models"]["last_touch"]["channels"] == {
        "direct": {"conversions": 1.0, "value": 40.0}
    }
    assert data["models"]["last_non_direct"]["channels"] == {
        "email": {"conversions": 1.0, "value": 40.0}
    }
    assert data["models"]["linear"]["channels"] == {
        "direct": {"conversions": 0.5, "value": 20.0},
        "email": {"conversions": 0.5, "value": 20.0},
    }
    decay = data["models"]["time_decay"]["channels"]
    # Ages 3 and 1 days, half-life 7: weights 2^(-3/7) and 2^(-1/7).
    w_email, w_direct = 2 ** (-3 / 7), 2 ** (-1 / 7)
    assert math.isclose(decay["email"]["value"], 40 * w_email / (w_email + w_direct))
    assert math.isclose(decay["email"]["conversions"] + decay["direct"]["conversions"], 1.0)


def test_costs_and_assignments_are_ignored() -> None:
    from attribution.events import parse_event

    cost = parse_event(
        {
            "type": "cost",
            "event_id": "c1",
            "ts": day(1),
            "campaign": "spring",
            "channel": "email",
            "amount": 100,
        }
    )
    plain = attribute_events(log(), RULES, HEURISTICS, OPTIONS).to_json()
    assert attribute_events([cost, *log()], RULES, HEURISTICS, OPTIONS).to_json() == plain


def test_paths_skip_rows_without_touches_but_count_them() -> None:
    table = PathTable.from_paths([["a", "b"], [], ["b"]], [1, 2, 0], [10.0, 4.0, 0.0], [0, 0, 3])
    totals = Totals.from_table(table, invalid_records=2)
    report = attribute_paths(table, totals, ["linear"], OPTIONS)
    assert report.to_json() == {
        "totals": {
            "conversions": 3,
            "value": 14.0,
            "null": 3,
            "unattributed_conversions": 2,
            "invalid_records": 2,
        },
        "models": {
            "linear": {
                "channels": {
                    "a": {"conversions": 0.5, "value": 5.0},
                    "b": {"conversions": 0.5, "value": 5.0},
                }
            }
        },
    }


def test_fractional_counts_stay_fractional() -> None:
    table = PathTable.from_paths([["a"]], [1.5], [3.0])
    totals = Totals.from_table(table)
    assert attribute_paths(table, totals, [], OPTIONS).to_json()["totals"]["conversions"] == 1.5


def test_time_decay_on_paths_explains_it_needs_events() -> None:
    table = PathTable.from_paths([["a"]], [1])
    with pytest.raises(ValueError, match="time_decay"):
        attribute_paths(table, Totals.from_table(table), ["time_decay"], OPTIONS)


def test_events_and_paths_agree_on_heuristics() -> None:
    """The same journeys as a path table give the same credits as the event log."""
    from attribution.journeys import build_journeys, journeys_to_table

    journeys, _ = build_journeys(log(), RULES)
    table = journeys_to_table(journeys)
    by_paths = attribute_paths(table, Totals.from_table(table), HEURISTICS, OPTIONS).to_json()
    by_events = attribute_events(log(), RULES, HEURISTICS, OPTIONS).to_json()
    assert by_paths["models"] == by_events["models"]
