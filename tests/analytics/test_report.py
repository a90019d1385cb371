"""The analytics report: seed examples through the whole fold, every key, order and merge."""

from __future__ import annotations

import json
import math
import random
import zlib
from datetime import UTC
from functools import cache
from typing import Any

import pytest

from attribution.analytics.campaign_credit import converted, model_weights, position_based
from attribution.analytics.holdout import HashMembership
from attribution.analytics.report import (
    AnalyticsState,
    ReportOptions,
    analytics_report,
    fold_events,
    previous_snapshot,
)
from attribution.engine import attribute_events
from attribution.events import AnyEvent, Purchase, Touchpoint, parse_event
from attribution.journeys import ConvertedJourney, Journey, JourneyRules, Touch, build_journeys
from attribution.models.options import ModelOptions
from attribution.models.registry import MODELS
from crm_attribution.generator import GeneratorConfig, generate
from tests.analytics._events import assign, cost, purchase, touch

CRM = ("email", "push", "sms", "whatsapp")
OPTIONS = ReportOptions(crm_channels=CRM)
RULES = JourneyRules()
REQUIRED_HOLDOUT = {
    "incremental_revenue",
    "ci95",
    "conversion_lift",
    "n_treated",
    "n_control",
    "min_detectable_lift",
    "warning",
}
REQUIRED_CAMPAIGN = {"roi", "revenue_cost_ratio", "cac", "cpl", "cpo", "conversion_rate"}


def _journeys(events: list[AnyEvent], as_of_ms: int | None) -> list[Journey]:
    customer = [e for e in events if isinstance(e, Touchpoint | Purchase)]
    return build_journeys(customer, RULES, as_of_ms)[0]


def _report(
    events: list[AnyEvent], models: list[str], state: AnalyticsState | None = None, **kw: Any
) -> dict[str, Any]:
    """The report as the batch command builds it (attribution and journeys from the events)."""
    state = state or fold_events(events)
    as_of = state.newest_ms
    attribution = attribute_events(events, RULES, models, ModelOptions(), as_of)
    return analytics_report(state, attribution, _journeys(events, as_of), OPTIONS, **kw)


@cache
def _generated(customers: int, days: int, invalid_rate: float = 0.0) -> tuple[AnyEvent, ...]:
    events = []
    for line in generate(
        GeneratorConfig(customers=customers, days=days, invalid_rate=invalid_rate)
    ):
        try:
            events.append(parse_event(json.loads(line)))
        except (ValueError, TypeError):
            continue  # the generator's deliberately invalid records
    return tuple(events)


def test_holdout_seed_example_gives_zero_incremental_revenue() -> None:
    events: list[AnyEvent] = []
    for i in range(100):
        events.append(assign(f"c{i}", "treatment" if i < 95 else "control", 0))
        events.append(purchase(f"c{i}", 1, 1000.0))
    report = _report(events, [])
    overall = report["holdout"]["overall"]
    assert (overall["n_treated"], overall["n_control"]) == (95, 5)
    assert overall["incremental_revenue"] == 0.0
    assert overall["ci95"] == [0.0, 0.0]
    assert overall["conversion_lift"] == 0.0
    assert report["holdout"]["campaigns"] == {}
    assert report["revenue_share"]["total_revenue"] == 100_000.0
    assert report["revenue_share"]["unattributed_revenue"] == 100_000.0
    # One purchase each: nobody repeats, so lifetime value is not fitted, and it says why.
    assert report["clv"]["repeat_customers"] == 0
    assert report["clv"]["bgnbd"] is None
    assert report["clv"]["forecast_status"].startswith("not fitted: 0 repeat customers")
    assert report["rfm"]["active_customers"] == 100
    # Everyone equal: nobody is strictly worse, so everyone scores 111 (Lost, grade E).
    assert report["rfm"]["segments"]["Lost"] == 100 and report["rfm"]["grades"]["E"] == 100


def _campaign_seed() -> list[AnyEvent]:
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


