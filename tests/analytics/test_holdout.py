"""Holdout: membership rules, exact mergeable sums, incremental revenue, intervals, power."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from scipy import stats

from attribution.analytics.holdout import (
    CustomerHoldout,
    HashMembership,
    HoldoutAggregate,
    HoldoutTracker,
    hash_group,
)
from attribution.analytics.holdout_stats import holdout_report, holdout_result
from attribution.events import AnyEvent, Cost
from tests.analytics._events import assign, purchase, touch


def test_seed_example_equal_spend_gives_zero_incremental_revenue() -> None:
    events: list[AnyEvent] = []
    for i in range(100):
        events.append(assign(f"c{i}", "control" if i < 5 else "treatment", days=0))
        events.append(purchase(f"c{i}", 3, 1000.0))
    tracker = HoldoutTracker(granularity="month").apply_all(events)
    overall = holdout_report(tracker.aggregate)[0]
    assert (overall.experiment, overall.period) == (None, "all")
    assert (overall.n_treated, overall.n_control) == (95, 5)
    assert overall.revenue_treated == 95_000.0 and overall.revenue_control == 5_000.0
    assert overall.incremental_revenue == 0.0
    assert overall.incremental_revenue_ci == (0.0, 0.0)
    assert overall.conversion_lift == 0.0 and overall.conversion_lift_relative == 0.0


def test_latest_assignment_wins_and_counts_purchases_from_then() -> None:
    state = CustomerHoldout()
    state.apply(assign("a", "control", days=1, eid="e2"))
    state.apply(assign("a", "treatment", days=5, eid="e1"))
    state.apply(assign("a", "control", days=3, eid="e3"))
    assert state.members("a", None)[None].group == "treatment"
    # Same time: the larger event_id wins, whatever the arrival order.
    tie = CustomerHoldout()
    tie.apply(assign("b", "control", days=2, eid="z"))
    tie.apply(assign("b", "treatment", days=2, eid="a"))
    assert tie.members("b", None)[None].group == "control"

    tracker = HoldoutTracker(granularity="all").apply_all(
        [purchase("a", 1, 50.0), assign("a", "treatment", days=2), purchase("a", 4, 20.0)]
    )
    group = tracker.aggregate.groups[(None, "treatment")]
    assert group.members == 1 and group.periods["all"].revenue == 20_000_000


def test_campaign_experiments_are_separate() -> None:
    events: list[AnyEvent] = [
        assign("a", "treatment", campaign="spring"),
        assign("b", "control", campaign="spring"),
        assign("a", "control"),
        purchase("a", 1, 10.0),
        purchase("b", 1, 4.0),
    ]
    agg = HoldoutTracker(granularity="all").apply_all(events).aggregate
    assert agg.experiments() == [None, "spring"]
    spring = [r for r in holdout_report(agg) if r.experiment == "spring"][0]
    assert spring.incremental_revenue == 6.0
    overall = [r for r in holdout_report(agg) if r.experiment is None][0]
    assert (overall.n_treated, overall.n_control) == (0, 1)
    assert overall.incremental_revenue is None and overall.underpowered


def test_hash_group_is_stable_and_near_the_share() -> None:
    assert hash_group("customer-1", "s") == hash_group("customer-1", "s")
    # A fixed, process-independent answer (sha256, never Python's hash()).
    import hashlib

    digest = hashlib.sha256(b"salt:42").digest()
    expected = "control" if int.from_bytes(digest[:8], "big") / 2**64 < 0.05 else "treatment"
    assert hash_group("42", "salt") == expected
    control = sum(hash_group(str(i), "salt") == "control" for i in range(20_000))
    assert 800 < control < 1200
    assert all(hash_group(str(i), "x", 1.0) == "control" for i in range(50))
    with pytest.raises(ValueError, match="control_share"):
        hash_group("1", "x", 1.5)


def test_hash_membership_counts_every_seen_customer() -> None:
    hashing = HashMembership(salt="s", control_share=0.5)
    events = [touch(f"c{i}", 1, "email") for i in range(40)] + [purchase("c1", 2, 10.0)]
    agg = HoldoutTracker(granularity="all", hashing=hashing).apply_all(events).aggregate
    total = sum(agg.groups[(None, g)].members for g in ("treatment", "control"))
    assert total == 40


def _random_events(seed: int) -> list[AnyEvent]:
    rng = random.Random(seed)
    events: list[AnyEvent] = []
    for i in range(60):
        events.append(assign(f"c{i}", rng.choice(["treatment", "control"]), days=0))
        for k in range(rng.randint(0, 3)):
            events.append(
                purchase(
                    f"c{i}", rng.uniform(0, 60), round(rng.uniform(1, 200), 2), eid=f"p{i}-{k}"
                )
            )
    return events


def test_results_do_not_depend_on_event_order_or_partitioning() -> None:
    events = _random_events(7)
    batch = HoldoutTracker(granularity="month").apply_all(events)
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    parts = [HoldoutTracker(granularity="month") for _ in range(3)]
    for event in shuffled + shuffled[:10]:  # redelivered events change nothing
        assert not isinstance(event, Cost)
        parts[int(event.customer_id[1:]) % 3].apply(event)  # partitioned by customer
    merged = HoldoutAggregate()
    for part in parts:
        merged.merge(HoldoutAggregate.from_json(json.loads(json.dumps(part.aggregate.to_json()))))
    assert merged.groups == batch.aggregate.groups
    assert holdout_report(merged) == holdout_report(batch.aggregate)
    state = batch.customers["c1"]
    assert CustomerHoldout.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_welch_interval_matches_scipy() -> None:
    events = _random_events(3)
    tracker = HoldoutTracker(granularity="all").apply_all(events)
    revenue = {c: sum(v for _, v in s.purchases.values()) / 1e6 for c, s in tracker}
    groups = {c: s.members(c, None)[None].group for c, s in tracker}
    t = np.array([revenue[c] for c in revenue if groups[c] == "treatment"])
    c = np.array([revenue[c] for c in revenue if groups[c] == "control"])
    agg = tracker.aggregate
    result = holdout_result(agg.groups[(None, "treatment")], agg.groups[(None, "control")])
    test = stats.ttest_ind(t, c, equal_var=False)
    low, high = test.confidence_interval(0.95)
    assert result.incremental_revenue == pytest.approx((t.mean() - c.mean()) * len(t), rel=1e-12)
    assert result.incremental_revenue_ci is not None
    assert result.incremental_revenue_ci[0] == pytest.approx(low * len(t), rel=1e-9)
    assert result.incremental_revenue_ci[1] == pytest.approx(high * len(t), rel=1e-9)
    assert result.welch_df == pytest.approx(test.df, rel=1e-9)
    rate_t, rate_c = (t > 0).mean(), (c > 0).mean()
    assert result.conversion_lift == pytest.approx(rate_t - rate_c)
    se = np.sqrt(rate_t * (1 - rate_t) / len(t) + rate_c * (1 - rate_c) / len(c))
    pooled = ((len(t) - 1) * t.var(ddof=1) + (len(c) - 1) * c.var(ddof=1)) / (len(t) + len(c) - 2)
    assert result.min_detectable_lift == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * np.sqrt(pooled * (1 / len(t) + 1 / len(c)))
    )
    assert result.conversion_lift_ci is not None
    assert result.conversion_lift_ci[1] - result.conversion_lift_ci[0] == pytest.approx(
        2 * stats.norm.ppf(0.975) * se
    )


def test_small_control_group_is_flagged() -> None:
    events: list[AnyEvent] = []
    for i in range(200):
        events.append(assign(f"c{i}", "control" if i < 3 else "treatment"))
        # One buyer in three, 100 each; treated buyers spend 110: a real but small lift.
        if i % 3 == 0:
            events.append(purchase(f"c{i}", 2, 100.0 if i < 3 else 110.0))
    result = holdout_report(HoldoutTracker(granularity="all").apply_all(events).aggregate)[0]
    assert result.underpowered
    assert result.warning is not None and "too small to detect" in result.warning
    assert result.min_detectable_lift is not None
    assert abs(result.incremental_revenue or 0) / 197 < result.min_detectable_lift
    assert json.loads(json.dumps(result.to_json()))["n_control"] == 3


def test_periods_share_the_member_counts() -> None:
    events: list[AnyEvent] = [
        assign("a", "treatment"),
        assign("b", "control"),
        assign("c", "treatment"),
        purchase("a", 1, 10.0),
        purchase("a", 40, 30.0),
        purchase("b", 40, 6.0),
    ]
    report = holdout_report(HoldoutTracker(granularity="month").apply_all(events).aggregate)
    by_period = {r.period: r for r in report}
    assert list(by_period) == ["all", "2024-01", "2024-02"]
    jan, feb = by_period["2024-01"], by_period["2024-02"]
    assert (jan.n_treated, jan.n_control) == (2, 1)
    assert jan.incremental_revenue == 10.0  # (10/2 - 0/1) * 2
    assert feb.incremental_revenue == 30.0 - 12.0  # (30/2 - 6/1) * 2
