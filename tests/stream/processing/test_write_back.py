"""Held table writes: reads see them at once, the changelog gets each key once per flush."""

from __future__ import annotations

from typing import Any

import pytest

from stream.processing import aggregate_keys
from stream.processing.write_back import WriteBack


def aggregate_partition(key: str, value: Any) -> int:
    return aggregate_keys.partition_of(key)


class FakeTable(dict[Any, Any]):
    """The slice of a Faust table WriteBack uses: a mapping and its store."""

    def __init__(self) -> None:
        super().__init__()
        self.changelog: list[tuple[int, Any, Any]] = []

    @property
    def data(self) -> FakeTable:
        return self

    def send_changelog(self, partition: int, key: Any, value: Any) -> None:
        """What the pipeline's changelog sender does with a flushed write."""
        self.changelog.append((partition, key, value))

    def __setitem__(self, key: Any, value: Any) -> None:
        # A direct write is one changelog message to partition 0, as Faust would send.
        if not getattr(self, "_quiet", False):
            self.changelog.append((0, key, value))
        super().__setitem__(key, value)


def quiet(table: FakeTable) -> FakeTable:
    table._quiet = True  # type: ignore[attr-defined]
    return table


def test_reads_see_held_writes_and_a_flush_sends_the_last_value_once() -> None:
    table = quiet(FakeTable())
    table["1|totals"] = {"conversions": 1}
    held = WriteBack(table, aggregate_partition)
    held["1|totals"] = {"conversions": 2}
    held["1|totals"] = {"conversions": 3}
    held["2|credits"] = {"linear": {}}
    assert held["1|totals"] == {"conversions": 3} and held.get("nope") is None
    assert dict(held.items()) == {"1|totals": {"conversions": 3}, "2|credits": {"linear": {}}}
    assert len(held) == 2 and sorted(held) == ["1|totals", "2|credits"]
    assert table.changelog == []
    assert held.flush(table.send_changelog) == 2
    assert table["1|totals"] == {"conversions": 1}  # the store waits for the delivery
    assert held["1|totals"] == {"conversions": 3}  # while reads see the value on its way
    held.store_sent()
    assert table.changelog == [
        (1, "1|totals", {"conversions": 3}),
        (2, "2|credits", {"linear": {}}),
    ]
    assert table["1|totals"] == {"conversions": 3} and held.coalesced == 1
    assert held.flush(table.send_changelog) == 0


def test_keys_cannot_be_deleted() -> None:
    with pytest.raises(TypeError):
        del WriteBack(FakeTable(), aggregate_partition)["k"]


def test_each_key_goes_to_its_own_changelog_partition() -> None:
    """Aggregates credited at the end of a batch belong to no message in hand: the key decides.

    (Once they went to the last message's partition: a recovery then read a stale ``2|totals``
    from another partition's changelog and the restart test lost a quarter of a partition.)
    """
    table = quiet(FakeTable())
    held = WriteBack(table, aggregate_partition)
    for key in ["3|totals", "0|credits", "12|markov|a", "3|totals"]:
        held[key] = key
    held.flush(table.send_changelog)
    assert sorted(table.changelog) == [(0, "0|credits", "0|credits"), (3, "3|totals", "3|totals"),
                                       (12, "12|markov|a", "12|markov|a")]  # fmt: skip
    # A customer's entry goes where its events arrive, whatever partitioner put them there.
    customers = quiet(FakeTable())
    by_customer = WriteBack(customers, lambda key, value: value["p"])
    by_customer[b"c000007"] = {"e": [], "p": 3}
    by_customer[b"c000008"] = {"e": [], "p": 0}
    by_customer.flush(customers.send_changelog)
    assert customers.changelog == [
        (3, b"c000007", {"e": [], "p": 3}),
        (0, b"c000008", {"e": [], "p": 0}),
    ]


def test_editable_values_are_the_batchs_own_copy_until_the_flush() -> None:
    """A batch changes aggregates in place; the store must not see it before the flush."""
    from stream.processing.write_back import editable

    table = quiet(FakeTable())
    table["0|credits"] = {"linear": {"email": [1.0, 10.0]}}
    held = WriteBack(table, aggregate_partition)
    credits = editable(held, "0|credits", dict)
    credits["linear"]["email"][0] += 1.0
    assert editable(held, "0|credits", dict) is credits  # copied once per batch
    assert table["0|credits"] == {"linear": {"email": [1.0, 10.0]}}
    assert held["0|credits"] == {"linear": {"email": [2.0, 10.0]}}
    editable(held, "0|totals", dict)["conversions"] = 1.0
    held.flush(table.send_changelog)
    held.store_sent()
    assert table["0|credits"] == {"linear": {"email": [2.0, 10.0]}}
    assert sorted(table.changelog) == [(0, "0|credits", {"linear": {"email": [2.0, 10.0]}}),
                                       (0, "0|totals", {"conversions": 1.0})]  # fmt: skip
    plain: dict[str, object] = {}
    editable(plain, "1|totals", dict)["null"] = 2.0  # a plain mapping is changed in place
    assert plain == {"1|totals": {"null": 2.0}}
