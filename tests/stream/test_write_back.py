"""Held table writes: reads see them at once, the changelog gets each key once per flush."""

from __future__ import annotations

from typing import Any

import pytest

from stream.write_back import WriteBack, on_flush, run_flush_hooks


class FakeTable(dict[Any, Any]):
    """The slice of a Faust table WriteBack uses: a mapping, its store, send_changelog."""

    def __init__(self) -> None:
        super().__init__()
        self.changelog: list[tuple[int, Any, Any]] = []

    @property
    def data(self) -> FakeTable:
        return self

    def send_changelog(self, partition: int, key: Any, value: Any) -> None:
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
    held = WriteBack(table)
    held.partition = 1
    held["1|totals"] = {"conversions": 2}
    held["1|totals"] = {"conversions": 3}
    held.partition = 2
    held["2|credits"] = {"linear": {}}
    assert held["1|totals"] == {"conversions": 3} and held.get("nope") is None
    assert dict(held.items()) == {"1|totals": {"conversions": 3}, "2|credits": {"linear": {}}}
    assert len(held) == 2 and sorted(held) == ["1|totals", "2|credits"]
    assert table.changelog == []
    assert held.flush() == 2
    assert table.changelog == [
        (1, "1|totals", {"conversions": 3}),
        (2, "2|credits", {"linear": {}}),
    ]
    assert table["1|totals"] == {"conversions": 3} and held.coalesced == 1
    assert held.flush() == 0


def test_flush_hooks_belong_to_their_app() -> None:
    class App:
        pass

    mine, other = App(), App()
    calls: list[str] = []
    on_flush(mine, lambda: calls.append("mine"))
    run_flush_hooks(other)
    run_flush_hooks(mine)
    assert calls == ["mine"]


def test_keys_cannot_be_deleted() -> None:
    with pytest.raises(TypeError):
        del WriteBack(FakeTable())["k"]


def test_without_holding_every_write_goes_straight_to_the_table() -> None:
    table = FakeTable()
    direct = WriteBack(table, hold=False)
    direct["k"] = 1
    direct["k"] = 2
    assert table.changelog == [(0, "k", 1), (0, "k", 2)] and direct.pending == {}
    assert direct["k"] == 2 and direct.flush() == 0
