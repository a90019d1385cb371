"""Amounts in one currency and net of refunds (attribution/money.py), and the business time zone.

The expectations are computed independently: a log with a refund must give exactly what the
same log gives with the order's amount written net; a log in yen with a rate, what it gives
with the amounts converted by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from attribution.engine import attribute_journeys
from attribution.events import parse_record
from attribution.io.event_table import from_events
from attribution.journey_table import build_journey_table
from attribution.journeys import JourneyRules
from attribution.models.options import ModelOptions
from attribution.models.registry import MODELS
from attribution.money import (
    MoneySettings,
    Rate,
    RatesFileError,
    apply_money,
    read_rates_file,
)
from attribution.report_build import ReportParameters, build_report
from crm_attribution.cli import main

RULES = JourneyRules.from_days(30, 30, 1)


def table(*records: dict[str, Any]) -> pl.DataFrame:
    return from_events([parse_record(r) for r in records])


def tp(eid: str, customer: str, channel: str, ts: str, campaign: str | None = None) -> dict:
    out = {"type": "touchpoint", "event_id": eid, "customer_id": customer, "channel": channel,
           "ts": ts}  # fmt: skip
    if campaign:
        out["campaign"] = campaign
    return out


def buy(eid: str, customer: str, order: str, amount: float, ts: str, currency: str | None = None):
    out = {"type": "purchase", "event_id": eid, "customer_id": customer, "order_id": order,
           "amount": amount, "ts": ts}  # fmt: skip
    if currency:
        out["currency"] = currency
    return out


def refund(eid: str, customer: str, order: str, amount: float, ts: str, **extra: Any) -> dict:
    return {"type": "refund", "event_id": eid, "customer_id": customer, "order_id": order,
            "amount": amount, "ts": ts, **extra}  # fmt: skip


def rate(eid: str, currency: str, value: float, ts: str) -> dict:
    return {"type": "rate", "event_id": eid, "currency": currency, "rate": value, "ts": ts}


def journeys_log(c1_amount: float) -> list[dict]:
    return [
        tp("t1", "c1", "email", "2026-01-05T08:00:00Z", "winter"),
        tp("t2", "c1", "push", "2026-01-05T09:00:00Z", "winter"),
        tp("t3", "c1", "email", "2026-01-05T09:30:00Z"),
        buy("p1", "c1", "o1", c1_amount, "2026-01-05T10:00:00Z"),
        tp("t4", "c2", "sms", "2026-01-06T08:00:00Z", "winter"),
        buy("p2", "c2", "o2", 50.0, "2026-01-06T10:00:00Z"),
        tp("t5", "c3", "push", "2026-01-06T08:00:00Z"),
        {
            "type": "assignment",
            "event_id": "a1",
            "customer_id": "c3",
            "group": "control",
            "ts": "2026-01-01T00:00:00Z",
        },  # fmt: skip
        {
            "type": "cost",
            "event_id": "k1",
            "campaign": "winter",
            "channel": "email",
            "amount": 30.0,
            "ts": "2026-01-01T00:00:00Z",
        },  # fmt: skip
    ]


# ----------------------------------------------------------------------------- unchanged


def test_a_log_without_refunds_or_foreign_amounts_comes_back_untouched() -> None:
    events = table(*journeys_log(100.0), buy("p9", "c9", "o9", 3.0, "2026-01-07T00:00:00Z",
                                             "EUR"))  # fmt: skip
    out, invalid = apply_money(events)
    assert out is events and invalid == []


# ----------------------------------------------------------------------------- refunds


def attribution_json(events: pl.DataFrame) -> dict[str, Any]:
    report = attribute_journeys(build_journey_table(events, RULES), list(MODELS), ModelOptions())
    return report.to_json()


def assert_close(a: Any, b: Any, path: str = "") -> None:
    if isinstance(b, dict):
        assert sorted(a) == sorted(b), path
        for key in b:
            assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9), f"{path}: {a} != {b}"
    else:
        assert a == b, path


def test_a_refund_lowers_every_models_value_as_the_net_order_would() -> None:
    refunded, invalid = apply_money(
        table(*journeys_log(100.0), refund("r1", "c1", "o1", 40.0, "2026-01-05T12:00:00Z"))
    )
    assert invalid == []
    net, _ = apply_money(table(*journeys_log(60.0)))
    assert_close(attribution_json(refunded), attribution_json(net))


def test_a_refund_flows_into_every_report_section_as_the_net_order() -> None:
    as_of = 1767744000000  # 2026-01-07T00:00:00Z
    params = ReportParameters()
    refunded, _ = apply_money(
        table(*journeys_log(100.0), refund("r1", "c1", "o1", 40.0, "2026-01-05T12:00:00Z"))
    )
    net, _ = apply_money(table(*journeys_log(60.0)))
    got = build_report(refunded, params, as_of, customer_scores=True).report
    want = build_report(net, params, as_of, customer_scores=True).report
    # RFM monetary, lifetime value, revenue share, holdout, campaign ROI: all on net amounts.
    assert_close(got, want)
    assert got["rfm"]["customers"]["c1"]["monetary"] == pytest.approx(60.0)
    assert got["revenue_share"]["total_revenue"] == pytest.approx(110.0)
    winter = got["campaigns"]["winter"]["models"]["linear"]
    assert winter["attributed_revenue"] == pytest.approx(60.0 / 3 * 2 + 50.0)


def test_refunds_of_an_order_of_two_purchases_and_in_full() -> None:
    events = table(
        buy("p1", "c1", "o1", 30.0, "2026-01-05T10:00:00Z"),
        buy("p2", "c1", "o1", 70.0, "2026-01-05T11:00:00Z"),
        buy("p3", "c2", "o2", 20.0, "2026-01-05T11:00:00Z"),
        refund("r1", "c1", "o1", 25.0, "2026-01-06T10:00:00Z"),
        refund("r1", "c1", "o1", 25.0, "2026-01-06T10:00:00Z"),  # a repeat: counted once
        refund("r2", "c1", "o1", 25.0, "2026-01-07T10:00:00Z"),
        refund("r3", "c2", "o2", 20.0, "2026-01-07T10:00:00Z"),
    )
    out, invalid = apply_money(events)
    assert invalid == []
    amounts = dict(out.filter(pl.col("kind") == 1).select("event_id", "amount").iter_rows())
    # Half of o1 refunded: each of its purchases keeps half; o2 refunded in full keeps 0.
    assert amounts == {"p1": 15.0, "p2": 35.0, "p3": 0.0}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (refund("r9", "c1", "o9", 5.0, "2026-01-06T00:00:00Z"),
         "refund for unknown order 'o9' of customer 'c1'"),
        (refund("r9", "c2", "o1", 5.0, "2026-01-06T00:00:00Z"),
         "refund for unknown order 'o1' of customer 'c2'"),
        (refund("r9", "c1", "o1", 5.0, "2026-01-06T00:00:00Z", currency="USD"),
         "refund in USD of order 'o1', which is in EUR"),
        (refund("r9", "c1", "o1", 100.01, "2026-01-06T00:00:00Z"),
         "refund of 100.01 would take order 'o1' below zero (100.00 of 100.00 left to refund)"),
    ],
)  # fmt: skip
def test_a_refund_that_cannot_apply_is_invalid_with_the_reason(bad: dict, reason: str) -> None:
    events = table(buy("p1", "c1", "o1", 100.0, "2026-01-05T10:00:00Z"), bad)
    out, invalid = apply_money(events)
    assert [(row.line, row.reason) for row in invalid] == [(2, reason)]
    assert out.height == 1 and out["amount"].to_list() == [100.0]


def test_refunds_past_the_order_are_invalid_one_by_one_in_time_order() -> None:
    events = table(
        buy("p1", "c1", "o1", 100.0, "2026-01-05T10:00:00Z"),
        refund("late", "c1", "o1", 30.0, "2026-01-09T00:00:00Z"),
        refund("first", "c1", "o1", 80.0, "2026-01-06T00:00:00Z"),
    )
    out, invalid = apply_money(events)
    assert [row.line for row in invalid] == [2]  # the later one no longer fits
    assert out.filter(pl.col("kind") == 1)["amount"].to_list() == [pytest.approx(20.0)]


# ----------------------------------------------------------------------------- currencies


def test_amounts_convert_at_the_rate_in_force_at_their_time() -> None:
    money = MoneySettings(
        "EUR", (Rate("JPY", 1767225600000, 0.0060), Rate("USD", 1767225600000, 0.90))
    )  # file rates from 2026-01-01
    events = table(
        buy("p1", "c1", "o1", 10_000, "2026-01-05T10:00:00Z", "JPY"),
        rate("fx1", "JPY", 0.0062, "2026-01-06T00:00:00Z"),
        buy("p2", "c1", "o2", 10_000, "2026-01-06T00:00:00Z", "JPY"),
        buy("p3", "c2", "o3", 100, "2026-01-06T00:00:00Z", "USD"),
        buy("p4", "c2", "o4", 7, "2026-01-06T00:00:00Z"),
        {
            "type": "cost",
            "event_id": "k1",
            "campaign": "x",
            "channel": "email",
            "amount": 50,
            "currency": "USD",
            "ts": "2026-01-02T00:00:00Z",
        },  # fmt: skip
        refund("r1", "c1", "o2", 5_000, "2026-01-08T00:00:00Z"),
    )
    out, invalid = apply_money(events, money)
    assert invalid == []
    amounts = dict(out.select("event_id", "amount").iter_rows())
    assert amounts["p1"] == pytest.approx(60.0)  # the file's rate
    # The rate event in force from its own time on; half refunded, at the purchase's rate.
    assert amounts["p2"] == pytest.approx(31.0)
    assert amounts["p3"] == pytest.approx(90.0) and amounts["p4"] == 7
    assert amounts["k1"] == pytest.approx(45.0)
    assert "fx1" not in amounts  # rates leave the table


def test_an_amount_without_a_rate_in_force_is_invalid_never_summed() -> None:
    events = table(
        rate("fx1", "JPY", 0.006, "2026-01-06T00:00:00Z"),
        buy("p1", "c1", "o1", 10_000, "2026-01-05T10:00:00Z", "JPY"),
        buy("p2", "c1", "o2", 5, "2026-01-05T10:00:00Z", "GBP"),
        buy("p3", "c1", "o3", 5, "2026-01-05T10:00:00Z", "EUR"),
        refund("r1", "c1", "o1", 1, "2026-01-07T00:00:00Z"),
    )
    out, invalid = apply_money(events)
    assert [(row.line, row.reason) for row in invalid] == [
        (2, "amount in JPY without an exchange rate into the base currency EUR at "
            "2026-01-05T10:00:00Z (the first JPY rate is from 2026-01-06T00:00:00Z)"),
        (3, "amount in GBP without an exchange rate into the base currency EUR at "
            "2026-01-05T10:00:00Z (no GBP rate at all: add one to the rates file "
            "(business.rates_file) or send a rate event)"),
        (5, "refund for unknown order 'o1' of customer 'c1'"),
    ]  # fmt: skip
    assert out["event_id"].to_list() == ["p3"]


def test_the_currency_report_equals_the_report_of_amounts_converted_by_hand() -> None:
    params = ReportParameters()
    as_of = 1767744000000
    log = journeys_log(100.0)
    yen = [dict(r, amount=r["amount"] / 0.0065, currency="JPY") if r["type"] == "purchase"
           else r for r in log]  # fmt: skip
    yen.append(rate("fx", "JPY", 0.0065, "2025-12-01T00:00:00Z"))
    got = build_report(apply_money(table(*yen))[0], params, as_of, True).report
    want = build_report(apply_money(table(*log))[0], params, as_of, True).report
    assert_close(got, want)


def test_rates_file(tmp_path: Path) -> None:
    good = tmp_path / "rates.csv"
    good.write_text(
        "currency,valid_from,rate\nUSD,2026-01-01,0.9\nJPY,2026-01-05T00:00:00+09:00,0.006\n"
    )
    assert read_rates_file(good) == (
        Rate("USD", 1767225600000, 0.9), Rate("JPY", 1767538800000, 0.006)
    )  # fmt: skip
    bad = tmp_path / "bad.csv"
    for text, message in [
        ("currency,rate\nUSD,1\n", "missing valid_from"),
        ("currency,valid_from,rate\nUSD,2026-01-01,-1\n", "line 2: rate must be"),
        ("currency,valid_from,rate\nUSD,soon,1\n", "line 2: valid_from 'soon'"),
        ("currency,valid_from,rate\n,2026-01-01,1\n", "line 2: no currency"),
    ]:
        bad.write_text(text)
        with pytest.raises(RatesFileError, match=message):
            read_rates_file(bad)
    with pytest.raises(RatesFileError, match="rates file"):
        read_rates_file(tmp_path / "none.csv")


# ----------------------------------------------------------------------------- the commands


def write_log(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_commands_use_the_base_currency_and_rates_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_log(tmp_path / "log.jsonl", [
        tp("t1", "c1", "email", "2026-01-05T08:00:00Z"),
        buy("p1", "c1", "o1", 100, "2026-01-05T10:00:00Z", "USD"),
        refund("r1", "c1", "o1", 10, "2026-01-05T11:00:00Z"),
    ])  # fmt: skip
    # Without a USD rate the order is invalid, and so is its refund: nothing is credited.
    assert main(["attribute", str(log), "--events", "--models", "linear"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["models"]["linear"]["channels"] == {}
    assert "amount in USD without an exchange rate into the base currency EUR" in err
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,valid_from,rate\nUSD,2026-01-01,0.5\n")
    monkeypatch.setenv("CRM_BUSINESS__RATES_FILE", str(rates))
    assert main(["attribute", str(log), "--events", "--models", "linear"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["models"]["linear"]["channels"]["email"]["value"] == pytest.approx(45.0)
    monkeypatch.setenv("CRM_BUSINESS__BASE_CURRENCY", "USD")
    assert main(["report", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["revenue_share"]["total_revenue"] == 90.0
    monkeypatch.setenv("CRM_BUSINESS__RATES_FILE", str(tmp_path / "missing.csv"))
    assert main(["report", str(log)]) == 2
    assert "business.rates_file" in capsys.readouterr().err
    monkeypatch.setenv("CRM_BUSINESS__TIME_ZONE", "Mars/Olympus")
    assert main(["report", str(log)]) == 2
    assert "business.time_zone" in capsys.readouterr().err


# ----------------------------------------------------------------------------- time zone


def test_month_and_day_buckets_follow_the_business_time_zone() -> None:
    log = table(
        *journeys_log(100.0),
        tp("t8", "c8", "email", "2026-01-31T22:00:00Z"),
        buy("p8", "c8", "o8", 40.0, "2026-01-31T23:30:00Z"),  # February 1st in Paris
        buy("p9", "c8", "o9", 10.0, "2026-02-01T00:30:00Z"),
        {
            "type": "assignment",
            "event_id": "a8",
            "customer_id": "c8",
            "group": "treatment",
            "ts": "2026-01-01T00:00:00Z",
        },  # fmt: skip
    )
    utc = build_report(log, ReportParameters()).report
    paris = build_report(log, ReportParameters(time_zone="Europe/Paris")).report
    assert utc["revenue_share"]["periods"]["2026-01"]["total_revenue"] == pytest.approx(190.0)
    assert utc["revenue_share"]["periods"]["2026-02"]["total_revenue"] == pytest.approx(10.0)
    assert paris["revenue_share"]["periods"]["2026-01"]["total_revenue"] == pytest.approx(150.0)
    assert paris["revenue_share"]["periods"]["2026-02"]["total_revenue"] == pytest.approx(50.0)
    # The holdout's only buyer, c8, bought on January 31st and February 1st UTC: both in
    # February in Paris.
    assert set(utc["holdout"]["periods"]["(overall)"]) == {"2026-01", "2026-02"}
    assert set(paris["holdout"]["periods"]["(overall)"]) == {"2026-02"}
    assert paris["holdout"]["periods"]["(overall)"]["2026-02"]["revenue_treated"] == 50.0
    # New York: 18:30 and 19:30 on January 31st, one purchase day (UTC: two, one repeat).
    new_york = build_report(log, ReportParameters(time_zone="America/New_York")).report
    assert utc["clv"]["repeat_customers"] == 1 and new_york["clv"]["repeat_customers"] == 0
    # Everything that is not a bucket is the same.
    assert_close(paris["attribution"], utc["attribution"])
    assert_close(paris["rfm"], utc["rfm"])


def test_the_notebook_api_takes_the_base_currency_rates_and_time_zone(tmp_path: Path) -> None:
    import attribution

    log = write_log(tmp_path / "log.jsonl", [
        tp("t1", "c1", "email", "2026-01-05T08:00:00Z"),
        buy("p1", "c1", "o1", 100, "2026-01-31T23:30:00Z", "USD"),
        refund("r1", "c1", "o1", 20, "2026-02-02T11:00:00Z"),
    ])  # fmt: skip
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,valid_from,rate\nUSD,2026-01-01,0.5\n")
    credits = attribution.attribute(log, models=["linear"], rates=rates, lookback_days=30)
    assert credits.to_json()["totals"]["value"] == pytest.approx(40.0)
    in_usd = attribution.report(log, base_currency="USD", time_zone="Europe/Paris")
    assert set(in_usd.data["revenue_share"]["periods"]) == {"2026-02"}
    assert in_usd.data["revenue_share"]["total_revenue"] == pytest.approx(80.0)
    unconverted = attribution.attribute(log, models=["linear"])
    assert [row.line for row in unconverted.invalid] == [2, 3]
    with pytest.raises(ValueError, match="not an IANA time zone"):
        attribution.report(log, time_zone="Nowhere/Land")


def test_the_per_event_rules_a_stream_calls_are_the_batch_rules() -> None:
    import random

    from attribution.money import rate_in_force, refund_problem

    rng = random.Random(4)
    day = 86_400_000
    for _ in range(30):
        rates = [Rate(rng.choice("AB"), rng.randrange(10) * day, rng.choice([0.5, 2.0, 3.0]))
                 for _ in range(rng.randrange(1, 6))]  # fmt: skip
        events = [buy(f"p{i}", "c", f"o{i}", 10.0, rng.randrange(12) * day, rng.choice("AB"))
                  for i in range(8)]  # fmt: skip
        out, invalid = apply_money(table(*events), MoneySettings("EUR", tuple(rates)))
        got = dict(out.select("event_id", "amount").iter_rows())
        for i, event in enumerate(events):
            expected = rate_in_force(rates, event["currency"], event["ts"])
            if expected is None:
                assert f"p{i}" not in got and (i + 1) in [row.line for row in invalid]
            else:
                assert got[f"p{i}"] == pytest.approx(10.0 * expected)
    assert refund_problem("c", "o", 5, None, None, "EUR", 0) == (
        "refund for unknown order 'o' of customer 'c'"
    )
    assert refund_problem("c", "o", 5_000_000, None, 10_000_000, "EUR", 5_000_000) is None
    assert "below zero" in (refund_problem("c", "o", 1, "EUR", 10, "EUR", 10) or "")


def test_the_per_event_trackers_bucket_in_the_business_time_zone() -> None:
    from attribution.analytics.assists import AssistCounts
    from attribution.analytics.holdout import HoldoutTracker
    from attribution.analytics.touch_credit import allocate
    from attribution.events import parse_record
    from attribution.journeys import ConvertedJourney, Touch

    # 23:30 UTC on January 31st is February 1st in Paris.
    ts_ms = 1_769_902_200_000
    assign = {"type": "assignment", "event_id": "a", "customer_id": "c", "group": "control",
              "ts": "2026-01-01T00:00:00Z"}  # fmt: skip
    purchase = {"type": "purchase", "event_id": "p", "customer_id": "c", "order_id": "o",
                "amount": 5.0, "ts": ts_ms}  # fmt: skip
    events = [parse_record(assign), parse_record(purchase)]
    utc = HoldoutTracker("month").apply_all(events)  # type: ignore[arg-type]
    paris = HoldoutTracker("month", time_zone="Europe/Paris").apply_all(events)  # type: ignore[arg-type]
    assert set(utc.contribution("c")[(None, "control")]) == {"all", "2026-01"}
    assert set(paris.contribution("c")[(None, "control")]) == {"all", "2026-02"}
    touches = (Touch("email", ts_ms - 1000, "t0"), Touch("sms", ts_ms - 500, "t1"))
    journey = ConvertedJourney("c", "o", "p", ts_ms, 5.0, touches)
    counts = AssistCounts("month", time_zone="Europe/Paris").add_all([journey])
    assert set(counts.counts) == {"all", "2026-02"}
    assert AssistCounts.from_json(counts.to_json()) == counts
    credit = allocate([journey], lambda j: [0.5, 0.5], granularity="day", time_zone="Europe/Paris")
    assert set(credit) == {"all", "2026-02-01"}
