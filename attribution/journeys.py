"""Journey building: one implementation of the rules, used by the batch engine and the stream.

Rules, per customer, with events ordered by (event time, event_id):

* A journey opens at its first touchpoint and collects the following touchpoints.
* A purchase closes the open journey. Its touchpoints within the lookback window before the
  purchase (``purchase.ts - touch.ts <= lookback``) are credited; a purchase with none is an
  *unattributed* conversion (kept, counted, never dropped). Touchpoints of the open journey older
  than the lookback (possible only when the timeout is longer than the lookback) form a null path.
* A journey that meets no purchase within ``timeout`` of its first touch expires as a null
  (non-converting) path: when the customer's next event comes later than that, or, at the end,
  when ``as_of - allowed_lateness`` is past it (``as_of`` is the newest event time seen).
* The same ``(customer_id, event_id)`` seen twice counts once (the first one wins).

Because the timeout defaults to the lookback, every touchpoint ends in exactly one journey.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from attribution.events import MS_PER_DAY, Purchase, Touchpoint
from attribution.paths import PathTable


@dataclass(frozen=True)
class JourneyRules:
    """Windows that decide which touches a purchase credits and when journeys expire."""

    lookback_ms: int = 30 * MS_PER_DAY
    timeout_ms: int = 30 * MS_PER_DAY
    allowed_lateness_ms: int = 3_600_000

    @classmethod
    def from_days(
        cls,
        lookback_days: float = 30.0,
        timeout_days: float | None = None,
        allowed_lateness_hours: float = 1.0,
    ) -> JourneyRules:
        """Build rules from days (and hours for the lateness); timeout defaults to lookback."""
        lookback = round(lookback_days * MS_PER_DAY)
        timeout = lookback if timeout_days is None else round(timeout_days * MS_PER_DAY)
        return cls(lookback, timeout, round(allowed_lateness_hours * 3_600_000))


@dataclass(frozen=True)
class Touch:
    """One touchpoint inside a journey."""

    channel: str
    ts_ms: int
    event_id: str
    campaign: str | None = None
    interaction: str | None = None


@dataclass(frozen=True)
class ConvertedJourney:
    """A purchase and the touches it credits (none: unattributed)."""

    customer_id: str
    order_id: str
    event_id: str
    ts_ms: int
    value: float
    touches: tuple[Touch, ...]

    @property
    def unattributed(self) -> bool:
        """True when no touchpoint fell in the lookback window."""
        return not self.touches

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names in touch order."""
        return tuple(t.channel for t in self.touches)

    def ages_days(self) -> tuple[float, ...]:
        """Days from each touch to the purchase."""
        return tuple((self.ts_ms - t.ts_ms) / MS_PER_DAY for t in self.touches)


