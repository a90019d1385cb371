"""The vectorised journey kernel against the rules as they were written, event by event.

``per_event_journeys`` is the per-event loop the project used before the kernel (kept here as
the oracle); on arbitrary customers, times, purchases and windows the kernel must cut exactly
the same journeys, in the same order.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.io.event_table import PURCHASE, TOUCHPOINT
from attribution.journey_kernel import CONVERTED, NULL, UNATTRIBUTED, journey_arrays
from attribution.journey_table import _journey_order

Row = tuple[int, bool]  # (time, is purchase)


def per_event_journeys(
    rows: list[Row], lookback: int, timeout: int, lateness: int, as_of: int | None
) -> tuple[list[tuple[str, tuple[int, ...], int]], list[int]]:
    """One customer's journeys by the per-event rules: (kind, touch rows, purchase row)."""
    closed: list[tuple[str, tuple[int, ...], int]] = []
    open_rows: list[int] = []
    for index, (ts, is_purchase) in enumerate(rows):
        if open_rows and ts - rows[open_rows[0]][0] > timeout:
            closed.append(("null", tuple(open_rows), -1))
            open_rows = []
        if not is_purchase:
            open_rows.append(index)
            continue
        horizon = ts - lookback
        stale = [r for r in open_rows if rows[r][0] < horizon]
        if stale:
            closed.append(("null", tuple(stale), -1))
        credited = tuple(r for r in open_rows if rows[r][0] >= horizon)
        closed.append(("converted" if credited else "unattributed", credited, index))
        open_rows = []
    if open_rows and as_of is not None and as_of - lateness - rows[open_rows[0]][0] > timeout:
        closed.append(("null", tuple(open_rows), -1))
        open_rows = []
    return closed, open_rows


KIND_NAMES = {CONVERTED: "converted", UNATTRIBUTED: "unattributed", NULL: "null"}

customer_rows = st.lists(
    st.tuples(st.integers(0, 60), st.booleans().map(lambda b: b and True)), max_size=25
).map(sorted)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(customer_rows, min_size=1, max_size=6),
    st.integers(0, 30),
    st.integers(0, 40),
    st.integers(0, 10),
    st.one_of(st.none(), st.integers(0, 120)),
)
def test_kernel_cuts_the_journeys_the_per_event_rules_cut(
    customers: list[list[Row]], lookback: int, timeout: int, lateness: int, as_of: int | None
) -> None:
    customer = np.concatenate([np.full(len(rows), i) for i, rows in enumerate(customers)])
    flat = [row for rows in customers for row in rows]
    ts = np.array([t for t, _ in flat], dtype=np.int64)
    purchase = np.array([p for _, p in flat], dtype=np.bool_)
    arrays = journey_arrays(customer.astype(np.int64), ts, purchase, lookback, timeout,
                            lateness, as_of)  # fmt: skip
    expected: list[tuple[str, tuple[int, ...], int]] = []
    expected_open: list[int] = []
    offset = 0
    for rows in customers:
        closed, still_open = per_event_journeys(rows, lookback, timeout, lateness, as_of)
        for kind, touches, bought in closed:
            shifted = tuple(r + offset for r in touches)
            expected.append((kind, shifted, bought + offset if bought >= 0 else -1))
        expected_open += [r + offset for r in still_open]
        offset += len(rows)
    got = [
        (KIND_NAMES[int(k)], tuple(range(f, f + n)), int(p))
        for f, n, p, k in zip(
            arrays.first, arrays.touches, arrays.purchase, arrays.kind, strict=True
        )  # fmt: skip
    ]
    assert got == expected
    assert arrays.open_rows.tolist() == expected_open
    # Every row is in exactly one closed journey, or open.
    assigned = arrays.journey >= 0
    assert set(np.flatnonzero(~assigned).tolist()) == set(expected_open)


def test_events_at_the_same_time_are_ordered_by_event_id_within_each_tie() -> None:
    # Two customers, two separate ties each at neighbouring times: every tie is sorted on its
    # own (a tie must never be merged with the next one).
    customer = np.array([1, 1, 1, 1, 0, 0, 0], dtype=np.int64)
    ts = np.array([5, 5, 6, 6, 9, 9, 1], dtype=np.int64)
    ids = pl.Series(["d", "c", "b", "a", "z", "y", "x"])
    order = _journey_order(customer, ts, ids)
    assert [ids[int(i)] for i in order] == ["x", "y", "z", "c", "d", "a", "b"]


def test_kinds_are_the_event_table_codes() -> None:
    assert (TOUCHPOINT, PURCHASE) == (0, 1)
