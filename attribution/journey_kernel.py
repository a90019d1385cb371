"""The journey rules over arrays: every customer's journeys in one vectorised pass.

This is the one implementation of the rules of :mod:`attribution.journeys` (lookback, timeout,
allowed lateness, null paths, unattributed conversions); the batch engine calls it on a whole
log, the stream on the customers of a batch, and ``journeys_from_rows`` on one customer.

Input: the customer events (touchpoints and purchases), de-duplicated and sorted by
(customer, time, event_id), as three arrays: customer code, time in ms, is-purchase.

The rules, restated over rows. A *run* is a customer's maximal sequence of touches between
purchases. A run is cut greedily into *chunks*: a chunk starts at its first touch and takes
every following touch at most ``timeout`` after that start; the next touch starts a new
chunk. Every chunk but a run's last is a null journey (timed out). The last chunk:

* if the run ends at a purchase and the purchase comes at most ``timeout`` after the chunk's
  start, the chunk's touches within the lookback before the purchase (``purchase - touch <=
  lookback``) and the purchase form a converted journey, and the older ones a null journey;
* if the purchase comes later than that, the chunk is a null journey and the purchase is an
  unattributed conversion;
* if the run ends with the customer's events, the chunk is a null journey when
  ``as_of - allowed_lateness - start > timeout``, and stays open otherwise.

A purchase with no run before it is an unattributed conversion. Journeys are numbered in the
order of their first row (touch, or purchase for an unattributed one), which is the order the
per-event rules emit them in; a journey's touches are consecutive rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

CONVERTED, UNATTRIBUTED, NULL = 0, 1, 2
# An ``as_of_ms`` at which no journey has timed out yet (a customer whose clock never moved).
NEVER = -(2**62)
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class JourneyArrays:
    """Journeys of sorted customer events.

    Per journey, in emission order: ``first`` (row of its first touch, or of the purchase
    when it has none), ``touches`` (how many consecutive touch rows from ``first``),
    ``purchase`` (row of the purchase, -1 for a null journey), ``kind`` (:data:`CONVERTED`,
    :data:`UNATTRIBUTED` or :data:`NULL`). Per row: ``journey`` (index of the journey the row
    belongs to, -1 for the touches of a journey still open). ``open_rows``: touch rows of
    open journeys.
    """

    first: Ints
    touches: Ints
    purchase: Ints
    kind: NDArray[np.int8]
    journey: Ints
    open_rows: Ints

    @property
    def count(self) -> int:
        """Number of closed journeys."""
        return len(self.first)


def _next_differs(values: Ints) -> NDArray[np.bool_]:
    """True where the next element differs (and at the end)."""
    out = np.ones(len(values), np.bool_)
    out[:-1] = values[1:] != values[:-1]
    return out


def journey_arrays(
    customer: Ints,
    ts_ms: Ints,
    is_purchase: NDArray[np.bool_],
    lookback_ms: int,
    timeout_ms: int,
    allowed_lateness_ms: int,
    as_of_ms: int | Ints | None,
) -> JourneyArrays:
    """The journeys of sorted, de-duplicated customer events (see the module doc).

    ``as_of_ms`` is one time for every customer, or one per row (the stream rebuilds many
    customers at once, each with its own expiry clock; :data:`NEVER` closes nothing).
    """
    customer = np.asarray(customer, dtype=np.int64)
    ts = np.asarray(ts_ms, dtype=np.int64)
    purchase = np.asarray(is_purchase, dtype=np.bool_)
    n = len(ts)
    touch = ~purchase
    rows = np.arange(n, dtype=np.int64)
    same_customer_as_previous = np.zeros(n, np.bool_)
    same_customer_as_previous[1:] = customer[1:] == customer[:-1]
    previous_is_touch = np.zeros(n, np.bool_)
    previous_is_touch[1:] = touch[:-1]
    run_starts = touch & ~(same_customer_as_previous & previous_is_touch)
    run = np.cumsum(run_starts) - 1  # meaningful on touch rows

    # Greedy chunks: each round opens a chunk at the first unassigned touch of every run
    # with touches left and gives it the touches within the timeout; runs rarely need more
    # than a few rounds.
    chunk = np.full(n, -1, np.int64)  # chunk start row of each touch
    remaining = rows[touch]
    while remaining.size:
        run_of = run[remaining]
        opens = np.ones(remaining.size, np.bool_)
        opens[1:] = run_of[1:] != run_of[:-1]
        start = remaining[np.maximum.accumulate(np.where(opens, np.arange(remaining.size), 0))]
        joined = ts[remaining] - ts[start] <= timeout_ms
        chunk[remaining[joined]] = start[joined]
        remaining = remaining[~joined]

    # A run's end: its last touch. What follows it: a purchase of the same customer, or nothing.
    touch_rows = rows[touch]
    ends = touch_rows[_next_differs(run[touch_rows])]
    ended_by_purchase = np.zeros(len(ends), np.bool_)
    inside = ends + 1 < n
    following = np.minimum(ends + 1, max(n - 1, 0))
    ended_by_purchase[inside] = purchase[following[inside]] & (
        customer[following[inside]] == customer[ends[inside]]
    )
    last_chunk = chunk[ends]  # start row of each run's last chunk
    run_last_chunk = np.full(int(run[ends[-1]]) + 1 if len(ends) else 0, -1, np.int64)
    run_last_chunk[run[ends]] = last_chunk
    run_purchase = np.full(len(run_last_chunk), -1, np.int64)
    run_purchase[run[ends[ended_by_purchase]]] = ends[ended_by_purchase] + 1

    # Per touch row: which journey (by its first row) it ends in.
    in_last = np.zeros(n, np.bool_)
    in_last[touch_rows] = chunk[touch_rows] == run_last_chunk[run[touch_rows]]
    closing_purchase = np.full(n, -1, np.int64)
    closing_purchase[touch_rows] = np.where(in_last[touch_rows], run_purchase[run[touch_rows]], -1)
    has_purchase = closing_purchase >= 0
    safe_purchase = np.where(has_purchase, closing_purchase, 0)
    timed_out = has_purchase & (ts[safe_purchase] - ts[np.maximum(chunk, 0)] > timeout_ms)
    credited = has_purchase & ~timed_out & (ts >= ts[safe_purchase] - lookback_ms)
    still_open = touch & in_last & ~has_purchase
    if as_of_ms is None:
        closes = np.zeros(n, np.bool_)
    else:
        as_of = np.asarray(as_of_ms, dtype=np.int64)
        closes = as_of - allowed_lateness_ms - ts[np.maximum(chunk, 0)] > timeout_ms
    still_open &= ~closes

    journey_first = np.where(touch, chunk, -1)
    # Credited touches start their own journey at the chunk's first credited touch.
    first_credited = credited.copy()
    first_credited[1:] &= ~(credited[:-1] & (chunk[:-1] == chunk[1:]))
    credited_start = np.where(first_credited, rows, 0)
    credited_start = np.maximum.accumulate(credited_start)
    journey_first = np.where(credited, credited_start, journey_first)
    journey_first[still_open] = -1

    # Purchases: closing a converted journey (its credited touches), or unattributed.
    purchase_rows = rows[purchase]
    closer = np.full(n, -1, np.int64)  # per purchase row: the first row of the journey it closes
    credited_rows = rows[credited]
    if credited_rows.size:
        closer[closing_purchase[credited_rows]] = journey_first[credited_rows]
    unattributed = purchase_rows[closer[purchase_rows] < 0]
    # Journeys are numbered in the order of their first rows: mark those rows, count along.
    touch_in_journey = rows[touch & (journey_first >= 0)]
    starts = np.zeros(n, np.bool_)
    starts[journey_first[touch_in_journey]] = True
    starts[unattributed] = True
    number = np.cumsum(starts) - 1
    first = rows[starts]
    journey = np.full(n, -1, np.int64)
    journey[touch_in_journey] = number[journey_first[touch_in_journey]]
    journey[unattributed] = number[unattributed]
    closed_by = purchase_rows[closer[purchase_rows] >= 0]
    journey[closed_by] = number[closer[closed_by]]

    touches = np.bincount(journey[touch_in_journey], minlength=len(first)).astype(np.int64)
    journey_purchase = np.full(len(first), -1, np.int64)
    journey_purchase[journey[purchase_rows]] = purchase_rows
    kind = np.full(len(first), NULL, np.int8)
    kind[(journey_purchase >= 0) & (touches > 0)] = CONVERTED
    kind[(journey_purchase >= 0) & (touches == 0)] = UNATTRIBUTED
    return JourneyArrays(first, touches, journey_purchase, kind, journey, rows[still_open])
