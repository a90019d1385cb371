"""The worker's garbage collection: full collections on a timer, young ones between batches."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.ops.gc_tuning import (
    FULL_BY_COUNT,
    YOUNG_BETWEEN_BATCHES,
    YOUNG_THRESHOLD,
    collect_between_batches,
    release_free_memory,
    tune_collector,
)


@pytest.fixture
def tuned() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        tune_collector()
        yield
    finally:
        gc.set_threshold(*before)


def cycles(count: int) -> None:
    """Leave ``count`` lists that refer to themselves: garbage only a collection frees."""
    for _ in range(count):
        alive: list[object] = []
        alive.append(alive)


def test_the_worker_leaves_full_collections_to_its_timer(tuned: None) -> None:
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, FULL_BY_COUNT)
    assert YOUNG_THRESHOLD > 50 * YOUNG_BETWEEN_BATCHES  # a batch's states do not trigger it


def test_between_batches_the_young_garbage_is_collected_once_enough_survived(
    tuned: None,
) -> None:
    gc.collect()
    cycles(YOUNG_BETWEEN_BATCHES + 100)
    assert gc.get_count()[0] >= YOUNG_BETWEEN_BATCHES  # no automatic collection in between
    found: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            found.append(info["collected"])

    gc.callbacks.append(note)
    try:
        collect_between_batches()
    finally:
        gc.callbacks.remove(note)
    assert found and found[0] >= YOUNG_BETWEEN_BATCHES + 100
    assert gc.get_count()[0] < 100


def test_between_batches_few_survivors_cost_no_collection(tuned: None) -> None:
    gc.collect()
    cycles(10)
    ran: list[str] = []
    gc.callbacks.append(lambda phase, info: ran.append(phase))
    try:
        collect_between_batches()
    finally:
        gc.callbacks.pop()
    assert ran == []


def resident_mb() -> float:
    """This process's resident memory (Linux)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def test_free_heap_pages_go_back_to_the_system_after_a_full_collection() -> None:
    blocks = [bytes(2_000) for _ in range(50_000)]  # about 100 MB of the C heap
    del blocks[:25_000]  # freed below live ones: the heap cannot shrink from its top
    before = resident_mb()
    assert release_free_memory()
    assert before - resident_mb() > 20
    del blocks