def test_campaign_seed_example_under_every_model() -> None:
    report = _report(_campaign_seed(), list(MODELS))
    spring = report["campaigns"]["spring"]
    assert spring["cost"] == 100_000.0
    assert spring["funnel"]["reached"] == 5000 and spring["funnel"]["delivered"] == 5000
    assert spring["open_rate"] == 0.0 and spring["ctor"] is None  # no opens: CTOR undefined
    assert set(spring["models"]) == set(MODELS)
    for model, row in spring["models"].items():
        assert row["attributed_revenue"] == pytest.approx(5_000_000.0, rel=1e-12), model
        assert spring["attributed_revenue"][model] == row["attributed_revenue"]
        assert row["new_customers"] == pytest.approx(500.0), model
        assert row["cac"] == pytest.approx(200.0), model
        assert row["revenue_cost_ratio_text"] == "50:1", model
        assert row["roi"] == pytest.approx(49.0) and row["conversion_rate"] == pytest.approx(0.1)
        assert row["cpl"] is None
    shares = report["revenue_share"]
    assert shares["total_revenue"] == 5_000_000.0 and shares["unattributed_revenue"] == 0.0
    assert shares["crm_share"] == pytest.approx(dict.fromkeys(MODELS, 1.0))
    assert report["assisted"] == {"email": {"assisted": 500, "last_touch": 500, "ratio": 1.0}}


def test_every_required_key_on_a_generated_log() -> None:
    events = list(_generated(300, 40, 0.01))
    state = fold_events(events)
    assert state.newest_ms is not None
    before = previous_snapshot(state, state.newest_ms, 30)
    report = _report(events, list(MODELS), state, previous_snapshot=before)
    assert {"rfm", "clv", "revenue_share", "assisted", "holdout", "campaigns"} <= set(report)
    rfm = report["rfm"]
    assert sum(rfm["segments"].values()) == sum(rfm["grades"].values()) == rfm["active_customers"]
    assert set(rfm["cut_points"]) == {"recency_days", "frequency", "monetary"}
    assert "customers" not in rfm
    moved = rfm["movement"]
    assert moved["to"] == report["as_of"] and set(moved) == {"from", "to", "segments", "grades"}
    moved_customers = sum(n for row in moved["segments"].values() for n in row.values())
    assert moved_customers >= rfm["active_customers"]
    clv = report["clv"]
    assert {"bgnbd", "gamma_gamma", "forecast_status", "segments"} <= set(clv)
    for row in clv["segments"].values():
        assert {"historical_revenue", "forecast_revenue", "customers"} <= set(row)
    shares = report["revenue_share"]
    assert set(shares["models"]) == set(MODELS) == set(shares["crm_share"])
    for model in shares["models"].values():
        attributed = model["attributed_revenue"] + shares["unattributed_revenue"]
        assert attributed == pytest.approx(shares["total_revenue"], rel=1e-9)
    for row in report["assisted"].values():
        assert set(row) == {"assisted", "last_touch", "ratio"}
    holdout = report["holdout"]
    assert set(holdout["overall"]) >= REQUIRED_HOLDOUT
    assert holdout["overall"]["n_treated"] + holdout["overall"]["n_control"] == 300
    assert report["campaigns"]
    for campaign in report["campaigns"].values():
        assert {"cost", "attributed_revenue", "open_rate", "ctr", "ctor", "models"} <= set(campaign)
        for row in campaign["models"].values():
            assert set(row) >= REQUIRED_CAMPAIGN
    text = json.dumps(report, allow_nan=False)  # no NaN or infinity anywhere
    assert json.loads(text) == report


def test_campaign_credit_adds_up_to_the_engine_channel_credit() -> None:
    """Generated campaigns are ``<channel>-NN``: per channel they sum to the engine credit."""
    events = list(_generated(300, 40))
    report = _report(events, list(MODELS))
    attribution = attribute_events(events, RULES, list(MODELS), ModelOptions())
    for model, result in attribution.results.items():
        per_channel: dict[str, float] = {}
        for name, campaign in report["campaigns"].items():
            channel = name.rsplit("-", 1)[0]
            revenue = campaign["attributed_revenue"].get(model, 0.0)
            per_channel[channel] = per_channel.get(channel, 0.0) + revenue
        total = math.fsum(per_channel.values())
        assert total == pytest.approx(result.total_value(), rel=1e-9), model
        if model == "markov":
            continue  # per-journey split by the model's shares: totals agree, channels need not
        for channel, credit in result.channels.items():
            assert per_channel[channel] == pytest.approx(credit.value, rel=1e-9), (model, channel)


