"""Movement between two RFM snapshots: how many customers went from each segment (grade) to each.

A customer present in only one snapshot moves from or to ``(none)``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import polars as pl

from attribution.analytics.rfm import Snapshot

NONE = "(none)"


@dataclass(frozen=True)
class Movement:
    """Counts of customers per (from, to) pair, for segments and for grades."""

    segments: dict[tuple[str, str], int]
    grades: dict[tuple[str, str], int]

    def to_json(self) -> dict[str, Any]:
        """Nested JSON objects: from -> to -> count."""
        return {"segments": _nest(self.segments), "grades": _nest(self.grades)}


def _nest(pairs: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (a, b), n in sorted(pairs.items()):
        out.setdefault(a, {})[b] = n
    return out


def movement(before: Snapshot, after: Snapshot) -> Movement:
    """Segment-to-segment and grade-to-grade counts from ``before`` to ``after``."""
    segments: Counter[tuple[str, str]] = Counter()
    grades: Counter[tuple[str, str]] = Counter()
    for customer in sorted(before.keys() | after.keys()):
        old, new = before.get(customer), after.get(customer)
        segments[(old.segment if old else NONE, new.segment if new else NONE)] += 1
        grades[(old.grade if old else NONE, new.grade if new else NONE)] += 1
    return Movement(dict(segments), dict(grades))


def movement_of_frames(before: pl.DataFrame, after: pl.DataFrame) -> Movement:
    """:func:`movement` over scored frames (``customer_id``, ``segment``, ``grade``)."""
    joined = before.select("customer_id", "segment", "grade").join(
        after.select("customer_id", "segment", "grade"),
        on="customer_id",
        how="full",
        suffix="_to",
        coalesce=True,
    )

    def pairs(name: str) -> dict[tuple[str, str], int]:
        counted = joined.group_by(
            pl.col(name).fill_null(NONE).alias("a"), pl.col(f"{name}_to").fill_null(NONE).alias("b")
        ).len()
        return {(a, b): int(n) for a, b, n in counted.iter_rows()}

    return Movement(pairs("segment"), pairs("grade"))
