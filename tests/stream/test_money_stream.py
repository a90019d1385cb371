"""Refunds, rates and amounts in other currencies through the stream: the batch's answer."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import Settings
from stream.testing import TestingLog, run_main, topic_order
from stream.types import Record
from tests.compare import assert_same
from tests.stream.batch_answers import batch_attribution, batch_report, stream_settings

DAY_MS = 86_400_000


def _ms(ts: str) -> int:
    from attribution.events import parse_timestamp

    moment = parse_timestamp(ts)
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def money_log(seed: int = 3, customers: int = 250, days: int = 40) -> list[str]:
    """A generated log with purchases and costs in USD and GBP (rates from a file and from
    rate events, one changing mid-log), refunds (partial, full, several per order, some right
    after the purchase and some weeks later), and money records the batch finds invalid."""
    rng = random.Random(seed)
    lines = list(generate(GeneratorConfig(customers=customers, days=days, seed=seed)))
    start = _ms("2026-01-05T00:00:00Z")
    change = start + days // 2 * DAY_MS  # GBP's rate changes here
    out: list[str] = [
        json.dumps({"type": "rate", "event_id": "x-gbp-1", "currency": "GBP", "rate": 1.17,
                    "ts": _iso(start - DAY_MS)}),
    ]  # fmt: skip
    orders: list[dict[str, Any]] = []
    changed = False
    for line in lines:
        record = json.loads(line)
        if not changed and _ms(record["ts"]) >= change - DAY_MS:
            # Produced a day of event time before it starts: every amount it converts follows.
            out.append(json.dumps({"type": "rate", "event_id": "x-gbp-2", "currency": "GBP",
                                   "rate": 1.1321, "ts": _iso(change)}))  # fmt: skip
            changed = True
        if record["type"] in ("purchase", "cost"):
            pick = rng.random()
            if pick < 0.25:
                record["currency"] = "USD"
            elif pick < 0.45:
                record["currency"] = "GBP"
            elif pick < 0.5:
                record["currency"] = "EUR"
        if record["type"] == "purchase":
            orders.append(record)
            if rng.random() < 0.15:
                # Soon after the purchase: its journey is still in the customer's state.
                amount = round(record["amount"] * rng.choice([0.25, 0.5, 1.0]), 2)
                out.append(json.dumps(record))
                out.append(json.dumps(_refund(record, amount, _ms(record["ts"]) + 60_000)))
                continue
        out.append(json.dumps(record))
    late = []
    for record in rng.sample(orders, len(orders) // 3):
        # Weeks later: the journey was compacted away (P|conv holds it).
        when = _ms(record["ts"]) + rng.randint(10, 30) * DAY_MS
        for part in (0.2, 0.3) if rng.random() < 0.5 else (1.0,):
            late.append(_refund(record, round(record["amount"] * part, 2), when))
            when += DAY_MS
    first = orders[0]
    late += [
        {**_refund(first, 1.0, start + 60 * DAY_MS), "order_id": "no-such-order"},
        _refund(first, first["amount"] * 10, start + 61 * DAY_MS),  # more than the order
        {**_refund(first, 1.0, start + 62 * DAY_MS), "currency": "CHF"},  # not the order's
    ]
    late.sort(key=lambda r: _ms(r["ts"]))
    out += [json.dumps(r) for r in late]
    # No JPY rate at all, and a USD cost before the file's first USD rate.
    out.append(json.dumps({**orders[1], "event_id": "p-jpy", "order_id": "o-jpy",
                           "currency": "JPY", "amount": 1000.0}))  # fmt: skip
    out.append(json.dumps({"type": "cost", "event_id": "k-old", "campaign": "old",
                           "channel": "email", "amount": 3.0, "currency": "USD",
                           "ts": "2025-06-01T00:00:00Z"}))  # fmt: skip
    return out


def _refund(purchase: dict[str, Any], amount: float, ts_ms: int) -> dict[str, Any]:
    return {
        "type": "refund",
        "event_id": f"r-{purchase['event_id']}-{ts_ms}",
        "customer_id": purchase["customer_id"],
        "order_id": purchase["order_id"],
        "amount": amount,
        "ts": _iso(ts_ms),
    }


def money_settings(tmp_path: Path, partitions: int = 3, **environ: str) -> Settings:
    """Settings in EUR with USD from a rates file."""
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,valid_from,rate\nUSD,2026-01-01,0.9\nUSD,2026-01-20,0.92\n")
    return stream_settings(partitions, CRM_BUSINESS__RATES_FILE=str(rates), **environ)


def _run(
    lines: list[str],
    settings: Settings,
    order: Callable[[TestingLog], Sequence[Record]] | None = None,
    **options: Any,
) -> Any:
    log = TestingLog(settings)
    log.produce_lines(lines, settings)
    if order is not None:
        options["order"] = order
    return run_main(log, settings, **options)


def test_refunds_and_currencies_give_the_batch_answer(tmp_path: Path) -> None:
    settings = money_settings(tmp_path)
    lines = money_log()
    run = _run(lines, settings, batch_events=50)
    expected = batch_attribution(lines, settings)
    assert_same(run.attribution(), expected)
    assert_same(run.analytics(), batch_report(lines, settings))
    # The money matters: without refunds and rates the value is another.
    plain = [json.loads(line) for line in lines]
    plain = [json.dumps({k: v for k, v in r.items() if k != "currency"}) for r in plain
             if r["type"] not in ("refund", "rate")]  # fmt: skip
    assert batch_attribution(plain, settings)["totals"]["value"] > expected["totals"]["value"] + 1
    reasons = [letter["reason"] for letter in run.dead_letters()]
    assert len(reasons) == expected["totals"]["invalid_records"]
    assert sum("refund for unknown order 'no-such-order'" in r for r in reasons) == 1
    # Late refunds on top of early ones: some would take their order below zero.
    assert sum("would take order" in r for r in reasons) > 5
    assert sum("refund in CHF of order" in r for r in reasons) == 1
    assert sum("amount in JPY without an exchange rate" in r for r in reasons) == 1
    assert sum("the first USD rate is from 2026-01-01" in r for r in reasons) == 1
    # A refunded order's record is retracted and credited again at its new value.
    records = run.attribution_records()
    retracted = {r["purchase_event_id"] for r in records if r["retracted"]}
    assert len(retracted) > 20


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"order": topic_order("crm-purchases")}, id="purchases-first-held"),
        pytest.param({"batch_events": 7, "reassign_every": 3}, id="small-batches-rebalances"),
        pytest.param({"batch_events": 1000, "hold_backlog": False}, id="one-batch"),
    ],
)
def test_whatever_the_arrival_order_of_topics_refunds_and_rates_give_the_batch_answer(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    settings = money_settings(tmp_path, partitions=4, CRM_BUSINESS__TIME_ZONE="America/New_York")
    lines = money_log(seed=11, customers=150, days=30)
    run = _run(lines, settings, **options)
    assert_same(run.attribution(), batch_attribution(lines, settings))
    assert_same(run.analytics(), batch_report(lines, settings))


def test_a_refund_before_its_purchase_is_a_dead_letter_in_the_stream(tmp_path: Path) -> None:
    """What the batch accepts and the stream cannot: a refund produced before its order."""
    settings = money_settings(tmp_path)
    purchase = {"type": "purchase", "event_id": "p1", "customer_id": "c1", "order_id": "o1",
                "amount": 10.0, "ts": "2026-01-06T00:00:00Z"}  # fmt: skip
    refund = _refund(purchase, 4.0, _ms("2026-01-07T00:00:00Z"))
    lines = [json.dumps(refund), json.dumps(purchase)]
    run = _run(lines, settings)
    assert [d["reason"] for d in run.dead_letters()] == [
        "refund for unknown order 'o1' of customer 'c1'"
    ]
    assert batch_attribution(lines, settings)["totals"]["value"] == 6.0
    assert run.attribution()["totals"]["value"] == 10.0
    # In the order the producer must keep, the two agree.
    in_order = _run(lines[::-1], settings)
    assert_same(in_order.attribution(), batch_attribution(lines, settings))


def test_credit_intervals_of_the_stream_are_the_batch_bootstrap(tmp_path: Path) -> None:
    """`/credits?ci=0.9&resamples=60&seed=4` equals `attribute --ci 0.9 --resamples 60 --seed 4`,
    refunds and currencies included (the refunded journeys are resampled at their new value)."""
    settings = money_settings(tmp_path, CRM_ATTRIBUTION__CREDIT_INTERVALS="true")
    lines = money_log(seed=5, customers=120, days=30)
    run = _run(lines, settings, batch_events=40)
    expected = batch_attribution(lines, settings, ci=0.9, resamples=60, seed=4)
    answer = run.credits(0.9, resamples=60, seed=4)
    assert_same(answer["models"], expected["models"])
    assert answer["confidence"] == expected["confidence"]
    linear = answer["models"]["linear"]["channels"]
    assert all(c["ci"]["value"][0] < c["value"] < c["ci"]["value"][1] for c in linear.values())
    # Without the setting the stream keeps no null path: the intervals could not be the batch's.
    plain = _run(lines, money_settings(tmp_path), batch_events=40)
    assert not any("|null|" in key for key in plain.aggregates)
    assert any("|null|" in key for key in run.aggregates)


@pytest.mark.timeout(120)  # the doubling made this run for hours rather than fail
def test_refunds_in_one_batch_hand_out_each_outcome_once(tmp_path: Path) -> None:
    """A refund rebuilds the batch's customers first; what that rebuild credited is sent once,
    not again at each later refund of the batch (a merge bug once doubled it per refund)."""
    settings = money_settings(tmp_path)
    lines = money_log(customers=80, days=20)
    assert sum('"type": "refund"' in line for line in lines) >= 3
    run = _run(lines, settings, batch_events=len(lines))
    outcomes = run.results[0].outcomes
    assert len({id(outcome) for outcome in outcomes}) == len(outcomes)
    # Each order and model: emitted once more than retracted, its final value the table's.
    net: dict[tuple[str, str], int] = {}
    for result in run.results:
        for record in result.attribution_records():
            key = (record["purchase_event_id"], record["model"])
            net[key] = net.get(key, 0) + (-1 if record["retracted"] else 1)
    assert set(net.values()) == {1}
    totals = run.attribution()["totals"]
    credited = totals["conversions"] - totals["unattributed_conversions"]
    assert len({event_id for event_id, _ in net}) == credited
