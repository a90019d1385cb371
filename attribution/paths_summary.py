"""What the journeys of a path table look like: top paths, path lengths and time lags.

Figures for the dashboard's conversion-paths view (GA4's "top conversion paths", "path
length" and "time lag"), computed from a :class:`~attribution.paths.PathTable` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attribution.paths import PathTable

# Upper bounds (days, exclusive) of the time-lag buckets; the last bucket is open-ended.
LAG_BOUNDS_DAYS = (1.0, 2.0, 3.0, 5.0, 7.0, 14.0, 30.0)
# Path-length buckets (touches, inclusive); the last one is open-ended.
LENGTH_BUCKETS = tuple((n, n) for n in range(1, 11)) + ((11, 15), (16, 20), (21, 30), (31, None))


@dataclass(frozen=True)
class PathRow:
    """One distinct channel path and what its journeys add up to."""

    path: tuple[str, ...]
    journeys: int
    conversions: float
    value: float
    nulls: float

    def to_json(self) -> dict[str, Any]:
        """JSON object (the path as a list of channels)."""
        return {
            "path": list(self.path),
            "journeys": self.journeys,
            "conversions": self.conversions,
            "value": self.value,
            "nulls": self.nulls,
        }


def top_paths(table: PathTable, limit: int = 20) -> list[PathRow]:
    """The ``limit`` paths with the most conversions (ties: more value, then the path)."""
    sums: dict[tuple[int, ...], list[float]] = {}
    offsets, codes = table.offsets, table.codes
    for i in range(table.n_paths):
        key = tuple(codes[offsets[i] : offsets[i + 1]].tolist())
        if not key:
            continue
        row = sums.setdefault(key, [0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += float(table.conversions[i])
        row[2] += float(table.value[i])
        row[3] += float(table.nulls[i])
    rows = [
        PathRow(tuple(table.channels[c] for c in key), int(n), conv, value, nulls)
        for key, (n, conv, value, nulls) in sums.items()
    ]
    rows.sort(key=lambda r: (-r.conversions, -r.value, r.path))
    return rows[:limit]


def length_distribution(table: PathTable) -> list[dict[str, Any]]:
    """Converting paths per number of touches, in :data:`LENGTH_BUCKETS`: conversions, value."""
    lengths = table.lengths
    out = []
    for low, high in LENGTH_BUCKETS:
        in_bucket = lengths >= low if high is None else (lengths >= low) & (lengths <= high)
        rows = in_bucket & (table.conversions > 0)
        if not rows.any():
            continue
        label = f"{low}+" if high is None else (str(low) if low == high else f"{low}-{high}")
        out.append(
            {
                "touches": label,
                "conversions": float(table.conversions[rows].sum()),
                "value": float(table.value[rows].sum()),
            }
        )
    return out


def _lag_label(i: int) -> str:
    low = 0.0 if i == 0 else LAG_BOUNDS_DAYS[i - 1]
    if i == len(LAG_BOUNDS_DAYS):
        return f"{low:g}+ days"
    return f"{low:g}-{LAG_BOUNDS_DAYS[i]:g} days"


def lag_distribution(table: PathTable) -> list[dict[str, Any]] | None:
    """Conversions by days from a journey's first touch to its purchase (None: ages unknown)."""
    if table.ages_days is None:
        return None
    starts = table.offsets[:-1]
    has_touch = table.lengths > 0
    converting = has_touch & (table.conversions > 0)
    # Touches are in time order, so a path's first touch is its oldest.
    first_ages = np.zeros(table.n_paths)
    first_ages[has_touch] = table.ages_days[starts[has_touch]]
    buckets = np.searchsorted(np.asarray(LAG_BOUNDS_DAYS), first_ages, side="right")
    out = []
    for i in range(len(LAG_BOUNDS_DAYS) + 1):
        rows = converting & (buckets == i)
        out.append(
            {
                "lag": _lag_label(i),
                "conversions": float(table.conversions[rows].sum()),
                "value": float(table.value[rows].sum()),
            }
        )
    return out


def paths_summary(table: PathTable, limit: int = 20) -> dict[str, Any]:
    """Top paths, the path-length and the time-lag distributions, as one JSON object."""
    return {
        "top_paths": [row.to_json() for row in top_paths(table, limit)],
        "lengths": length_distribution(table),
        "time_lag": lag_distribution(table),
    }
