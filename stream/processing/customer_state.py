"""Incremental journey state of one customer, exact under late, duplicate and reordered events.

The state keeps the customer's recent events and the journeys already emitted from them. Each
new event is inserted where it belongs by event time and the journeys of the retained events are
rebuilt with :func:`attribution.journeys.customer_journeys` (the batch engine's own rules). The
difference between the journeys emitted before and after is returned as retractions (-1) and
emissions (+1), so downstream sums equal what the batch engine computes on the same log, whatever
the arrival order of events that are not settled yet.

The caller says up to which event time history is settled (``compact_before_ms``: in the stream,
the newest event time of the *slowest* input topic of the partition minus the retention, because
touchpoints and purchases come through different topics read at different speeds). Closed
journeys decided before it are compacted away and an event that would belong to them is refused
as too late.

A compacted event's id is remembered (:attr:`CustomerState.compacted_ids`) so that a copy of it
arriving afterwards is recognised as a duplicate rather than dead-lettered as too late: a copy
re-read after a rebalance (the new owner reads again the offsets since the partition's last
tick, which the previous owner may have compacted meanwhile), redelivered after a crash, or sent
twice by a producer. Nothing else depends on it: both ways the copy changes no journey and no
analytics part. The memory is bounded by settled time, not by the customer's history: an id
is dropped once the compaction horizon has moved :data:`RECENT_IDS_DAYS` days past the horizon
that compacted it (a copy of it is then refused as too late), and at most
:data:`RECENT_IDS_KEPT` are kept. Each
is a 64-bit digest of the id (:func:`id_digest`); two ids share one with probability 2**-64, so
an event whose id matches one of the (at most 256) digests by chance is taken for a copy and
dropped with probability at most 256 * 2**-64, about 1.4e-17 per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from attribution.events import MS_PER_DAY
from attribution.journey_kernel import NULL
from attribution.journeys import (
    ConvertedJourney,
    CustomerEvent,
    EventRow,
    Journey,
    JourneyRules,
    NullJourney,
    Touch,
    event_row,
)
from stream.processing.journey_shapes import JourneyShapes, journey_shapes

# Compacted ids kept for de-duplication: those compacted while the compaction horizon (the
# partition's settled event time) has moved at most this many days since, and at most this
# many. Dated by the horizon, not by their own event time: a late event can be compacted long
# after its time, and with a lookback longer than this an event is compacted more than this
# many days after it happened; either way a copy can still come. A copy is re-read after a
# rebalance only from the records since the partition's last offsets tick, and a producer's
# retry comes at once; 90 days of settled time also covers a quarter's log produced again.
RECENT_IDS_DAYS = 90
RECENT_IDS_KEPT = 256
DAY_MS = MS_PER_DAY


@dataclass(frozen=True)
class JourneyChange:
    """A journey emitted (+1) or retracted (-1) by an update of the customer state."""

    sign: int
    journey: Journey


class TooLateError(ValueError):
    """The event is older than the customer's retained horizon and cannot be placed."""


def journey_identity(journey: Journey) -> tuple[Any, ...]:
    """Stable identity of a journey: what it is made of, not where it sits in memory."""
    touches = tuple(t.event_id for t in journey.touches)
    if isinstance(journey, ConvertedJourney):
        return ("c", journey.event_id, touches)
    return ("n", touches)


def expiry_cutoff(as_of_ms: int, rules: JourneyRules) -> int:
    """A journey open since before this time (epoch ms) becomes a null path at ``as_of_ms``."""
    return as_of_ms - rules.allowed_lateness_ms - rules.timeout_ms


def expiry_due(open_since_ms: int, as_of_ms: int, rules: JourneyRules) -> bool:
    """True when a journey open since ``open_since_ms`` becomes a null path at ``as_of_ms``."""
    return open_since_ms < expiry_cutoff(as_of_ms, rules)


def id_digest(event_id: str) -> int:
    """The 64-bit digest a compacted event id is remembered by (BLAKE2b, little-endian)."""
    return int.from_bytes(
        hashlib.blake2b(event_id.encode("utf-8"), digest_size=8).digest(), "little"
    )


def _iso(ts_ms: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)).isoformat()


