"""The index of customers whose journeys wait for a lagging topic."""

from __future__ import annotations

from stream.processing.held import HeldIndex


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
