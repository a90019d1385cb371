"""The stream's per-customer analytics parts rebuild exactly the batch analytics state."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from attribution.analytics.holdout import HashMembership
from attribution.analytics.report import fold_events
from attribution.events import Cost, InvalidRecord, parse_event
from crm_attribution.generator import GeneratorConfig, generate
from stream.processing.analytics_parts import apply_cost, apply_to_parts, state_from_parts


def events(seed: int) -> list:
    out = []
    for line in generate(GeneratorConfig(customers=300, days=20, seed=seed)):
        try:
            out.append(parse_event(json.loads(line)))
        except InvalidRecord:
            continue
    return out


@pytest.mark.parametrize("hashing", [None, HashMembership("salt", 0.1)])
def test_parts_in_any_order_with_repeats_rebuild_the_batch_state(hashing) -> None:
    log = events(5)
    assert {e.type for e in log} == {"touchpoint", "purchase", "cost", "assignment"}
    batch = fold_events(log, hashing)
    shuffled = log + random.Random(1).sample(log, len(log) // 3)
    random.Random(2).shuffle(shuffled)
    customers: dict[str, dict] = {}
    costs: list[dict] = [{}, {}]  # two partitions' cost keys
    for i, event in enumerate(shuffled):
        if isinstance(event, Cost):
            changed = apply_cost(costs[i % 2], event)
            if changed is not None:
                costs[i % 2] = changed
        else:
            customers[event.customer_id] = apply_to_parts(customers.get(event.customer_id), event)
    stream = state_from_parts(sorted(customers.items()), costs, hashing)
    assert stream.to_json() == batch.to_json()


def test_a_repeated_cost_changes_nothing_and_costs_belong_to_no_customer() -> None:
    cost = next(e for e in events(6) if isinstance(e, Cost))
    once = apply_cost(None, cost)
    assert once is not None and apply_cost(once, cost) is None
    with pytest.raises(ValueError, match="no customer"):
        apply_to_parts(None, cost)


def test_a_touchpoint_of_a_seen_customer_leaves_the_holdout_part_as_a_full_update_would() -> None:
    """apply_to_parts skips the holdout round trip for such touchpoints: it must be a no-op."""
    from attribution.analytics.holdout import CustomerHoldout
    from attribution.events import Touchpoint
    from stream.processing.analytics_parts import HOLDOUT

    parts: dict[str, dict] = {}
    checked = 0
    log = [e for e in events(6) if not isinstance(e, Cost)]
    # The customer with the most touchpoints, whatever the generator's rates.
    busiest = Counter(e.customer_id for e in log if isinstance(e, Touchpoint)).most_common(1)
    for event in log:
        if event.customer_id != busiest[0][0]:
            continue
        before = parts.get(HOLDOUT)
        parts = apply_to_parts(parts, event)
        full = CustomerHoldout.from_json(before) if before else CustomerHoldout()
        full.apply(event)
        assert parts[HOLDOUT] == full.to_json()
        checked += isinstance(event, Touchpoint) and bool(before and before["seen"])
    assert checked > 3


def test_refunds_in_the_parts_net_the_order_as_the_batch_does() -> None:
    from attribution.events import parse_record
    from stream.processing.analytics_parts import order_money, with_original, with_refund

    def record(**fields: object) -> object:
        return parse_record({"customer_id": "c", "ts": "2026-01-05T10:00:00Z", **fields})

    usd = record(type="purchase", event_id="p1", order_id="o1", amount=90.0)  # converted
    parts = with_original(apply_to_parts(None, usd), "p1", "USD", 100.0)  # type: ignore[arg-type]
    unknown = record(type="refund", event_id="r0", order_id="o9", amount=1.0)
    same, problem = with_refund(parts, unknown, "EUR")  # type: ignore[arg-type]
    assert problem == "refund for unknown order 'o9' of customer 'c'" and same == parts
    in_eur = record(type="refund", event_id="r1", order_id="o1", amount=5.0, currency="EUR")
    assert "refund in EUR of order 'o1', which is in USD" in str(with_refund(parts, in_eur, "EUR"))
    quarter = record(type="refund", event_id="r2", order_id="o1", amount=25.0)  # in USD
    parts, problem = with_refund(parts, quarter, "EUR")  # type: ignore[arg-type]
    assert problem is None
    assert with_refund(parts, quarter, "EUR") == (parts, None)  # a repeat changes nothing
    order = order_money(parts, "o1", "EUR")
    assert order is not None and (order.currency, order.total_micros) == ("USD", 100_000_000)
    assert order.net(90.0) == 90.0 * (1.0 - 0.25)
    state = state_from_parts([("c", parts)], [], None, base_currency="EUR")
    assert state.ledger.customers["c"].purchases["p1"].amount == 67.5
    assert state.holdout.customers["c"].purchases["p1"] == (usd.ts_ms, 67_500_000)  # type: ignore[attr-defined]
    rest = record(type="refund", event_id="r3", order_id="o1", amount=75.0)
    parts, _ = with_refund(parts, rest, "EUR")  # type: ignore[arg-type]
    assert order_money(parts, "o1", "EUR").net(90.0) == 0.0  # type: ignore[union-attr]
    too_much = record(type="refund", event_id="r4", order_id="o1", amount=0.01)
    assert "would take order 'o1' below zero" in str(with_refund(parts, too_much, "EUR")[1])
