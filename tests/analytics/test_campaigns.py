"""Campaign economics, the email funnel and per-campaign credit."""

from __future__ import annotations

import json

import pytest

from attribution.analytics.campaigns import (
    CampaignCosts,
    campaign_economics,
    campaign_report,
    format_ratio,
    retention_rate,
)
from attribution.analytics.funnel import FunnelCounts, FunnelTracker, funnel_rates
from attribution.analytics.touch_credit import (
    allocate,
    by_campaign,
    first_purchase_credit,
    last_touch,
    linear,
)
from attribution.events import AnyEvent, Purchase, Touchpoint
from attribution.journeys import ConvertedJourney, JourneyRules, build_journeys
from tests.analytics._events import cost, purchase, touch


def _seed_events() -> list[AnyEvent]:
    events: list[AnyEvent] = [
        cost("spring", "email", 0, 60_000.0, "k1"),
        cost("spring", "sms", 0, 40_000.0, "k2"),
    ]
    for i in range(5000):
        events.append(touch(f"c{i}", 1, "email", "spring", "send"))
        events.append(touch(f"c{i}", 1.001, "email", "spring", "delivered"))
        if i % 10 == 0:
            events.append(purchase(f"c{i}", 2, 10_000.0))
    return events


def test_seed_example_campaign_economics() -> None:
    events = _seed_events()
    costs = CampaignCosts().apply_all(events).by_campaign()
    funnel = FunnelTracker().apply_all(events).totals
    journeys, _ = build_journeys(
        [e for e in events if isinstance(e, Touchpoint | Purchase)],
        JourneyRules(),
    )
    converted = [j for j in journeys if isinstance(j, ConvertedJourney)]
    credits = allocate(converted, last_touch, key=by_campaign)["all"]
    acquired = first_purchase_credit(converted, last_touch)
    report = campaign_report(costs, {"last_touch": credits}, {"last_touch": acquired}, funnel)
    spring = report["last_touch"]["spring"]
    assert spring.cost == 100_000.0
    assert spring.revenue == 5_000_000.0
    assert spring.orders == 500.0 and spring.new_customers == 500.0
    assert spring.cac == 200.0 and spring.cpo == 200.0
    assert spring.revenue_cost_ratio == 50.0 and spring.revenue_cost_ratio_text == "50:1"
    assert spring.roi == 49.0
    assert spring.reached == 5000 and spring.conversion_rate == 0.1
    assert spring.cpl is None  # no leads: undefined, not infinite
    assert json.loads(json.dumps(spring.to_json()))["revenue_cost_ratio_text"] == "50:1"


def test_zero_denominators_are_none() -> None:
    row = campaign_economics(
        "x", cost=0.0, revenue=0.0, orders=0, new_customers=0, leads=0, reached=0
    )
    assert (
        row.roi,
        row.revenue_cost_ratio,
        row.revenue_cost_ratio_text,
        row.cac,
        row.cpl,
        row.cpo,
        row.conversion_rate,
    ) == (None,) * 7
    assert campaign_economics("y", 10.0, 0.0, 0, 0, 0, 0).roi == -1.0
    assert retention_rate(0, 5, 5) is None
    assert retention_rate(100, 110, 30) == 0.8
    assert format_ratio(2.5) == "2.5:1" and format_ratio(1234567.891) == "1234567.89:1"


def test_email_funnel_counts_unique_customers() -> None:
    events: list[AnyEvent] = []
    for i in range(10):
        events += [
            touch(f"c{i}", 0, "email", "news", "send"),
            touch(f"c{i}", 0.1, "email", "news", "delivered"),
        ]
    for i in range(8):
        events.append(touch(f"c{i}", 0.2, "email", "news", "delivered", eid=f"d{i}"))  # dup
    for i in range(4):
        events += [
            touch(f"c{i}", 0.3, "email", "news", "open"),
            touch(f"c{i}", 0.4, "email", "news", "Open", eid=f"o{i}"),
        ]
    events += [
        touch("c0", 0.5, "email", "news", "click"),
        touch("c1", 0.5, "email", "news", "click"),
        touch("c1", 0.6, "email", "news", "lead"),
        touch("x", 1, "web"),
    ]
    tracker = FunnelTracker().apply_all(events)
    rates = funnel_rates(tracker.totals, "news")
    assert (rates.reached, rates.sent, rates.delivered, rates.opens, rates.clicks, rates.leads) == (
        10,
        10,
        10,
        4,
        2,
        1,
    )
    assert rates.open_rate == 0.4 and rates.ctr == 0.2 and rates.ctor == 0.5
    assert funnel_rates(tracker.totals, "none").open_rate is None
    # Two partitions merged by addition give the same counts.
    a = FunnelTracker().apply_all([e for e in events if e.customer_id in {"c0", "c2"}])  # type: ignore[union-attr]
    b = FunnelTracker().apply_all([e for e in events if e.customer_id not in {"c0", "c2"}])  # type: ignore[union-attr]
    merged = FunnelCounts.from_json(json.loads(json.dumps(a.totals.to_json())))
    merged.merge(b.totals)
    assert merged == tracker.totals


def test_costs_are_idempotent_and_mergeable() -> None:
    one = CampaignCosts().apply_all(
        [cost("a", "email", 0, 10.1, "k1"), cost("a", "sms", 1, 0.2, "k2")]
    )
    two = CampaignCosts().apply_all(
        [cost("a", "sms", 1, 0.2, "k2"), cost("b", "email", 40, 5.0, "k3")]
    )
    one.merge(CampaignCosts.from_json(json.loads(json.dumps(two.to_json()))))
    assert one.by_campaign() == {"a": 10.3, "b": 5.0}
    assert one.by_campaign(until_ms=two.events["k3"][0]) == {"a": 10.3}


def test_linear_credit_goes_to_each_touch_campaign() -> None:
    events: list[AnyEvent] = [
        touch("a", 0, "email", "c1"),
        touch("a", 1, "sms", "c2"),
        touch("a", 2, "web"),
        purchase("a", 3, 90.0),
        purchase("a", 50, 10.0),
    ]
    journeys, _ = build_journeys(events, JourneyRules())  # type: ignore[arg-type]
    converted = [j for j in journeys if isinstance(j, ConvertedJourney)]
    credits = allocate(converted, linear, key=by_campaign)["all"]
    assert credits["c1"].value == pytest.approx(30.0) and credits[
        "c2"
    ].conversions == pytest.approx(1 / 3)
    assert set(credits) == {"c1", "c2"}  # the web touch has no campaign
    assert first_purchase_credit(converted, linear) == pytest.approx({"c1": 1 / 3, "c2": 1 / 3})
    with pytest.raises(ValueError, match="one per touch"):
        allocate(converted, lambda j: [1.0], key=by_campaign)
