"""Rolling RFM: recency, frequency and monetary value over a window, scored 1-5 by quintiles.

Tie rule (exact, reproducible): among the n customers active in the window, a customer's
score on one dimension is ``1 + floor(5 * w / n)``, where ``w`` is the number of customers
with a strictly worse value (longer recency; fewer purchases; less revenue). Equal values
always get equal scores, so with many ties scores can skip levels (if everyone is equal,
everyone scores 1: nobody is strictly worse). A snapshot sorts once per dimension:
O(n log n), exact.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.rfm_segments import grade_of, rfm_code, segment_of
from attribution.events import MS_PER_DAY

DEFAULT_WINDOW_DAYS = 365.0


@dataclass(frozen=True)
class RfmValues:
    """Raw RFM of one customer over the window ending at ``as_of``."""

    recency_days: float
    frequency: int
    monetary: float


@dataclass(frozen=True)
class RfmEntry:
    """One customer's place in a snapshot."""

    recency_days: float
    frequency: int
    monetary: float
    r: int
    f: int
    m: int
    code: str
    segment: str
    grade: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON object of the entry."""
        return asdict(self)


Snapshot = dict[str, RfmEntry]
"""customer_id -> entry, at one ``as_of`` time."""


def rfm_values(
    ledger: PurchaseLedger, as_of_ms: int, window_days: float = DEFAULT_WINDOW_DAYS
) -> dict[str, RfmValues]:
    """RFM of each customer with a purchase in the window ``(as_of - window, as_of]``."""
    if window_days <= 0:
        raise ValueError(f"RFM window_days {window_days} must be positive")
    since = as_of_ms - round(window_days * MS_PER_DAY)
    out: dict[str, RfmValues] = {}
    for customer, state in ledger:
        inside = [r for r in state.purchases.values() if since < r.ts_ms <= as_of_ms]
        if not inside:
            continue
        last = max(r.ts_ms for r in inside)
        out[customer] = RfmValues(
            recency_days=(as_of_ms - last) / MS_PER_DAY,
            frequency=len(inside),
            monetary=math.fsum(r.amount for r in inside),
        )
    return out


def quintile_scores(values: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """Scores 1-5 of ``values`` by the module's tie rule: 1 + floor(5 * strictly_worse / n)."""
    n = len(values)
    ordered = sorted(values)
    scores = []
    for v in values:
        if higher_is_better:
            worse = bisect.bisect_left(ordered, v)
        else:
            worse = n - bisect.bisect_right(ordered, v)
        scores.append(1 + (5 * worse) // n)
    return scores


def score_customers(values: Mapping[str, RfmValues]) -> Snapshot:
    """Score, grade and segment every customer of ``values`` against each other."""
    customers = sorted(values)
    rows = [values[c] for c in customers]
    rs = quintile_scores([v.recency_days for v in rows], higher_is_better=False)
    fs = quintile_scores([float(v.frequency) for v in rows])
    ms = quintile_scores([v.monetary for v in rows])
    snapshot: Snapshot = {}
    for customer, v, r, f, m in zip(customers, rows, rs, fs, ms, strict=True):
        snapshot[customer] = RfmEntry(
            v.recency_days,
            v.frequency,
            v.monetary,
            r,
            f,
            m,
            rfm_code(r, f, m),
            segment_of(r, f, m),
            grade_of(r + f + m),
        )
    return snapshot


def rfm_snapshot(
    ledger: PurchaseLedger, as_of_ms: int, window_days: float = DEFAULT_WINDOW_DAYS
) -> Snapshot:
    """Rolling RFM snapshot of the customers active in the window ending at ``as_of_ms``."""
    return score_customers(rfm_values(ledger, as_of_ms, window_days))


def snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    """JSON object of a snapshot, customers sorted."""
    return {c: e.to_json() for c, e in sorted(snapshot.items())}


def snapshot_from_json(data: Mapping[str, Any]) -> Snapshot:
    """Inverse of :func:`snapshot_to_json`."""
    return {c: RfmEntry(**e) for c, e in data.items()}
