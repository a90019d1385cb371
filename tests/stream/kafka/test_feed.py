"""The input feed without a broker: batch sizes and waits, order, revocation, bounds, offsets."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from stream.kafka.feed import InputFeed, consumed_offsets, to_record
from stream.types import Record

TOPICS = ("touchpoints", "purchases")


def records(topic: str, partition: int, start: int, count: int) -> list[Record]:
    """``count`` records of one partition from offset ``start``."""
    return [
        Record(topic, partition, offset, b"k", b"v", 1.0) for offset in range(start, start + count)
    ]


def feed_of(max_buffered: int = 100, *partitions: tuple[str, int]) -> InputFeed:
    """A feed assigned ``partitions`` (partition 0 and 1 of both topics by default)."""
    feed = InputFeed(TOPICS, max_buffered)
    feed.assign(partitions or [(t, p) for t in TOPICS for p in (0, 1)])
    return feed


def test_a_full_batch_is_taken_at_once_and_the_rest_stays() -> None:
    async def run() -> None:
        feed = feed_of()
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 7), feed.generation)
        started = time.monotonic()
        batch = await feed.take(5, within_s=10.0)
        assert time.monotonic() - started < 1.0
        assert [r.offset for r in batch] == [0, 1, 2, 3, 4]
        feed.done(batch)
        assert len(feed) == 2
        rest = await feed.take(5, within_s=0.01)
        assert [r.offset for r in rest] == [5, 6]

    asyncio.run(run())


def test_a_short_batch_waits_for_the_time_limit_then_goes() -> None:
    async def run() -> None:
        feed = feed_of()
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 2), feed.generation)
        started = time.monotonic()
        batch = await feed.take(500, within_s=0.2)
        waited = time.monotonic() - started
        assert len(batch) == 2
        assert 0.15 <= waited < 5.0

    asyncio.run(run())


def test_take_waits_for_the_first_record_and_collects_what_arrives_meanwhile() -> None:
    async def run() -> None:
        feed = feed_of()

        async def later() -> None:
            await asyncio.sleep(0.1)
            feed.put(("purchases", 1), records("purchases", 1, 10, 3), feed.generation)
            await asyncio.sleep(0.02)
            feed.put(("purchases", 1), records("purchases", 1, 13, 2), feed.generation)

        task = asyncio.ensure_future(later())
        batch = await feed.take(5, within_s=0.05)
        await task
        assert [r.offset for r in batch][:3] == [10, 11, 12]
        assert all(r.partition == 1 for r in batch)

    asyncio.run(run())


def test_records_leave_in_offset_order_per_partition() -> None:
    async def run() -> None:
        feed = feed_of(1000)
        generation = feed.generation
        for start in range(0, 30, 10):
            for topic in TOPICS:
                for partition in (0, 1):
                    feed.put((topic, partition), records(topic, partition, start, 10), generation)
        taken: list[Record] = []
        while len(feed):
            batch = await feed.take(7, within_s=0.01)
            taken.extend(batch)
            feed.done(batch)
        assert len(taken) == 120
        for topic in TOPICS:
            for partition in (0, 1):
                offsets = [r.offset for r in taken if (r.topic, r.partition) == (topic, partition)]
                assert offsets == list(range(30))

    asyncio.run(run())


def test_records_fetched_again_after_a_seek_back_are_dropped() -> None:
    feed = feed_of()
    tp = ("touchpoints", 0)
    assert feed.put(tp, records(*tp, 0, 5), feed.generation) == 5
    assert feed.put(tp, records(*tp, 3, 4), feed.generation) == 2  # 3 and 4 again
    assert feed.put(tp, records(*tp, 0, 3), feed.generation) == 0
    assert len(feed) == 7


def test_revoked_partitions_lose_their_records_and_take_no_more() -> None:
    async def run() -> None:
        feed = feed_of()
        generation = feed.generation
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 3), generation)
        feed.put(("touchpoints", 1), records("touchpoints", 1, 0, 3), generation)
        feed.revoke([("touchpoints", 0)])
        assert len(feed) == 3
        # Fetched before the revocation: refused even for a partition kept.
        assert feed.put(("touchpoints", 1), records("touchpoints", 1, 3, 1), generation) == 0
        assert feed.put(("touchpoints", 0), records("touchpoints", 0, 3, 1), feed.generation) == 0
        batch = await feed.take(10, within_s=0.01)
        assert {(r.topic, r.partition) for r in batch} == {("touchpoints", 1)}

    asyncio.run(run())


def test_a_partition_assigned_again_starts_from_where_the_consumer_seeks() -> None:
    feed = feed_of()
    tp = ("purchases", 0)
    feed.put(tp, records(*tp, 0, 10), feed.generation)
    feed.revoke([tp])
    feed.assign([tp])
    # The new assignment reads from the committed offset, below what was buffered before.
    assert feed.put(tp, records(*tp, 4, 3), feed.generation) == 3


def test_other_topics_are_never_accepted() -> None:
    feed = feed_of()
    feed.assign([("customers-changelog", 0)])
    assert feed.put(("customers-changelog", 0), records("x", 0, 0, 1), feed.generation) == 0


def test_the_buffer_is_full_at_its_bound_and_has_room_once_taken() -> None:
    async def run() -> None:
        feed = feed_of(10)
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 12), feed.generation)
        assert feed.full()
        started = time.monotonic()
        await feed.wait_room(0.1)  # still full: returns after the timeout
        assert time.monotonic() - started >= 0.09

        async def consumer() -> float:
            began = time.monotonic()
            await feed.wait_room(10.0)
            return time.monotonic() - began

        waiting = asyncio.ensure_future(consumer())
        await asyncio.sleep(0.05)
        batch = await feed.take(5, within_s=0.01)
        assert not feed.full()
        assert await waiting < 5.0
        assert len(batch) == 5

    asyncio.run(run())


def test_a_batch_is_in_hand_until_done() -> None:
    async def run() -> None:
        feed = feed_of()
        await asyncio.wait_for(feed.wait_idle(), 1.0)
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 3), feed.generation)
        batch = await feed.take(3, within_s=0.01)
        waiting = asyncio.ensure_future(feed.wait_idle())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        feed.done(batch)
        await asyncio.wait_for(waiting, 1.0)

    asyncio.run(run())


def test_consumed_offsets_are_one_past_the_last_record_of_each_partition() -> None:
    batch = records("touchpoints", 0, 5, 3) + records("purchases", 1, 0, 2)
    batch += records("touchpoints", 0, 8, 1)
    assert consumed_offsets(batch) == {("touchpoints", 0): 9, ("purchases", 1): 2}
    assert consumed_offsets([]) == {}


def test_an_aiokafka_record_becomes_a_record_with_seconds() -> None:
    fetched = SimpleNamespace(
        topic="purchases", partition=2, offset=7, key=b"c1", value=b"{}", timestamp=1_500
    )
    assert to_record(fetched) == Record("purchases", 2, 7, b"c1", b"{}", 1.5)  # type: ignore[arg-type]
    unset = SimpleNamespace(topic="t", partition=0, offset=0, key=None, value=None, timestamp=0)
    assert to_record(unset).timestamp is None  # type: ignore[arg-type]
