"""Many customers' journeys from one call of the journey kernel, as rows of their events.

A batch touches hundreds of customers; the kernel
(:func:`attribution.journey_kernel.journey_arrays`, the batch engine's own rules) costs about
the same for one customer as for hundreds, so the
customers' retained events are concatenated, given customer codes and their own expiry clocks,
run through the kernel once, and the journeys split back per customer. A journey comes back as
row numbers into its customer's events: making journey objects is left to the caller, which
needs them only for the journeys that changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from attribution.journey_kernel import NEVER, journey_arrays
from attribution.journeys import EventRow, JourneyRules


@dataclass(frozen=True, slots=True)
class JourneyShapes:
    """One customer's closed journeys, in order, as rows of its events; and its open journey.

    Per journey: ``first`` row, ``touches`` (consecutive touch rows from ``first``),
    ``purchase`` row (-1: a null path), ``kind`` (the kernel's ``CONVERTED``,
    ``UNATTRIBUTED`` or ``NULL``). ``open_row``: first touch row of the open journey (``None``:
    none open).
    """

    first: list[int]
    touches: list[int]
    purchase: list[int]
    kind: list[int]
    open_row: int | None


def journey_shapes(
    customers: Sequence[tuple[Sequence[EventRow], int | None]], rules: JourneyRules
) -> list[JourneyShapes]:
    """Per (events in event order, expiry clock) pair: the customer's journeys (one kernel call)."""
    lengths = np.fromiter((len(rows) for rows, _ in customers), np.int64, len(customers))
    n = int(lengths.sum())
    if n == 0:
        return [JourneyShapes([], [], [], [], None) for _ in customers]
    starts = np.zeros(len(customers) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    code = np.repeat(np.arange(len(customers), dtype=np.int64), lengths)
    every = list(chain.from_iterable(rows for rows, _ in customers))
    ts = np.fromiter((r.ts_ms for r in every), np.int64, n)
    is_purchase = np.fromiter((r.is_purchase for r in every), np.bool_, n)
    clocks = np.fromiter(
        (NEVER if as_of is None else as_of for _, as_of in customers), np.int64, len(customers)
    )
    arrays = journey_arrays(
        code,
        ts,
        is_purchase,
        rules.lookback_ms,
        rules.timeout_ms,
        rules.allowed_lateness_ms,
        np.repeat(clocks, lengths),
    )
    # Journeys are numbered in the order of their first rows, so each customer's are a range.
    owner = code[arrays.first]
    bounds = np.searchsorted(owner, np.arange(len(customers) + 1)).tolist()
    base = starts[owner]
    first = (arrays.first - base).tolist()
    purchase = np.where(arrays.purchase >= 0, arrays.purchase - base, -1).tolist()
    touches = arrays.touches.tolist()
    kind = arrays.kind.tolist()
    # The open rows are in row order: a customer's first one starts its open journey.
    open_rows = arrays.open_rows
    open_owner = code[open_rows]
    leading = np.ones(len(open_rows), np.bool_)
    leading[1:] = open_owner[1:] != open_owner[:-1]
    open_row: dict[int, int] = dict(
        zip(
            open_owner[leading].tolist(),
            (open_rows[leading] - starts[open_owner[leading]]).tolist(),
            strict=True,
        )
    )
    out = []
    for i in range(len(customers)):
        lo, hi = bounds[i], bounds[i + 1]
        out.append(
            JourneyShapes(
                first[lo:hi], touches[lo:hi], purchase[lo:hi], kind[lo:hi], open_row.get(i)
            )  # fmt: skip
        )
    return out