def test_touch_weights_match_the_engine_rules() -> None:
    touches = tuple(
        Touch(ch, ts, f"t{ts}", f"{ch}-x") for ch, ts in [("a", 0), ("direct", 1), ("a", 2)]
    )
    journey = ConvertedJourney("c", "o", "p", 10 * 86_400_000, 30.0, touches)
    options = ModelOptions()
    assert position_based(journey) == [0.4, 0.2, 0.4]
    lnd = model_weights("last_non_direct", options, {})
    assert lnd is not None and lnd.value(journey) == [0.0, 0.0, 1.0]
    shapley = model_weights("shapley", options, {})
    assert shapley is not None and shapley.value(journey) == [0.25, 0.5, 0.25]
    markov = model_weights("markov", options, {"a": (3.0, 30.0), "direct": (1.0, 0.0)})
    assert markov is not None
    assert markov.conversions(journey) == [0.375, 0.25, 0.375]
    assert markov.value(journey) == [0.5, 0.0, 0.5]
    assert model_weights("unknown", options, {}) is None


def _partition(event: AnyEvent, parts: int) -> int:
    customer = getattr(event, "customer_id", None)
    key = customer if customer is not None else event.event_id
    return zlib.crc32(key.encode()) % parts


def _roundtrip(state: AnalyticsState) -> AnalyticsState:
    return AnalyticsState.from_json(json.loads(json.dumps(state.to_json())))


@pytest.mark.parametrize("hashing", [None, HashMembership("salt", 0.2)])
def test_shuffled_and_partitioned_folds_give_the_identical_report(
    hashing: HashMembership | None,
) -> None:
    events = list(_generated(150, 40))
    models = ["last_touch", "linear", "shapley"]
    ordered = fold_events(events, hashing)
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    parts = [
        _roundtrip(fold_events([e for e in shuffled if _partition(e, 3) == k], hashing))
        for k in range(3)
    ]
    merged = fold_events([], hashing)
    for part in parts:
        merged.merge(part)
    merged.merge(_roundtrip(parts[1]))  # a partition delivered twice changes nothing
    assert merged.ledger == ordered.ledger
    expected = _report(events, models, ordered, customer_scores=True)
    got = _report(shuffled, models, merged, customer_scores=True)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert expected["holdout"]["membership"] == ("assignments" if hashing is None else "hash")


def test_overlapping_states_merge_exactly() -> None:
    """The same customer in two states (e.g. a replayed partition) counts once."""
    a_events: list[AnyEvent] = [
        assign("x", "treatment", 0),
        purchase("x", 1, 10.0),
        touch("x", 0.5, "email", "c", "open"),
    ]
    b_events: list[AnyEvent] = [
        assign("x", "control", 2),  # later: wins
        purchase("x", 3, 5.0),
        purchase("x", 1, 10.0),  # shared purchase
        touch("x", 0.5, "email", "c", "open"),
        touch("x", 0.6, "email", "c", "click"),
    ]
    merged = fold_events(a_events)
    merged.merge(fold_events(b_events))
    whole = fold_events(a_events + b_events)
    assert merged.ledger == whole.ledger
    assert merged.revenue.days == {d: v for d, v in whole.revenue.days.items()}
    assert merged.funnel.totals == whole.funnel.totals
    assert merged.funnel.customers == whole.funnel.customers
    report_merged = analytics_report(merged, {}, [], OPTIONS)
    report_whole = analytics_report(whole, {}, [], OPTIONS)
    assert report_merged == report_whole
    assert report_whole["holdout"]["overall"]["n_control"] == 1
    assert report_whole["holdout"]["overall"]["revenue_control"] == 5.0  # counted from day 2


def test_customer_scores_only_when_asked_and_empty_state() -> None:
    events: list[AnyEvent] = [purchase("a", 0, 5.0), purchase("b", 1, 50.0)]
    state = fold_events(events)
    scored = analytics_report(state, {}, [], OPTIONS, customer_scores=True)
    assert set(scored["rfm"]["customers"]) == {"a", "b"}
    # Two customers: b is strictly better than one of two on R and M, 1 + 5*1//2 = 3; F ties.
    assert scored["rfm"]["customers"]["b"]["code"] == "313"
    assert scored["rfm"]["movement"] is None
    with pytest.raises(ValueError, match="no event"):
        analytics_report(AnalyticsState(), {}, [], OPTIONS)
    # Converted journeys only feed campaign credit; unknown models are left out of campaigns.
    assert converted([]) == []


