"""The index of customers whose journeys wait for a lagging topic."""

from __future__ import annotations

from stream.held import HeldIndex, consumer_highwater, mark_lagging
from stream.processing import HOLD_ALL_MS, Context


def test_due_customers_come_earliest_first_and_leave_the_index() -> None:
    index = HeldIndex()
    assert not index.known(0)
    index.rebuild(0, [("a", 30), ("b", 10)])
    index.update(0, "c", 20)
    assert index.due(0, 5) == []
    assert index.due(0, 20) == ["b", "c"]
    assert len(index) == 1 and index.partitions() == [0]
    assert index.due(0, None) == ["a"]
    assert index.partitions() == []


def test_a_moved_or_cleared_customer_is_found_only_at_its_current_time() -> None:
    index = HeldIndex()
    index.rebuild(1, [])
    index.update(1, "a", 10)
    index.update(1, "a", 40)  # its held journey changed: the older heap entry is stale
    index.update(1, "b", 15)
    index.update(1, "b", None)
    assert index.due(1, 30) == []
    assert index.due(1, 40) == ["a"]


def test_updates_to_an_unindexed_partition_wait_for_its_rebuild() -> None:
    index = HeldIndex()
    index.update(2, "a", 10)
    assert not index.known(2) and index.due(2, None) == []
    index.rebuild(2, [("a", 10)])
    index.forget(2)
    assert not index.known(2) and len(index) == 0


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


class FakeConsumer:
    """Answers high watermarks like aiokafka's consumer, which asserts on unassigned ones."""

    def __init__(self, ends: dict[tuple[str, int], int]) -> None:
        self.ends = ends

    def highwater(self, tp: tuple[str, int]) -> int:
        assert tp in self.ends, "Partition is not assigned"
        return self.ends[tp]


def test_topics_with_unread_records_lag_and_revoked_ones_stop_lagging() -> None:
    consumer = FakeConsumer({("touch", 0): 100, ("buy", 0): 7, ("touch", 1): 50})
    topics = {"touchpoints": "touch", "purchases": "buy"}
    next_offsets = {("touch", 0): 40, ("buy", 0): 7, ("touch", 1): 50, ("buy", 1): 3}
    lagging = {("purchases", 3)}  # partition 3 was revoked since

    def highwater(topic: str, partition: int) -> int | None:
        return consumer_highwater(consumer, (topic, partition))

    mark_lagging(lagging, [0, 1, 3], topics, next_offsets, highwater, backlog=10)
    assert lagging == {("touchpoints", 0)}  # partition 3: no answer, no longer lagging
    next_offsets[("touch", 0)] = 90  # ten records behind the end: a live stream, not a backlog
    mark_lagging(lagging, [0], topics, next_offsets, highwater, backlog=10)
    assert lagging == set()
    next_offsets[("touch", 0)] = 89
    mark_lagging(lagging, [0], topics, next_offsets, highwater, backlog=10)
    assert lagging == {("touchpoints", 0)}
