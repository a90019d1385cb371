"""Customer states kept decoded between events give exactly what decoding each time gives."""

from __future__ import annotations

import copy

from attribution.events import Touchpoint
from crm_attribution.generator import GeneratorConfig, generate
from stream.customer_state import CustomerState
from stream.processing import StateCache
from tests.stream.test_processing import run_stream_tables


def touch(i: int) -> Touchpoint:
    return Touchpoint(event_id=f"t{i}", customer_id="c1", channel="email", ts=1_000 * i)


def test_a_cached_state_is_used_only_while_the_table_holds_what_it_wrote() -> None:
    cache = StateCache(10)
    customers: dict = {}
    state = cache.load(customers, b"c1", "c1")
    state.add(touch(1), _rules(), None)
    cache.store(customers, b"c1", state)
    assert cache.load(customers, b"c1", "c1") is state
    # The same value read back from elsewhere (a recovery, a RocksDB store) is decoded anew.
    customers[b"c1"] = copy.deepcopy(customers[b"c1"])
    again = cache.load(customers, b"c1", "c1")
    assert again is not state and again.to_json() == state.to_json()
    cache.drop(b"c1")
    customers[b"c1"] = state.to_json()
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


def test_processing_with_and_without_the_cache_writes_the_same_tables(monkeypatch) -> None:
    lines = list(generate(GeneratorConfig(customers=150, days=20, seed=9, invalid_rate=0.02)))
    # Touches held back by 60 records: late events, retractions and re-emissions.
    delayed = sorted(enumerate(lines), key=lambda item: item[0] + (60 if item[0] % 3 == 0 else 0))
    lines = [line for _, line in delayed]
    cached = run_stream_tables(lines, 3, batch_size=25)
    monkeypatch.setattr("stream.processing.STATE_CACHE_CUSTOMERS", 0)
    uncached = run_stream_tables(lines, 3, batch_size=25)
    assert cached[2] == uncached[2]
    assert cached[3] == uncached[3]
    assert cached[0] == uncached[0]


def _rules():  # type: ignore[no-untyped-def]
    from attribution.journeys import JourneyRules

    return JourneyRules(lookback_ms=10**9, timeout_ms=10**9, allowed_lateness_ms=0)
