"""Garbage collection for a worker whose tables hold millions of small containers.

The memory store keeps each customer's state as nested lists and dicts, and every batch of
events replaces hundreds of them. CPython starts a full (generation 2) collection once enough
new objects have survived, and it walks every object the tables hold: in the stream benchmark
(6,000 customers, 68,000 events) 36 full collections took 8.6 s of a 27 s run. Table values hold
no reference cycles, so reference counting frees them as they are replaced; a full collection
only finds the rare cycles (asyncio callbacks, exception tracebacks). The worker therefore stops
counting its way to full collections and runs one on a timer (``worker.full_gc_seconds``).

Young collections wait for the end of a batch (:func:`collect_between_batches`). While a batch
runs, the customer states it decoded (a few hundred objects each) are alive; a young collection
then walks them all and promotes them, and the next middle one walks them again, although they
all die when the batch ends. At 3,000 customers over 180 days that was 3.9 s of a 17.6 s drain
(``gc.callbacks`` timing, 2026-12-06); collected between batches, where only survivors are
left, 0.4 s. The allocation threshold stays as a safety net for a huge batch or idle-time
garbage, set far above a batch's allocations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from functools import cache

# Automatic young collections only after this many net allocations (CPython's default is 700):
# a safety net, far above what a batch of worker.batch_events leaves alive at once.
YOUNG_THRESHOLD = 1_000_000
# Between batches, a young and middle collection once this many allocations survived since the
# last one (what the automatic threshold did before, without walking a batch's live states).
YOUNG_BETWEEN_BATCHES = 10_000
MIDDLE_THRESHOLD = 10
# Number of middle-generation collections before a full one: never reached in practice.
FULL_BY_COUNT = 1_000_000_000


def tune_collector() -> None:
    """Leave full collections to :func:`full_collection` (call once, in the worker process)."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, FULL_BY_COUNT)


def collect_between_batches() -> None:
    """Collect the young and middle generations if enough survived since the last collection
    (call when a batch has ended and its states are freed)."""
    if gc.get_count()[0] >= YOUNG_BETWEEN_BATCHES:
        gc.collect(1)


def full_collection() -> int:
    """Collect every generation now; return the number of unreachable objects found."""
    return gc.collect()


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` on a C library without it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)
    return trim


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the operating system; ``False`` where the C
    library cannot (not glibc).

    Every batch replaces hundreds of customer values of about a kilobyte, which CPython takes
    from the C heap: the freed ones leave holes that glibc keeps mapped. After a full
    collection (the worker's timer) ``malloc_trim`` returns them: at 60,000 customers after
    the 180-day log a worker's resident memory went from 371 to 360 MB (2026-12-06).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
