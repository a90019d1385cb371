"""A partition's analytics columns give the report the inputs the rebuilt state gives."""

from __future__ import annotations

import random
import zlib

import polars as pl
import pytest

from attribution.analytics.holdout import HashMembership
from attribution.analytics.inputs import AnalyticsInputs, inputs_from_state
from attribution.events import Cost, Touchpoint, parse_record
from stream.processing import aggregate_keys
from stream.processing.aggregates import record_funnel
from stream.processing.analytics_columns import inputs_from_shares, share_columns
from stream.processing.analytics_parts import (
    FUNNEL,
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


def funnel_of_parts(customers: dict[str, dict]) -> dict:
    """The funnel counts of the parts, counted from the parts."""
    return share_columns(sorted(customers.items()))["funnel"]


def parts_and_funnel_sums(
    log: list, by_campaign: bool = False
) -> tuple[dict[str, dict], dict[str, object]]:
    """Each customer's parts after ``log``, and partition 0's ``P|funnel`` sums kept as the
    parts grew (what a worker's table holds); ``by_campaign``: told the touch's campaign, as
    the runner tells it (stream.processing.records)."""
    customers: dict[str, dict] = {}
    table: dict[str, object] = {}
    for event in log:
        before = customers.get(event.customer_id)
        after = customers[event.customer_id] = apply_to_parts(before, event)
        campaign = event.campaign if by_campaign and isinstance(event, Touchpoint) else None
        record_funnel(table, 0, (before or {}).get(FUNNEL), after.get(FUNNEL), campaign)
    return customers, table


@pytest.mark.parametrize("by_campaign", [False, True])
def test_funnel_sums_kept_as_parts_grow_are_the_counts_of_the_parts(by_campaign: bool) -> None:
    log = [e for e in events(7) if not isinstance(e, Cost)]
    shuffled = log + random.Random(3).sample(log, len(log) // 2)
    random.Random(4).shuffle(shuffled)
    customers, table = parts_and_funnel_sums(shuffled, by_campaign)
    sums = table[aggregate_keys.funnel(0)]
    assert sums["n"] == sum(1 for p in customers.values() if p.get(FUNNEL))  # type: ignore[index]
    counted = funnel_of_parts(customers)
    assert sums["counts"] == counted and len(counted) > 2  # type: ignore[index]
    assert share_columns(sorted(customers.items()), funnel_sums=sums)["funnel"] == counted  # type: ignore[arg-type]


def test_a_partition_whose_parts_predate_its_funnel_sums_is_counted_from_the_parts() -> None:
    """Parts written before ``P|funnel`` existed: the sums count fewer customers than hold a
    funnel part, so they are not taken (they would count only what came later)."""
    log = [e for e in events(8) if not isinstance(e, Cost)]
    customers: dict[str, dict] = {}
    table: dict[str, object] = {}
    for number, event in enumerate(log):
        before = customers.get(event.customer_id)
        after = customers[event.customer_id] = apply_to_parts(before, event)
        if number > len(log) // 2:  # the worker with P|funnel starts half-way
            record_funnel(table, 0, (before or {}).get(FUNNEL), after.get(FUNNEL))
    sums = table[aggregate_keys.funnel(0)]
    counted = funnel_of_parts(customers)
    assert sums["counts"] != counted  # type: ignore[index]
    assert share_columns(sorted(customers.items()), funnel_sums=sums)["funnel"] == counted  # type: ignore[arg-type]


def test_the_runner_keeps_funnel_sums_that_count_every_customer() -> None:
    """So the stream-equals-batch tests compare the report with the kept sums, not a recount."""
    from crm_attribution.generator import GeneratorConfig, generate
    from stream.processing.analytics_shares import partition_shares
    from stream.testing import TestingLog, run_main, stored_partition
    from tests.stream.batch_answers import stream_settings

    settings = stream_settings(partitions=PARTITIONS)
    log = TestingLog(settings)
    log.produce_lines(list(generate(GeneratorConfig(customers=150, days=15, seed=9))), settings)
    run = run_main(log, settings, batch_events=50)
    shares = partition_shares(
        run.customers.items(), run.aggregates.items(), set(range(PARTITIONS)), stored_partition
    )
    for partition, share in shares.items():
        sums = run.aggregates[aggregate_keys.funnel(int(partition))]
        assert share["funnel"] is sums["counts"]


def _funnel_parts() -> list[tuple[str, dict[str, list[str]]]]:
    return [("a", {"spring": ["open", "send"]}), ("b", {"spring": ["send"], "fall": []})]


def test_funnel_sums_that_lost_a_part_s_growth_are_not_trusted() -> None:
    """``n`` agrees but a customer's new interaction was never counted (its customer write
    landed, its ``P|funnel`` write did not; or an older worker grew the part): the share must
    count from the parts, as the batch does."""
    customers = [(c, {FUNNEL: f}) for c, f in _funnel_parts()]
    exact = share_columns(customers)["funnel"]
    assert exact == {"spring": {"reached": 2, "open": 1, "send": 2}, "fall": {"reached": 1}}
    lost = {"n": 2, "counts": {"spring": {"reached": 2, "send": 2}, "fall": {"reached": 1}}}
    assert share_columns(customers, funnel_sums=lost)["funnel"] == exact
    kept = {"n": 2, "counts": exact}
    sums = share_columns(customers, funnel_sums=kept)["funnel"]
    assert sums is exact  # the kept sums themselves, not a recount


def test_funnel_sums_are_not_used_without_exactly_once() -> None:
    """At least once, a batch's customer and aggregate writes may land apart: a count lost on
    one customer and doubled on another cancel in every total, so nothing but the parts can
    be trusted."""
    from stream.processing.analytics_shares import partition_shares

    customers = [(c, {FUNNEL: f}) for c, f in _funnel_parts()]
    values = {c.encode(): {"x": parts} for c, parts in customers}  # version 0 records
    drifted = {"n": 2, "counts": {"spring": {"reached": 2, "send": 2, "open": 2}, "fall": {}}}
    aggregates = [("0|funnel", drifted)]

    def shares(exact: bool) -> dict[str, object]:
        return partition_shares(
            ((k, v) for k, v in values.items()),
            aggregates,
            {0},
            lambda key, value: 0,
            funnel_sums_exact=exact,
        )["0"]

    counted = share_columns(customers)["funnel"]
    assert counted["spring"]["open"] == 1
    assert shares(False)["funnel"] == counted
    assert shares(True)["funnel"] == drifted["counts"]  # its totals agree: exactly once only
    assert "funnel_sums" not in shares(True)  # used by the worker, not shipped


# Funnel names a quote-counting split could misread: braces, quotes, backslashes, commas.
_AWKWARD = ["sp}ring", 'q"uote', "back\\slash", 'x\\"}', "a,b", '"f":{', "\u00e9t\u00e9", "}"]


def test_the_funnel_split_from_a_customer_s_json_is_the_parsed_funnel() -> None:
    import orjson

    from stream.processing.analytics_columns import split_funnel

    funnels: list[dict[str, list[str]]] = [
        {},
        {"spring": ["open"]},
        {"spring": [], "fall": ["click", "open"]},
        *({name: [name, "open"]} for name in _AWKWARD),
        {"ok": ["open"], "later": [_AWKWARD[2]]},
    ]
    others = {"t": 5, "l": {"purchases": {"f": [1, 2.5, "o}"]}}, "h": {"seen": True}}
    for funnel in funnels:
        for at in range(len(others) + 1):
            items = list(others.items())
            parts = dict([*items[:at], (FUNNEL, funnel), *items[at:]])
            text = orjson.dumps(parts)
            split = split_funnel(text)
            if split is None:  # only a backslash makes it parse the whole text
                assert b"\\" in orjson.dumps(funnel)
                continue
            rest, kept = split
            assert orjson.loads(kept) == funnel
            assert orjson.loads(rest) == {k: v for k, v in parts.items() if k != FUNNEL}
    assert split_funnel(orjson.dumps(others)) is None
    assert split_funnel(orjson.dumps({FUNNEL: {"a": ["b"]}})) == (b"{}", b'{"a":["b"]}')


@pytest.mark.parametrize("exact", [True, False])
def test_shares_of_stored_records_are_the_columns_of_their_parsed_parts(exact: bool) -> None:
    """``partition_shares`` reads the funnel parts of version 2 records as text: the same
    columns and counts as the parts parsed whole, with and without the kept sums."""
    from stream.processing import customer_record
    from stream.processing.analytics_shares import partition_shares
    from stream.processing.customer_state import CustomerState

    log = [e for e in events(9) if not isinstance(e, Cost)]
    customers, table = parts_and_funnel_sums(log)
    # Awkward names in a few funnels, counted in the kept sums as record_funnel would.
    for number, customer in enumerate(sorted(customers)[: len(_AWKWARD)]):
        before = customers[customer]
        grown = {**before.get(FUNNEL, {}), _AWKWARD[number]: ["open", _AWKWARD[-number]]}
        customers[customer] = {**before, FUNNEL: grown}
        record_funnel(table, 0, before.get(FUNNEL), grown)
    customers["empty"] = {FUNNEL: {}, "t": 3}
    values = {
        c.encode(): customer_record.encode(CustomerState(c, analytics=p))
        for c, p in customers.items()
    }
    shares = partition_shares(
        values.items(), table.items(), {0}, lambda key, value: 0, funnel_sums_exact=exact
    )["0"]
    sums = table[aggregate_keys.funnel(0)]
    expected = share_columns(sorted(customers.items()), funnel_sums=sums if exact else None)
    assert {k: shares[k] for k in expected} == expected
    assert shares["funnel"] == funnel_of_parts(customers)
    if exact:  # the text tallies agree with the sums: the kept sums themselves
        assert shares["funnel"] is sums["counts"]  # type: ignore[index]
