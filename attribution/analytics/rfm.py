"""Rolling RFM: recency, frequency and monetary value over a window, scored 1-5 by quintiles.

Tie rule (exact, reproducible): among the n customers active in the window, a customer's
score on one dimension is ``1 + floor(5 * w / n)``, where ``w`` is the number of customers
with a strictly worse value (longer recency; fewer purchases; less revenue). Equal values
always get equal scores, so with many ties scores can skip levels (if everyone is equal,
everyone scores 1: nobody is strictly worse). A snapshot sorts once per dimension:
O(n log n), exact. Monetary values are compared in integer micro-units, so 10.10 + 20.20 ties
with 30.30.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from attribution.analytics._common import MICROS
from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.rfm_segments import SEGMENT_OF_CODE, grade_of
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


def purchases_of_ledger(ledger: PurchaseLedger) -> pl.DataFrame:
    """A ledger's purchases as the table the vectorised analytics read."""
    from attribution.analytics.inputs import PURCHASES_SCHEMA, micros_of

    rows = [
        (customer, event_id, r.ts_ms, r.amount, r.order_id)
        for customer, state in ledger.customers.items()
        for event_id, r in state.purchases.items()
    ]
    schema = {k: v for k, v in PURCHASES_SCHEMA.items() if k != "micros"}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(micros=pl.Series(micros_of(frame["amount"].to_numpy())))


def rfm_frame(
    purchases: pl.DataFrame, as_of_ms: int, window_days: float = DEFAULT_WINDOW_DAYS
) -> pl.DataFrame:
    """RFM of each customer with a purchase in ``(as_of - window, as_of]``, by customer id.

    Columns: customer_id, recency_days, frequency, monetary, micros (monetary in micro-units:
    what the monetary score compares, so equal spends tie exactly).
    """
    if window_days <= 0:
        raise ValueError(f"RFM window_days {window_days} must be positive")
    since = as_of_ms - round(window_days * MS_PER_DAY)
    inside = purchases.filter((pl.col("ts_ms") > since) & (pl.col("ts_ms") <= as_of_ms))
    grouped = (
        inside.group_by("customer_id")
        .agg(
            last=pl.col("ts_ms").max(),
            frequency=pl.len().cast(pl.Int64),
            micros=pl.col("micros").sum(),
        )
        .sort("customer_id")
    )
    # Divided by numpy, one correctly rounded division per value: Polars multiplies by the
    # reciprocal of a constant divisor, which can differ in the last bit.
    last = grouped["last"].to_numpy()
    micros = grouped["micros"].to_numpy()
    return grouped.select(
        "customer_id",
        recency_days=pl.Series((as_of_ms - last) / MS_PER_DAY, dtype=pl.Float64),
        frequency="frequency",
        monetary=pl.Series(micros / MICROS, dtype=pl.Float64),
        micros="micros",
    )


def _scores(values: NDArray[Any], higher_is_better: bool) -> NDArray[np.int64]:
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64)
    ordered = np.sort(values)
    if higher_is_better:
        worse = np.searchsorted(ordered, values, side="left")
    else:
        worse = n - np.searchsorted(ordered, values, side="right")
    return np.asarray(1 + (5 * worse) // n, dtype=np.int64)


def quintile_scores(values: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """Scores 1-5 of ``values`` by the module's tie rule: 1 + floor(5 * strictly_worse / n)."""
    return _scores(np.asarray(values, dtype=np.float64), higher_is_better).tolist()


_SEGMENT_NAMES = np.array([SEGMENT_OF_CODE.get(f"{i:03d}", "") for i in range(556)], dtype=object)
_GRADE_NAMES = np.array(["", "", "", *(grade_of(t) for t in range(3, 16))], dtype=object)


def score_frame(values: pl.DataFrame) -> pl.DataFrame:
    """Add r, f, m, code, segment and grade to :func:`rfm_frame`'s rows (scored together)."""
    r = _scores(values["recency_days"].to_numpy(), higher_is_better=False)
    f = _scores(values["frequency"].to_numpy(), higher_is_better=True)
    m = _scores(values["micros"].to_numpy(), higher_is_better=True)
    code = r * 100 + f * 10 + m
    return values.with_columns(
        r=pl.Series(r, dtype=pl.Int64),
        f=pl.Series(f, dtype=pl.Int64),
        m=pl.Series(m, dtype=pl.Int64),
        code=pl.Series(code, dtype=pl.Int64).cast(pl.String),
        segment=pl.Series(_SEGMENT_NAMES[code].tolist(), dtype=pl.String),
        grade=pl.Series(_GRADE_NAMES[r + f + m].tolist(), dtype=pl.String),
    )


def snapshot_frame(
    purchases: pl.DataFrame, as_of_ms: int, window_days: float = DEFAULT_WINDOW_DAYS
) -> pl.DataFrame:
    """Scored RFM of the customers active in the window ending at ``as_of_ms``."""
    return score_frame(rfm_frame(purchases, as_of_ms, window_days))


def frame_to_snapshot(frame: pl.DataFrame) -> Snapshot:
    """A scored frame as a :data:`Snapshot` (customer id -> entry)."""
    out: Snapshot = {}
    for row in frame.iter_rows(named=True):
        out[row["customer_id"]] = RfmEntry(
            row["recency_days"], row["frequency"], row["monetary"], row["r"], row["f"],
            row["m"], row["code"], row["segment"], row["grade"],
        )  # fmt: skip
    return out


def rfm_values(
    ledger: PurchaseLedger, as_of_ms: int, window_days: float = DEFAULT_WINDOW_DAYS
) -> dict[str, RfmValues]:
    """RFM of each customer with a purchase in the window ``(as_of - window, as_of]``."""
    frame = rfm_frame(purchases_of_ledger(ledger), as_of_ms, window_days)
    return {
        row["customer_id"]: RfmValues(row["recency_days"], row["frequency"], row["monetary"])
        for row in frame.iter_rows(named=True)
    }


def score_customers(values: Mapping[str, RfmValues]) -> Snapshot:
    """Score, grade and segment every customer of ``values`` against each other."""
    from attribution.analytics.inputs import micros_of

    customers = sorted(values)
    monetary = np.array([values[c].monetary for c in customers], dtype=np.float64)
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series(customers, dtype=pl.String),
            "recency_days": [values[c].recency_days for c in customers],
            "frequency": pl.Series([values[c].frequency for c in customers], dtype=pl.Int64),
            "monetary": monetary,
            "micros": micros_of(monetary),
        }
    )
    return frame_to_snapshot(score_frame(frame))


def rfm_snapshot(
    ledger: PurchaseLedger, as_of_ms: int, window_days: float = DEFAULT_WINDOW_DAYS
) -> Snapshot:
    """Rolling RFM snapshot of the customers active in the window ending at ``as_of_ms``."""
    return frame_to_snapshot(snapshot_frame(purchases_of_ledger(ledger), as_of_ms, window_days))


def snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    """JSON object of a snapshot, customers sorted."""
    return {c: e.to_json() for c, e in sorted(snapshot.items())}


def snapshot_from_json(data: Mapping[str, Any]) -> Snapshot:
    """Inverse of :func:`snapshot_to_json`."""
    return {c: RfmEntry(**e) for c, e in data.items()}
