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
