"""The pipeline's own record of processed offsets, which catches ranges the consumer skipped."""

from __future__ import annotations

from typing import Any

from stream.processing.offsets import OffsetBook, missing_range


def test_a_forward_jump_is_a_missing_range_and_a_rewind_is_not() -> None:
    assert missing_range(10, 10) is None
    assert missing_range(10, 14) == (10, 14)
    assert missing_range(10, 3) is None  # redelivery after a restart: processed again, no gap


def test_nothing_recorded_means_everything_before_is_missing() -> None:
    assert missing_range(None, 0) is None
    assert missing_range(None, 5) == (0, 5)


def test_the_book_follows_processing_and_falls_back_to_the_table() -> None:
    table: dict[str, Any] = {"2|offsets": {"purchases": 40}}
    book = OffsetBook()
    assert book.expected(table, "purchases", 2) == 40
    assert book.expected(table, "touchpoints", 2) is None
    book.processed("purchases", 2, 40)
    book.processed("purchases", 2, 41)
    book.processed("purchases", 2, 12)  # a redelivered message does not move it back
    assert book.expected(table, "purchases", 2) == 42


def test_persist_writes_once_and_never_moves_back() -> None:
    writes: list[str] = []

    class Recording(dict[str, Any]):
        def __setitem__(self, key: str, value: Any) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    table = Recording({"1|offsets": {"touchpoints": 90, "costs": 7}})
    book = OffsetBook()
    book.processed("touchpoints", 1, 99)
    book.processed("touchpoints", 3, 5)
    book.persist(table, 1)
    assert table["1|offsets"] == {"touchpoints": 100, "costs": 7}
    assert "3|offsets" not in table
    book.persist(table, 1)
    assert writes == ["1|offsets"]


def test_forget_makes_the_table_authoritative_again() -> None:
    book = OffsetBook()
    book.processed("touchpoints", 0, 500)
    book.processed("touchpoints", 1, 7)
    book.forget(0)
    table = {"0|offsets": {"touchpoints": 300}}
    assert book.expected(table, "touchpoints", 0) == 300
    assert book.expected(table, "touchpoints", 1) == 8
