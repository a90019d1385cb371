"""Channel revenue share over all company revenue, and assisted conversions."""

from __future__ import annotations

import json

import pytest

from attribution.analytics.assists import AssistCounts, assist_report
from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.revenue_share import (
    DailyRevenue,
    record_purchase,
    revenue_share,
    revenue_share_by_period,
)
from attribution.analytics.touch_credit import CreditLike, last_touch, linear, model_credits
from attribution.events import AnyEvent
from attribution.journeys import ConvertedJourney, JourneyRules, build_journeys
from attribution.results import ChannelCredit
from tests.analytics._events import purchase, touch


def _events() -> list[AnyEvent]:
    return [
        touch("a", 0, "email"), touch("a", 1, "sms"), touch("a", 2, "email"),
        purchase("a", 3, 100.0),
        touch("b", 40, "web"), touch("b", 41, "email"), purchase("b", 42, 50.0),
        purchase("c", 10, 50.0),  # unattributed: in the denominator only
    ]  # fmt: skip


def _converted() -> list[ConvertedJourney]:
    journeys, _ = build_journeys(_events(), JourneyRules())  # type: ignore[arg-type]
    return [j for j in journeys if isinstance(j, ConvertedJourney)]


def test_share_over_total_revenue_including_unattributed() -> None:
    credits: dict[str, dict[str, CreditLike]] = {
        "last_touch": {"email": ChannelCredit(2, 150.0)},
        "linear": {"email": (1.0, 75.0), "sms": (0.5, 25.0), "web": (0.5, 25.0)},
    }
    shares = revenue_share(credits, total_revenue=200.0, crm_channels={"email", "sms"})
    assert shares["last_touch"].channels == {"email": 0.75}
    assert shares["last_touch"].attributed_share == 0.75
    assert shares["linear"].crm_share == 0.5 and shares["linear"].attributed_share == 0.625
    assert revenue_share(credits, 0.0)["linear"].channels["sms"] is None


def test_share_per_period_from_events() -> None:
    ledger, revenue = PurchaseLedger(), DailyRevenue()
    for event in _events() + _events():  # redelivery changes nothing
        if event.type == "purchase":
            record_purchase(ledger, revenue, event)
    assert revenue == DailyRevenue.from_ledger(ledger)
    assert DailyRevenue.from_json(json.loads(json.dumps(revenue.to_json()))) == revenue
    totals = revenue.by_period("month")
    assert totals == {"2024-01": 150.0, "2024-02": 50.0, "all": 200.0}
    credits = model_credits(
        _converted(), {"last_touch": last_touch, "linear": linear}, granularity="month"
    )
    shares = revenue_share_by_period(credits, totals, crm_channels=["email", "sms"])
    assert shares["all"]["last_touch"].channels == {"email": 0.75}
    assert shares["2024-01"]["last_touch"].channels == {"email": pytest.approx(100 / 150)}
    assert shares["2024-02"]["linear"].channels == {"email": 0.5, "web": 0.5}
    assert shares["2024-02"]["linear"].crm_share == 0.5


def test_assisted_conversions_count_once_per_journey() -> None:
    counts = AssistCounts(granularity="month").add_all(_converted())
    report = assist_report(counts)
    # Journey a: email, sms, email -> email and sms assist, email is last. b: web assists.
    assert report["email"].assisted == 1 and report["email"].last_touch == 2
    assert report["sms"].assisted == 1 and report["sms"].last_touch == 0
    assert report["sms"].assisted_to_last_touch is None
    assert report["web"].assisted == 1
    assert report["email"].assisted_to_last_touch == 0.5
    assert assist_report(counts, "2024-02")["web"].assisted == 1
    # Retraction undoes, partitions merge by addition.
    copy = AssistCounts.from_json(json.loads(json.dumps(counts.to_json())))
    for journey in _converted():
        copy.add(journey, sign=-1)
    assert all(v == [0, 0] for p in copy.counts.values() for v in p.values())
    copy.merge(counts)
    assert copy.counts == counts.counts
