"""A partition's analytics columns give the report the inputs the rebuilt state gives."""

from __future__ import annotations

import random
import zlib

import polars as pl
import pytest

from attribution.analytics.holdout import HashMembership
from attribution.analytics.inputs import AnalyticsInputs, inputs_from_state
from attribution.events import Cost, parse_record
from stream.processing.analytics_columns import inputs_from_shares, share_columns
from stream.processing.analytics_parts import (
    apply_cost,
    apply_to_parts,
    state_from_parts,
    with_original,
    with_refund,
)
from tests.stream.processing.test_analytics_parts import events

PARTITIONS = 3


def assert_same_inputs(mine: AnalyticsInputs, theirs: AnalyticsInputs) -> None:
    """Every table equal row for row, and the sums and settings equal."""
    for name in ("purchases", "assignments", "holdout_purchases", "costs"):
        assert getattr(mine, name).equals(getattr(theirs, name)), name
    assert mine.seen.equals(theirs.seen)
    assert mine.funnel.to_json() == theirs.funnel.to_json()
    assert (mine.newest_ms, mine.granularity, mine.hashing, mine.time_zone) == (
        theirs.newest_ms, theirs.granularity, theirs.hashing, theirs.time_zone,
    )  # fmt: skip


@pytest.mark.parametrize("hashing", [None, HashMembership("salt", 0.1)])
def test_columns_of_partitions_give_the_inputs_of_the_rebuilt_state(hashing) -> None:
    log = events(5)
    shuffled = log + random.Random(1).sample(log, len(log) // 3)
    random.Random(2).shuffle(shuffled)
    customers: dict[str, dict] = {}
    costs: list[dict] = [{}, {}]
    for i, event in enumerate(shuffled):
        if isinstance(event, Cost):
            costs[i % 2] = apply_cost(costs[i % 2], event) or costs[i % 2]
        else:
            customers[event.customer_id] = apply_to_parts(customers.get(event.customer_id), event)
    partitions: list[list[tuple[str, dict]]] = [[] for _ in range(PARTITIONS)]
    for customer, parts in sorted(customers.items()):
        partitions[zlib.crc32(customer.encode()) % PARTITIONS].append((customer, parts))
    shares = [share_columns(p) for p in partitions]
    assert all(s["funnel"] for s in shares) and all(s["seen"] for s in shares)
    mine = inputs_from_shares(shares, costs, hashing, "day", "Europe/Berlin")
    state = state_from_parts(sorted(customers.items()), costs, hashing, "day", "Europe/Berlin")
    assert_same_inputs(mine, inputs_from_state(state))


def test_columns_net_refunded_orders_as_the_rebuilt_state_does() -> None:
    def record(**fields: object) -> object:
        return parse_record({"customer_id": "c", "ts": "2026-01-05T10:00:00Z", **fields})

    usd = record(type="purchase", event_id="p1", order_id="o1", amount=90.0)
    other = record(type="purchase", event_id="p2", order_id="o2", amount=10.0)
    parts = with_original(apply_to_parts(None, usd), "p1", "USD", 100.0)  # type: ignore[arg-type]
    parts = apply_to_parts(parts, other)  # type: ignore[arg-type]
    quarter = record(type="refund", event_id="r2", order_id="o1", amount=25.0)
    parts, problem = with_refund(parts, quarter, "EUR")  # type: ignore[arg-type]
    assert problem is None
    plain = apply_to_parts(None, record(type="touchpoint", event_id="t1", channel="email",
                                        customer_id="d"))  # type: ignore[arg-type]  # fmt: skip
    customers = [("c", parts), ("d", plain)]
    mine = inputs_from_shares([share_columns(customers, "EUR")], [], None)
    assert mine.purchases.filter(pl.col("event_id") == "p1")["amount"].to_list() == [67.5]
    assert mine.holdout_purchases["micros"].to_list() == [67_500_000, 10_000_000]
    state = state_from_parts(customers, [], None, base_currency="EUR")
    assert_same_inputs(mine, inputs_from_state(state))


def test_no_share_gives_empty_inputs() -> None:
    empty = inputs_from_shares([share_columns([])], [], None)
    assert empty.newest_ms is None and empty.purchases.height == 0
    assert_same_inputs(empty, inputs_from_state(state_from_parts([], [], None)))
