"""The worker's garbage collection: full collections on a timer, not by allocation counts."""

from __future__ import annotations

import gc

from stream.ops.gc_tuning import FULL_BY_COUNT, YOUNG_THRESHOLD, tune_collector


def test_the_worker_leaves_full_collections_to_its_timer() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, FULL_BY_COUNT)
    finally:
        gc.set_threshold(*before)
