"""The processing context: credit horizon, settled history, and the decoded-state cache."""

from __future__ import annotations

import copy

import pytest

from attribution.events import Touchpoint
from attribution.journeys import JourneyRules
from config.settings import load_settings
from crm_attribution.generator import GeneratorConfig, generate
from stream.processing import customer_record
from stream.processing.context import HOLD_ALL_MS, Context, StateCache
from stream.processing.customer_state import CustomerState
from stream.testing import TestingLog, run_main

RULES = JourneyRules(lookback_ms=10**9, timeout_ms=10**9, allowed_lateness_ms=0)


def touch(i: int) -> Touchpoint:
    return Touchpoint(event_id=f"t{i}", customer_id="c1", channel="email", ts=1_000 * i)


def test_credit_horizon_is_the_slowest_lagging_topic() -> None:
    ctx = Context(None, None, [], 0, {})  # type: ignore[arg-type]
    assert ctx.credit_through(0) is None  # nothing lags: credit at once
    ctx.topic_watermarks[("touchpoints", 0)] = 500
    ctx.topic_watermarks[("purchases", 0)] = 900
    ctx.lagging.add(("touchpoints", 0))
    assert ctx.credit_through(0) == 500
    ctx.lagging.add(("purchases", 0))
    assert ctx.credit_through(0) == 500
    ctx.lagging.discard(("touchpoints", 0))
    assert ctx.credit_through(0) == 900
    ctx.lagging.add(("touchpoints", 1))  # lagging, but no event of it read yet
    assert ctx.credit_through(1) == HOLD_ALL_MS


def test_history_is_settled_behind_the_slower_customer_topic() -> None:
    ctx = Context(RULES, None, [], 100, {})  # type: ignore[arg-type]
    ctx.note_event_time("touchpoints", 0, 5_000)
    assert ctx.settled_before(0) is None  # no purchase read yet: nothing is settled
    ctx.note_event_time("purchases", 0, 900)
    ctx.note_event_time("purchases", 0, 400)  # an older event does not move it back
    assert ctx.settled_before(0) == 800


def test_a_cached_state_is_used_only_while_the_table_holds_what_it_wrote() -> None:
    cache = StateCache(10)
    customers: dict = {}
    state = cache.load(customers, b"c1", "c1")
    state.add(touch(1), RULES, None)
    cache.store(customers, b"c1", state)
    assert cache.load(customers, b"c1", "c1") is state
    # The same value read back from elsewhere (a recovery, a RocksDB store) is decoded anew.
    customers[b"c1"] = copy.deepcopy(customers[b"c1"])
    again = cache.load(customers, b"c1", "c1")
    assert again is not state
    assert customer_record.encode(again) == customer_record.encode(state)
    cache.drop(b"c1")
    customers[b"c1"] = customer_record.encode(state)
    assert cache.load(customers, b"c1", "c1") is not state


def test_the_least_recently_written_customers_leave_first() -> None:
    cache = StateCache(2)
    customers: dict = {}
    for key in (b"a", b"b", b"a", b"c"):
        cache.store(customers, key, CustomerState(key.decode()))
    assert list(cache.entries) == [b"a", b"c"]
    off = StateCache(0)
    off.store(customers, b"a", CustomerState("a"))
    assert not off.entries and b"a" in customers


def test_processing_with_and_without_the_cache_writes_the_same_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = list(generate(GeneratorConfig(customers=150, days=20, seed=9, invalid_rate=0.02)))
    # Touches held back by 60 records: late events, retractions and re-emissions.
    delayed = sorted(enumerate(lines), key=lambda item: item[0] + (60 if item[0] % 3 == 0 else 0))
    lines = [line for _, line in delayed]
    settings = load_settings(environ={"CRM_TOPICS__PARTITIONS": "3"})

    def drained() -> tuple[dict, dict, list]:
        log = TestingLog(settings)
        log.produce_lines(lines, settings)
        run = run_main(log, settings, batch_events=25)
        return run.customers, run.aggregates, run.attribution_records()

    cached = drained()
    monkeypatch.setattr("stream.processing.context.STATE_CACHE_CUSTOMERS", 0)
    uncached = drained()
    assert cached == uncached
    assert len(cached[2]) > 100
