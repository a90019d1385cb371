"""Garbage collection for a worker whose tables hold millions of small containers.

The memory store keeps each customer's state as nested lists and dicts, and every batch of
events replaces hundreds of them. CPython starts a full (generation 2) collection once enough
new objects have survived, and it walks every object the tables hold: in the stream benchmark
(6,000 customers, 68,000 events) 36 full collections took 8.6 s of a 27 s run. Table values hold
no reference cycles, so reference counting frees them as they are replaced; a full collection
only finds the rare cycles (asyncio callbacks, exception tracebacks). The worker therefore stops
counting its way to full collections and runs one on a timer (``worker.full_gc_seconds``).
"""

from __future__ import annotations

import gc

# Young collections every 10,000 allocations (CPython's default 700 walks the same survivors
# over and over while a batch builds hundreds of customer states), the middle generation as usual.
YOUNG_THRESHOLD = 10_000
MIDDLE_THRESHOLD = 10
# Number of middle-generation collections before a full one: never reached in practice.
FULL_BY_COUNT = 1_000_000_000


def tune_collector() -> None:
    """Leave full collections to :func:`full_collection` (call once, in the worker process)."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, FULL_BY_COUNT)


def full_collection() -> int:
    """Collect every generation now; return the number of unreachable objects found."""
    return gc.collect()
