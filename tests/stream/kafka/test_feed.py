"""The input feed without a broker: batch sizes and waits, order, revocation, bounds, offsets."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stream.kafka.feed import FeedConsumer, InputFeed, consumed_offsets, to_record
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


def test_a_held_feed_hands_out_nothing_until_the_next_assignment() -> None:
    async def run() -> None:
        feed = feed_of()
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 3), feed.generation)
        feed.hold()
        taking = asyncio.ensure_future(feed.take(5, within_s=0.01))
        await asyncio.sleep(0.1)
        assert not taking.done()
        feed.assign([("touchpoints", 0)])
        batch = await asyncio.wait_for(taking, 5.0)
        assert [r.offset for r in batch] == [0, 1, 2]

    asyncio.run(run())


def test_a_hold_while_gathering_takes_nothing_and_a_revocation_leaves_no_empty_batch() -> None:
    async def run() -> None:
        feed = feed_of()
        taking = asyncio.ensure_future(feed.take(5, within_s=0.2))
        await asyncio.sleep(0.02)
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 2), feed.generation)
        feed.hold()
        feed.revoke([("touchpoints", 0)])
        await asyncio.sleep(0.4)
        assert not taking.done()
        feed.assign([("touchpoints", 0)])
        await asyncio.sleep(0.1)
        assert not taking.done()  # nothing buffered: still waiting, never an empty batch
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 1), feed.generation)
        batch = await asyncio.wait_for(taking, 5.0)
        assert [r.offset for r in batch] == [0]

    asyncio.run(run())


class FakeThread:
    """The consumer thread's part that FeedConsumer's seek back uses: aiokafka's seeks."""

    def __init__(self, committed: dict[Any, int | None]) -> None:
        self.committed = committed
        self.seeks: list[tuple[str, Any]] = []

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)

    async def seek_to_committed(self) -> dict[Any, int | None]:
        """Faust's thread: every assigned partition to its committed offset, as aiokafka."""
        return await self._ensure_consumer().seek_to_committed(
            *(TP(topic, partition) for topic, partition in self.committed)
        )

    def _ensure_consumer(self) -> Any:
        thread = self

        class Consumer:
            async def seek_to_committed(self, *tps: Any) -> dict[Any, int | None]:
                found = {tp: thread.committed.get((tp.topic, tp.partition)) for tp in tps}
                thread.seeks += [("committed", tp) for tp, offset in found.items() if offset]
                return found

            # No seek_to_beginning: it leaves the position unset, which Faust cannot read.
            async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
                return {tp: 5 for tp in tps}

            def assignment(self) -> set[Any]:
                return {TP(topic, partition) for topic, partition in thread.committed}

            def seek(self, tp: Any, offset: int) -> None:
                assert offset == 5
                thread.seeks.append(("beginning", tp))

        return Consumer()


def feed_consumer(feed: InputFeed, thread: FakeThread) -> FeedConsumer:
    """A FeedConsumer with only what ``_getmany`` reads (no Faust app, no broker)."""
    consumer = FeedConsumer.__new__(FeedConsumer)
    consumer.transport = SimpleNamespace(feed=feed)  # type: ignore[assignment]
    consumer.flow_active = True
    consumer._thread = thread  # type: ignore[assignment]
    return consumer


def fetch_during_rebalance(monkeypatch: Any, feed: InputFeed, fetched: dict[TP, list[Any]]) -> None:
    """Faust's fetch returns ``fetched`` after a revocation and a reassignment (partition 0)."""

    async def fetch(self: Any, active: Any, timeout: float) -> dict[TP, list[Any]]:
        feed.revoke([(tp.topic, tp.partition) for tp in fetched])
        feed.assign([(tp.topic, tp.partition) for tp in fetched if tp.partition == 0])
        return fetched

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", fetch)


def aiokafka_records(topic: str, partition: int, start: int, count: int) -> list[Any]:
    """Fetched records as aiokafka gives them."""
    return [
        SimpleNamespace(
            topic=topic, partition=partition, offset=o, key=b"k", value=b"v", timestamp=1000
        )
        for o in range(start, start + count)
    ]