@dataclass(frozen=True)
class NullJourney:
    """Touches that met no purchase within the timeout."""

    customer_id: str
    touches: tuple[Touch, ...]

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names in touch order."""
        return tuple(t.channel for t in self.touches)

    @property
    def ts_ms(self) -> int:
        """Time of the first touch (the journey's start)."""
        return self.touches[0].ts_ms


Journey = ConvertedJourney | NullJourney
CustomerEvent = Touchpoint | Purchase


class EventRow(NamedTuple):
    """A customer event reduced to what journeys need; sorts in event order."""

    ts_ms: int
    event_id: str
    is_purchase: bool
    channel_or_order: str  # the channel of a touchpoint, the order id of a purchase
    amount: float
    campaign: str | None
    interaction: str | None


def event_row(event: CustomerEvent) -> EventRow:
    """The journey-relevant fields of a validated event."""
    if isinstance(event, Touchpoint):
        return EventRow(
            event.ts_ms,
            event.event_id,
            False,
            event.channel,
            0.0,
            event.campaign,
            event.interaction,
        )
    return EventRow(event.ts_ms, event.event_id, True, event.order_id, event.amount, None, None)


def event_order(event: CustomerEvent) -> tuple[int, str]:
    """Sort key of events: event time, ties broken by event_id."""
    return (event.ts_ms, event.event_id)


def customer_journeys(
    events: Sequence[CustomerEvent], rules: JourneyRules, as_of_ms: int | None
) -> tuple[list[Journey], list[Touch]]:
    """Journeys of one customer's events, already deduplicated and in :func:`event_order`.

    Returns the closed journeys in order and the touches of the journey still open at
    ``as_of_ms`` (``None`` means: close nothing at the end).
    """
    customer = events[0].customer_id if events else ""
    return journeys_from_rows(customer, [event_row(e) for e in events], rules, as_of_ms)


def journeys_from_rows(
    customer: str,
    rows: Sequence[EventRow],
    rules: JourneyRules,
    as_of_ms: int | None,
    touch_cache: dict[str, Touch] | None = None,
) -> tuple[list[Journey], list[Touch]]:
    """One customer's journeys from event rows in event order: the journey kernel on them.

    ``touch_cache`` (event id -> touch) lets a caller that rebuilds the same customer's
    journeys on every event reuse the touches it made before.
    """
    from attribution.journey_kernel import NULL, journey_arrays

    n = len(rows)
    if n == 0:
        return [], []
    arrays = journey_arrays(
        np.zeros(n, np.int64),
        np.fromiter((r.ts_ms for r in rows), np.int64, n),
        np.fromiter((r.is_purchase for r in rows), np.bool_, n),
        rules.lookback_ms,
        rules.timeout_ms,
        rules.allowed_lateness_ms,
        as_of_ms,
    )

    def touch(index: int) -> Touch:
        row = rows[index]
        made = None if touch_cache is None else touch_cache.get(row.event_id)
        if made is None:
            made = Touch(row.channel_or_order, row.ts_ms, row.event_id, row.campaign,
                         row.interaction)  # fmt: skip
            if touch_cache is not None:
                touch_cache[row.event_id] = made
        return made

    closed: list[Journey] = []
    for first, count, purchase, kind in zip(
        arrays.first.tolist(), arrays.touches.tolist(), arrays.purchase.tolist(),
        arrays.kind.tolist(), strict=True,
    ):  # fmt: skip
        touches = tuple(touch(i) for i in range(first, first + count))
        if kind == NULL:
            closed.append(NullJourney(customer, touches))
        else:
            row = rows[purchase]
            closed.append(
                ConvertedJourney(
                    customer, row.channel_or_order, row.event_id, row.ts_ms, row.amount, touches
                )  # fmt: skip
            )
    return closed, [touch(i) for i in arrays.open_rows.tolist()]


def deduplicate(events: Iterable[CustomerEvent]) -> list[CustomerEvent]:
    """Drop repeats of the same (customer_id, event_id), keeping the first seen."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for event in events:
        key = (event.customer_id, event.event_id)
        if key not in seen:
            seen.add(key)
            kept.append(event)
    return kept


def build_journeys(
    events: Iterable[CustomerEvent], rules: JourneyRules, as_of_ms: int | None = None
) -> tuple[list[Journey], int]:
    """Journeys of a whole event log (any order). Returns (journeys, open journey count).

    ``as_of_ms`` defaults to the newest event time in the log.
    """
    from attribution.io.event_table import from_events
    from attribution.journey_table import build_journey_table

    table = build_journey_table(from_events(events), rules, as_of_ms)
    return table.journeys(), table.open_customers


def journeys_to_table(journeys: Iterable[Journey]) -> PathTable:
    """Path table of the attributable journeys: converted with touches, and null paths."""
    paths: list[tuple[str, ...]] = []
    conversions: list[float] = []
    values: list[float] = []
    nulls: list[float] = []
    ages: list[tuple[float, ...]] = []
    for journey in journeys:
        if isinstance(journey, ConvertedJourney):
            if journey.unattributed:
                continue
            paths.append(journey.channels)
            conversions.append(1.0)
            values.append(journey.value)
            nulls.append(0.0)
            ages.append(journey.ages_days())
        else:
            paths.append(journey.channels)
            conversions.append(0.0)
            values.append(0.0)
            nulls.append(1.0)
            ages.append(tuple(np.zeros(len(journey.touches))))
    return PathTable.from_paths(paths, conversions, values, nulls, ages)
