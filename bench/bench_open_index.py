"""Bytes per customer of a partition's open-journey index: a dict (before) against OpenIndex.

    python bench/bench_open_index.py [--customers 20000]

Ids like the generator's (``c000123``) as fresh str objects, as the index gets them from the
customers table's keys, and start times spread over four months; tracemalloc counts what the
built index keeps (numpy's lazily imported parts are imported before).
"""

from __future__ import annotations

import argparse
import random
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream.processing.open_index import OpenIndex  # noqa: E402


def kept_bytes(build: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated once ``build()`` returned, and what it built."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, built


def main() -> None:
    """Print both indexes' bytes per customer."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20000)
    n = parser.parse_args().customers
    rng = random.Random(1)
    ids = [f"c{i:06d}".encode() for i in range(n)]
    since = [1_767_225_600_000 + rng.randrange(10**10) for _ in range(n)]
    as_dict, _ = kept_bytes(lambda: {k.decode(): s + 0 for k, s in zip(ids, since, strict=True)})
    kept_bytes(lambda: OpenIndex([("w", 1), ("v", 2)]))
    compact, _ = kept_bytes(
        lambda: OpenIndex((k.decode(), s + 0) for k, s in zip(ids, since, strict=True))
    )
    print(
        f"{n:,} customers with an open journey: dict {as_dict / n:.1f} bytes per customer, "
        f"OpenIndex {compact / n:.1f}"
    )


if __name__ == "__main__":
    main()