def test_input_records_of_a_fetch_across_a_rebalance_are_read_again(monkeypatch: Any) -> None:
    """A fetch that straddles a rebalance is refused; the partitions still ours are sought back
    (to the committed offset, or the beginning when none is), so no offset is skipped."""
    feed = feed_of()
    thread = FakeThread({("touchpoints", 0): 40, ("purchases", 0): None})
    fetched = {
        TP("touchpoints", 0): aiokafka_records("touchpoints", 0, 40, 3),
        TP("purchases", 0): aiokafka_records("purchases", 0, 0, 2),
        TP("purchases", 1): aiokafka_records("purchases", 1, 7, 2),  # not ours any more
        TP("crm-customers-changelog", 0): aiokafka_records("crm-customers-changelog", 0, 0, 1),
    }
    fetch_during_rebalance(monkeypatch, feed, fetched)
    consumer = feed_consumer(feed, thread)
    rest = asyncio.run(consumer._getmany(None, 1.0))
    assert list(rest) == [TP("crm-customers-changelog", 0)]
    assert len(feed) == 0
    sought = sorted((how, tp.topic, tp.partition) for how, tp in thread.seeks)
    assert sought == [("beginning", "purchases", 0), ("committed", "touchpoints", 0)]


def test_a_fetch_within_one_assignment_goes_to_the_feed_without_seeks(monkeypatch: Any) -> None:
    feed = feed_of()
    thread = FakeThread({})

    async def fetch(self: Any, active: Any, timeout: float) -> dict[TP, list[Any]]:
        return {TP("touchpoints", 1): aiokafka_records("touchpoints", 1, 0, 4)}

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", fetch)
    rest = asyncio.run(feed_consumer(feed, thread)._getmany(None, 1.0))
    assert rest == {}
    assert len(feed) == 4
    assert thread.seeks == []


def test_with_faust_flow_stopped_the_records_go_back_to_faust(monkeypatch: Any) -> None:
    feed = feed_of()
    fetched = {TP("touchpoints", 1): aiokafka_records("touchpoints", 1, 0, 4)}

    async def fetch(self: Any, active: Any, timeout: float) -> dict[TP, list[Any]]:
        return fetched

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", fetch)
    consumer = feed_consumer(feed, FakeThread({}))
    consumer.flow_active = False
    assert asyncio.run(consumer._getmany(None, 1.0)) == fetched
    assert len(feed) == 0


def test_faust_seek_back_puts_input_partitions_never_committed_at_their_beginning() -> None:
    """Faust drops a fetch made while its flow is stopped and seeks to the committed offsets;
    an input partition never committed must go back to its start, not stay past the records
    dropped (the chaos test's broker outage lost a whole touchpoint partition so)."""
    feed = feed_of()
    thread = FakeThread(
        {
            ("touchpoints", 0): 40,
            ("touchpoints", 2): None,
            ("purchases", 1): 0,
            ("crm-customers-changelog", 2): None,  # a table's: Faust's own business
        }
    )
    committed = asyncio.run(feed_consumer(feed, thread).seek_to_committed())
    assert committed[TP("touchpoints", 0)] == 40
    sought = sorted((how, tp.topic, tp.partition) for how, tp in thread.seeks)
    assert sought == [
        ("beginning", "purchases", 1),
        ("beginning", "touchpoints", 2),
        ("committed", "touchpoints", 0),
    ]


def test_faust_wait_empty_holds_the_feed_and_waits_for_the_batch_in_hand(monkeypatch: Any) -> None:
    """A stop or rebalance (Faust's wait_empty) hands out no further batch and lets the one in
    hand end before Faust's own wait (then the tables close)."""
    order: list[str] = []

    async def faust_wait_empty(self: Any) -> None:
        order.append("faust")

    monkeypatch.setattr(faust_aiokafka.Consumer, "wait_empty", faust_wait_empty)

    async def run() -> None:
        feed = feed_of()
        feed.put(("touchpoints", 0), records("touchpoints", 0, 0, 6), feed.generation)
        in_hand = await feed.take(3, within_s=0.01)
        waiting = asyncio.ensure_future(feed_consumer(feed, FakeThread({})).wait_empty())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        order.append("batch done")
        feed.done(in_hand)
        await asyncio.wait_for(waiting, 5.0)
        taking = asyncio.ensure_future(feed.take(3, within_s=0.01))
        await asyncio.sleep(0.05)
        assert not taking.done()  # the three buffered records stay until an assignment
        taking.cancel()

    asyncio.run(run())
    assert order == ["batch done", "faust"]