def test_clv_forecast_on_cdnow_through_the_report() -> None:
    """The CDNOW sample as purchase events: the report fits the published BG/NBD parameters."""
    from datetime import datetime

    from tests.analytics.test_clv import _data_dir

    events: list[AnyEvent] = []
    with open(_data_dir() / "CDNOW_sample.txt") as handle:
        for i, line in enumerate(handle):
            _, customer, date, _cds, value = line.split()
            day = datetime.strptime(date, "%Y%m%d").replace(tzinfo=UTC)
            if day <= datetime(1997, 9, 30, tzinfo=UTC):
                events.append(
                    Purchase(
                        event_id=f"p{i}",
                        ts=day,
                        customer_id=str(int(customer)),
                        order_id=f"o{i}",
                        amount=float(value),
                    )
                )
    state = fold_events(events)
    as_of = int(datetime(1997, 9, 30, 12, tzinfo=UTC).timestamp() * 1000)
    clv = analytics_report(state, {}, [], OPTIONS, as_of_ms=as_of)["clv"]
    assert clv["forecast_status"] == "fitted"
    bgnbd = clv["bgnbd"]
    assert (bgnbd["r"], bgnbd["alpha"], bgnbd["a"], bgnbd["b"]) == pytest.approx(
        (0.2426, 4.4135, 0.7929, 2.4258), rel=2e-2
    )
    assert clv["gamma_gamma"]["q"] > 1
    segments = clv["segments"].values()
    assert sum(row["customers"] for row in segments) == clv["customers"]
    assert all(row["forecast_revenue"] > 0 for row in segments)
    assert clv["customers"] == 2357  # every CDNOW sample customer bought in the first quarter
    assert "per_customer" not in clv
    # Asked for, every customer's historical and forecast value, adding up to the segments'.
    detail = analytics_report(state, {}, [], OPTIONS, as_of_ms=as_of, customer_scores=True)
    per = detail["clv"]["per_customer"]
    assert len(per) == 2357
    assert math.fsum(v["historical"] for v in per.values()) == pytest.approx(
        math.fsum(row["historical_revenue"] for row in segments), rel=1e-12
    )
    assert math.fsum(v["forecast"] for v in per.values()) == pytest.approx(
        math.fsum(row["forecast_revenue"] for row in segments), rel=1e-12
    )


def test_revenue_share_per_month_adds_up_to_all_time() -> None:
    """Monthly shares: revenue and each rule-based model's channel value sum to all time."""
    events = list(_generated(300, 40))
    report = _report(events, list(MODELS))
    shares = report["revenue_share"]
    periods = shares["periods"]
    assert shares["period_granularity"] == "month" and len(periods) >= 2
    assert math.fsum(p["total_revenue"] for p in periods.values()) == pytest.approx(
        shares["total_revenue"], rel=1e-12
    )
    for model in (
        "first_touch",
        "last_touch",
        "last_non_direct",
        "linear",
        "position_based",
        "time_decay",
        "shapley",
    ):
        for channel, row in shares["models"][model]["channels"].items():
            monthly = math.fsum(
                (p["channels"][model].get(channel) or 0.0) * p["total_revenue"]
                for p in periods.values()
                if model in p["channels"]
            )
            assert monthly == pytest.approx(row["value"], rel=1e-9, abs=1e-6), (model, channel)
    # Markov splits journeys by removal effects: its months add up to the same total value.
    markov_total = math.fsum(
        (p["attributed_share"]["markov"] or 0.0) * p["total_revenue"] for p in periods.values()
    )
    assert markov_total == pytest.approx(shares["models"]["markov"]["attributed_revenue"], rel=1e-9)
    for period in periods.values():
        assert set(period["crm_share"]) <= set(MODELS)


def test_retention_rate_between_the_snapshots() -> None:
    """Active at start a, b; at end a (bought again) and c (new); b lapsed: (2 - 1) / 2."""
    events: list[AnyEvent] = [
        purchase("a", 0, 10.0),
        purchase("b", 0, 10.0),
        purchase("c", 35, 10.0),
        purchase("a", 40, 10.0),
    ]
    state = fold_events(events)
    assert state.newest_ms is not None
    options = ReportOptions(crm_channels=CRM, rfm_window_days=20)
    before = previous_snapshot(state, state.newest_ms, compare_days=30, window_days=20)
    report = analytics_report(state, {}, [], options, previous_snapshot=before)
    assert report["retention"] == {
        "from": "2024-01-11T00:00:00Z",
        "to": "2024-02-10T00:00:00Z",
        "customers_at_start": 2,
        "customers_at_end": 2,
        "new_customers": 1,
        "retention_rate": 0.5,
    }
    assert analytics_report(state, {}, [], options)["retention"] is None