@dataclass
class CustomerState:
    """Retained events, emitted journeys and dedupe memory of one customer."""

    customer_id: str
    events: list[EventRow] = field(default_factory=list)
    emitted: list[Journey] = field(default_factory=list)
    # Compacted events remembered for de-duplication, oldest first: (day of the compaction
    # horizon when compacted, i.e. its event time // DAY_MS, and :func:`id_digest` of the id).
    compacted_ids: list[tuple[int, int]] = field(default_factory=list)
    newest_ms: int | None = None
    as_of_ms: int | None = None
    open_since_ms: int | None = None
    # Event order key of the last compacted event: nothing at or before it can be placed.
    compacted_through: tuple[int, str] | None = None
    # The customer's analytics parts (see stream.processing.analytics_parts), as stored JSON.
    analytics: dict[str, Any] | None = None
    # Earliest decision time of the closed journeys held back from crediting (see :meth:`add`).
    held_since_ms: int | None = None
    # The input partition the customer's events arrive on (whatever the producer's partitioner):
    # its table entry's changelog partition, and the partition that owns it on a query.
    partition: int | None = None
    # The touches made from ``events`` so far (memory only: rebuilt on demand).
    touch_cache: dict[str, Touch] = field(default_factory=dict, repr=False, compare=False)
    # Event ids of ``events``, and the digests of ``compacted_ids`` (memory only: built together
    # on first use).
    known_ids: set[str] | None = field(default=None, repr=False, compare=False)
    known_digests: set[int] = field(default_factory=set, repr=False, compare=False)

    def knows(self, event_id: str) -> bool:
        """True when the event id was already counted."""
        if self.known_ids is None:
            self.known_ids = {e.event_id for e in self.events}
            self.known_digests = {digest for _, digest in self.compacted_ids}
        if event_id in self.known_ids:
            return True
        return bool(self.known_digests) and id_digest(event_id) in self.known_digests

    def insert(self, event: CustomerEvent) -> bool:
        """Insert an event among the retained ones, without rebuilding the journeys.

        Returns ``False`` for a duplicate (nothing changes). Raises :class:`TooLateError` for
        an event that belongs to a journey already compacted. :meth:`rebuild` (or
        :func:`stream.processing.journey_shapes.journey_shapes` for many customers at once)
        then gives the journey changes.
        """
        if self.knows(event.event_id):
            return False
        row = event_row(event)
        if self.compacted_through is not None and (row.ts_ms, row.event_id) <= tuple(
            self.compacted_through
        ):
            raise TooLateError(
                f"event time {_iso(row.ts_ms)} falls in this customer's history that was "
                f"already settled (up to {_iso(self.compacted_through[0])}); it arrived too "
                "late to be placed"
            )
        if self.known_ids is not None:
            self.known_ids.add(row.event_id)
        if self.events and row < self.events[-1]:
            self.events.append(row)
            self.events.sort()
        else:
            self.events.append(row)
        self.newest_ms = row.ts_ms if self.newest_ms is None else max(self.newest_ms, row.ts_ms)
        return True

    def set_clock(self, as_of_ms: int, rules: JourneyRules) -> tuple[bool, bool]:
        """Move the expiry clock (a watermark) forward.

        Returns whether the clock moved, and whether the open journey is now due to expire
        (then :meth:`rebuild` turns it into a null path).
        """
        if self.as_of_ms is not None and as_of_ms <= self.as_of_ms:
            return False, False
        self.as_of_ms = as_of_ms
        return True, self.open_since_ms is not None and expiry_due(
            self.open_since_ms, as_of_ms, rules
        )

    def holds_through(self, credit_through_ms: int | None) -> bool:
        """True when a held journey is decided by ``credit_through_ms`` (``None``: any)."""
        return self.held_since_ms is not None and (
            credit_through_ms is None or self.held_since_ms <= credit_through_ms
        )

    def add(
        self,
        event: CustomerEvent,
        rules: JourneyRules,
        compact_before_ms: int | None,
        credit_through_ms: int | None = None,
    ) -> list[JourneyChange]:
        """Insert an event; return the journey changes. Duplicates change nothing.

        Journeys decided before ``compact_before_ms`` are compacted afterwards (``None``: keep
        everything). Raises :class:`TooLateError` for an event that belongs to a journey
        already compacted.

        A new closed journey decided after ``credit_through_ms`` (at its purchase; a null path
        when its timeout runs out) is held back, not emitted, until :meth:`release` is called
        with a later time (``None``: emit every closed journey). The stream holds journeys
        while an input topic still has unread events from before that time: emitting them
        would only retract and re-emit them as those events arrive.
        """
        if not self.insert(event):
            return []
        return self.rebuild(rules, compact_before_ms, credit_through_ms)

    def advance(
        self,
        as_of_ms: int,
        rules: JourneyRules,
        compact_before_ms: int | None,
        credit_through_ms: int | None = None,
    ) -> list[JourneyChange]:
        """Move the expiry clock (a watermark) forward; may expire the open journey."""
        _, due = self.set_clock(as_of_ms, rules)
        if not due:
            return []
        return self.rebuild(rules, compact_before_ms, credit_through_ms)

    def release(
        self, rules: JourneyRules, compact_before_ms: int | None, credit_through_ms: int | None
    ) -> list[JourneyChange]:
        """Emit the held journeys decided at or before ``credit_through_ms`` (``None``: all)."""
        if not self.holds_through(credit_through_ms):
            return []
        return self.rebuild(rules, compact_before_ms, credit_through_ms)

    def rebuild(
        self,
        rules: JourneyRules,
        compact_before_ms: int | None,
        credit_through_ms: int | None,
        shapes: JourneyShapes | None = None,
    ) -> list[JourneyChange]:
        """Rebuild the journeys of the retained events; return what changed.

        ``shapes``: the journeys the kernel already found for this customer's events (a batch
        rebuilds all its customers with one kernel call); ``None``: run it for this one.
        """
        if shapes is None:
            (shapes,) = journey_shapes([(self.events, self.as_of_ms)], rules)
        rows = self.events
        before = {journey_identity(j): j for j in self.emitted}
        closed: list[tuple[Any, int, int, int, int]] = []  # key, decided, first, count, purchase
        for first, count, purchase, kind in zip(
            shapes.first, shapes.touches, shapes.purchase, shapes.kind, strict=True
        ):
            touch_ids = tuple(rows[i].event_id for i in range(first, first + count))
            if kind == NULL:
                key: tuple[Any, ...] = ("n", touch_ids)
                decided = rows[first].ts_ms + rules.timeout_ms
            else:
                key = ("c", rows[purchase].event_id, touch_ids)
                decided = rows[purchase].ts_ms
            closed.append((key, decided, first, count, purchase))
        # A journey already emitted stays emitted while it is unchanged: holding is about new
        # journeys only, never a reason to retract one.
        held = [
            credit_through_ms is not None and key not in before and decided > credit_through_ms
            for key, decided, _, _, _ in closed
        ]
        after = {key for key, _, _, _, _ in closed}
        changes = [JourneyChange(-1, j) for key, j in before.items() if key not in after]
        emitted: list[Journey] = []
        for (key, _, first, count, purchase), is_held in zip(closed, held, strict=True):
            if is_held:
                continue
            journey = before.get(key)
            if journey is None:
                journey = self._journey(first, count, purchase)
                changes.append(JourneyChange(+1, journey))
            emitted.append(journey)
        self.emitted = emitted
        self.held_since_ms = min(
            (decided for (_, decided, _, _, _), is_held in zip(closed, held, strict=True)
             if is_held),
            default=None,
        )  # fmt: skip
        self.open_since_ms = None if shapes.open_row is None else rows[shapes.open_row].ts_ms
        if compact_before_ms is not None:
            self._compact(compact_before_ms, closed, held)
        return changes

    def _journey(self, first: int, count: int, purchase: int) -> Journey:
        """The journey object of ``count`` touch rows from ``first`` and a purchase row."""
        rows, cache = self.events, self.touch_cache
        touches = []
        for row in rows[first : first + count]:
            made = cache.get(row.event_id)
            if made is None:
                made = cache[row.event_id] = Touch(
                    row.channel_or_order, row.ts_ms, row.event_id, row.campaign, row.interaction
                )
            touches.append(made)
        if purchase < 0:
            return NullJourney(self.customer_id, tuple(touches))
        p = rows[purchase]
        return ConvertedJourney(
            self.customer_id, p.channel_or_order, p.event_id, p.ts_ms, p.amount, tuple(touches)
        )

    def _compact(
        self, horizon: int, closed: list[tuple[Any, int, int, int, int]], held: list[bool]
    ) -> None:
        keep_from = 0
        for (_, decided, _, _, _), is_held in zip(closed, held, strict=True):
            # A held journey's events stay, and so do those of every journey after it.
            if is_held or decided >= horizon:
                break
            keep_from += 1
        if keep_from == 0:
            return
        _, _, first, count, purchase = closed[keep_from - 1]
        last = self.events[purchase if purchase >= 0 else first + count - 1]
        cut = (last.ts_ms, last.event_id)
        gone = [e for e in self.events if (e.ts_ms, e.event_id) <= cut]
        self.events = [e for e in self.events if (e.ts_ms, e.event_id) > cut]
        for event in gone:
            self.touch_cache.pop(event.event_id, None)
        self.emitted = self.emitted[keep_from:]
        self.compacted_through = cut
        # Kept while a copy can still come (see RECENT_IDS_DAYS); oldest first, as compacted.
        horizon_day = horizon // DAY_MS
        oldest_day = horizon_day - RECENT_IDS_DAYS
        remembered = self.compacted_ids + [(horizon_day, id_digest(e.event_id)) for e in gone]
        self.compacted_ids = [entry for entry in remembered if entry[0] >= oldest_day][
            -RECENT_IDS_KEPT:
        ]
        self.known_ids = None  # ids moved from the events to the digests, some were dropped


def event_order_of_touch(touch: Touch) -> tuple[int, str]:
    """The event order key of a touch (same as :func:`event_order` of its event)."""
    return (touch.ts_ms, touch.event_id)


def replay(
    customer_id: str,
    events: Iterable[CustomerEvent],
    rules: JourneyRules,
    retention_ms: int,
    as_of_ms: int | None = None,
) -> tuple[CustomerState, list[JourneyChange]]:
    """Feed events one by one (any order) and collect every change; used by tests.

    Compaction follows the newest event time fed so far minus ``retention_ms``, as the stream
    does with the slowest input topic's newest event time.
    """
    state = CustomerState(customer_id)
    changes: list[JourneyChange] = []
    newest: int | None = None
    for event in events:
        newest = event.ts_ms if newest is None else max(newest, event.ts_ms)
        changes += state.add(event, rules, newest - retention_ms)
    if as_of_ms is not None:
        horizon = None if newest is None else newest - retention_ms
        changes += state.advance(as_of_ms, rules, horizon)
    return state, changes
