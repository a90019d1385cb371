"""Record processing, free of Faust: decode, validate, update customer state and aggregates.

The agents call these functions with their Faust tables (which are mutable mappings); tests call
them with plain dicts. Nothing here can raise on bad input: a bad record becomes a dead letter.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from attribution.events import (
    Assignment,
    Cost,
    InvalidRecord,
    Purchase,
    parse_event_bytes,
)
from attribution.journeys import ConvertedJourney, JourneyRules
from attribution.models.options import ModelOptions
from stream.aggregates import apply_contribution, note_event, note_invalid
from stream.contributions import MARKOV, Contribution, contributions, day_of
from stream.customer_analytics import apply_cost, apply_to_parts
from stream.customer_state import CustomerState, JourneyChange, TooLateError, journey_to_row
from stream.deadletter import dead_letter_record
from stream.write_back import editable

EXPECTED_TYPE = {
    "touchpoints": "touchpoint",
    "purchases": "purchase",
    "costs": "cost",
    "assignments": "assignment",
}
CUSTOMER_KINDS = ("touchpoints", "purchases")
CONVERSION_BUCKETS = 32
# Customer states kept decoded between their events (see StateCache); about 10 KB each.
STATE_CACHE_CUSTOMERS = 20_000
# Credit horizon while a lagging topic partition has shown no event yet: hold every journey.
HOLD_ALL_MS = -(2**62)


@dataclass
class Outcome:
    """What processing one record produced, for the agent to send and count."""

    dead_letter: dict[str, Any] | None = None
    attribution_records: list[dict[str, Any]] = field(default_factory=list)
    changes: list[JourneyChange] = field(default_factory=list)
    purchase: bool = False
    held: bool = False  # the purchase's journey waits for a lagging input topic
    too_late: bool = False
    customer_id: str | None = None  # set when a customer's state was updated


class StateCache:
    """Customer states kept as objects beside the table values they were written as.

    Decoding a customer's stored state (its event rows and journeys) for each of its events
    costs more than the journey rules themselves. A cached state is used only while the table
    still holds the very value object it was written as; anything else (a recovered or
    re-read value, a RocksDB store, which decodes anew on each read) is decoded again. Bounded:
    the least recently written customers go first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: dict[bytes, tuple[Any, CustomerState]] = {}

    def load(self, customers: Mapping[bytes, Any], key: bytes, customer_id: str) -> CustomerState:
        """The customer's state as the table holds it (the cached object when still current)."""
        stored = customers.get(key)
        cached = self.entries.get(key)
        if stored is not None and cached is not None and cached[0] is stored:
            return cached[1]
        return CustomerState.from_json(customer_id, stored)

    def store(
        self, customers: MutableMapping[bytes, Any], key: bytes, state: CustomerState
    ) -> None:
        """Write the state to the table and keep it as the current object."""
        value = state.to_json()
        customers[key] = value
        entries = self.entries
        entries.pop(key, None)
        if self.capacity <= 0:
            return
        entries[key] = (value, state)
        if len(entries) > self.capacity:
            del entries[next(iter(entries))]

    def drop(self, key: bytes) -> None:
        """Forget a state that was changed without being written (it no longer matches)."""
        self.entries.pop(key, None)


@dataclass
class Context:
    """Settings the processing needs."""

    rules: JourneyRules
    options: ModelOptions
    models: list[str]
    retention_ms: int
    topic_kinds: Mapping[str, str]  # topic name -> a key of EXPECTED_TYPE
    # Newest event time per partition. Kept in memory (a table write per event would halve
    # throughput) and persisted into ``P|totals`` with the partition's next aggregate write.
    watermarks: dict[int, int] = field(default_factory=dict)
    # Newest event time per (customer topic kind, partition): history older than the slowest
    # of them minus the retention is settled and may be compacted.
    topic_watermarks: dict[tuple[str, int], int] = field(default_factory=dict)
    # (customer topic kind, partition) known to have unread events (set by the agent from the
    # consumer's high watermarks; empty in tests and replays: nothing is ever held then).
    lagging: set[tuple[str, int]] = field(default_factory=set)
    # Recently used customer states, with the table value each was last written as.
    states: StateCache = field(default_factory=lambda: StateCache(STATE_CACHE_CUSTOMERS))

    def credit_through(self, partition: int) -> int | None:
        """Journeys ending after this time wait for a lagging topic (``None``: credit all).

        When one customer topic of the partition is read ahead of the other (a backlog: the
        small purchases topic drains long before the touchpoints), crediting a purchase before
        its touches arrive would retract and re-credit the order for each of them. Holding it
        until the lagging topic's newest event time passes it credits it once. Only topics
        with unread events hold anything, so a stream read at the speed it is written (or one
        drained to its end) credits at once. The final numbers do not depend on it: a held
        journey is the same journey, credited later.
        """
        through: int | None = None
        for kind in CUSTOMER_KINDS:
            if (kind, partition) in self.lagging:
                mark = self.topic_watermarks.get((kind, partition), HOLD_ALL_MS)
                through = mark if through is None else min(through, mark)
        return through

    def settled_before(self, partition: int) -> int | None:
        """Event time before which the partition's customer history can no longer change."""
        marks = [self.topic_watermarks.get((kind, partition)) for kind in CUSTOMER_KINDS]
        if any(mark is None for mark in marks):
            return None
        return min(m for m in marks if m is not None) - self.retention_ms


@dataclass
class PendingChanges:
    """Journey changes of a batch of events, credited together when the batch is done.

    Crediting a journey runs every model's rule on a path table; one table for the whole batch
    costs little more than one for a single journey.
    """

    items: list[tuple[int, JourneyChange, Outcome]] = field(default_factory=list)

    def add(self, partition: int, changes: list[JourneyChange], outcome: Outcome) -> None:
        """Keep the changes one event (or expiry) made, for :meth:`apply`."""
        self.items += [(partition, change, outcome) for change in changes]

    def counts(self) -> tuple[int, int]:
        """How many kept changes emit a journey, and how many retract one."""
        retracted = sum(1 for _, change, _ in self.items if change.sign < 0)
        return len(self.items) - retracted, retracted

    def apply(
        self,
        ctx: Context,
        aggregates: MutableMapping[str, Any],
        markov_effects: Mapping[str, Any] | None,
    ) -> None:
        """Add every kept change to the aggregates and its outcome's attribution records."""
        items, self.items = self.items, []
        if not items:
            return
        deltas = contributions([(c.sign, c.journey) for _, c, _ in items], ctx.models, ctx.options)
        for partition in sorted({partition for partition, _, _ in items}):
            persist_watermark(ctx, aggregates, partition)
        for (partition, change, outcome), delta in zip(items, deltas, strict=True):
            apply_contribution(aggregates, partition, delta)
            if not isinstance(change.journey, ConvertedJourney):
                continue
            record_conversion(aggregates, partition, change.sign, change.journey)
            if not change.journey.unattributed:
                outcome.attribution_records += attribution_records(
                    change.sign, change.journey, delta, ctx.models, markov_effects
                )


def process_record(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    aggregates: MutableMapping[str, Any],
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    markov_effects: Mapping[str, Any] | None = None,
    pending: PendingChanges | None = None,
) -> Outcome:
    """Handle one message of an input topic; a bad one becomes a dead letter, never an error.

    Journey changes are credited at once, or kept in ``pending`` for the caller to apply.
    """
    kind = ctx.topic_kinds[topic]
    try:
        event = parse_event_bytes(value)
        if event.type != EXPECTED_TYPE[kind]:
            raise InvalidRecord(f"event type '{event.type}' does not belong on topic {topic}")
        if isinstance(event, Cost):
            _record_cost(aggregates, partition, event)
            return Outcome()
        key_text = key.decode("utf-8", "replace") if key is not None else None
        if key_text != event.customer_id:
            raise InvalidRecord(
                f"message key {key_text!r} is not the event's customer_id {event.customer_id!r}; "
                "customer events must be keyed by customer_id"
            )
    except InvalidRecord as error:
        if not note_invalid(aggregates, partition, topic, offset):
            return Outcome()  # redelivered after a restart: already counted and dead-lettered
        return Outcome(dead_letter_record(error.reason, topic, partition, offset, key, value))
    key_bytes = event.customer_id.encode("utf-8")
    state = ctx.states.load(customers, key_bytes, event.customer_id)
    if isinstance(event, Assignment):
        state.analytics = apply_to_parts(state.analytics, event)
        ctx.states.store(customers, key_bytes, state)
        return Outcome()
    mark = (kind, partition)
    if event.ts_ms > ctx.topic_watermarks.get(mark, 0):
        ctx.topic_watermarks[mark] = event.ts_ms
    try:
        changes = state.add(
            event, ctx.rules, ctx.settled_before(partition), ctx.credit_through(partition)
        )
    except TooLateError as error:
        ctx.states.drop(key_bytes)
        reason = str(error)
        return Outcome(
            dead_letter_record(reason, topic, partition, offset, key, value), too_late=True
        )
    state.analytics = apply_to_parts(state.analytics, event)
    ctx.states.store(customers, key_bytes, state)
    if event.ts_ms > ctx.watermarks.get(partition, 0):
        ctx.watermarks[partition] = event.ts_ms
    purchase = isinstance(event, Purchase)
    outcome = Outcome(
        changes=changes,
        purchase=purchase,
        held=purchase and state.held_since_ms is not None and state.held_since_ms <= event.ts_ms,
        customer_id=event.customer_id,
    )
    _credit(ctx, aggregates, partition, changes, outcome, markov_effects, pending)
    return outcome


def advance_customer(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    aggregates: MutableMapping[str, Any],
    customer_id: str,
    partition: int,
    as_of_ms: int,
    markov_effects: Mapping[str, Any] | None = None,
    pending: PendingChanges | None = None,
) -> Outcome:
    """Move a customer's expiry clock to the watermark (may turn its journey into a null path)."""

    def advance(state: CustomerState) -> tuple[list[JourneyChange], bool]:
        changes = state.advance(
            as_of_ms, ctx.rules, ctx.settled_before(partition), ctx.credit_through(partition)
        )
        return changes, bool(changes) or state.as_of_ms == as_of_ms

    outcome = _update_customer(ctx, customers, customer_id, advance)
    _credit(ctx, aggregates, partition, outcome.changes, outcome, markov_effects, pending)
    return outcome


def release_customer(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    aggregates: MutableMapping[str, Any],
    customer_id: str,
    partition: int,
    markov_effects: Mapping[str, Any] | None = None,
    pending: PendingChanges | None = None,
) -> Outcome:
    """Credit a customer's held journeys that the partition's credit horizon now reaches."""

    def release(state: CustomerState) -> tuple[list[JourneyChange], bool]:
        changes = state.release(
            ctx.rules, ctx.settled_before(partition), ctx.credit_through(partition)
        )
        return changes, bool(changes)

    outcome = _update_customer(ctx, customers, customer_id, release)
    _credit(ctx, aggregates, partition, outcome.changes, outcome, markov_effects, pending)
    return outcome


def _update_customer(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    customer_id: str,
    update: Callable[[CustomerState], tuple[list[JourneyChange], bool]],
) -> Outcome:
    """Apply ``update`` (journey changes, and whether the state changed) to a stored customer."""
    key_bytes = customer_id.encode("utf-8")
    state = ctx.states.load(customers, key_bytes, customer_id)
    changes, changed = update(state)
    if changed:
        ctx.states.store(customers, key_bytes, state)
    else:
        ctx.states.drop(key_bytes)
    return Outcome(changes=changes, customer_id=customer_id)


def _credit(
    ctx: Context,
    aggregates: MutableMapping[str, Any],
    partition: int,
    changes: list[JourneyChange],
    outcome: Outcome,
    markov_effects: Mapping[str, Any] | None,
    pending: PendingChanges | None,
) -> None:
    if pending is not None:
        pending.add(partition, changes, outcome)
        return
    now = PendingChanges()
    now.add(partition, changes, outcome)
    now.apply(ctx, aggregates, markov_effects)


def _record_cost(aggregates: MutableMapping[str, Any], partition: int, event: Cost) -> None:
    key = f"{partition}|costs"
    changed = apply_cost(aggregates.get(key), event)
    if changed is not None:
        aggregates[key] = changed


def record_conversion(
    aggregates: MutableMapping[str, Any], partition: int, sign: int, journey: ConvertedJourney
) -> None:
    """Keep (or drop, on retraction) a converted journey in ``P|conv|DAY|B`` for the analytics.

    A day's journeys are spread over ``CONVERSION_BUCKETS`` keys by a stable hash of the purchase
    event id: one key per day would grow with the day's conversions and be rewritten whole with
    each of them (a busy day's key would outgrow Kafka's message size limit).
    """
    bucket = zlib.crc32(journey.event_id.encode("utf-8")) % CONVERSION_BUCKETS
    day_key = f"{partition}|conv|{day_of(journey.ts_ms)}"
    day = editable(aggregates, f"{day_key}|{bucket:02d}", dict)
    if sign > 0:
        day[journey.event_id] = [journey.customer_id, journey_to_row(journey)]
        return
    day.pop(journey.event_id, None)
    # Tables written before the buckets (2026-12-02) keep a day's journeys in one key.
    if journey.event_id in (aggregates.get(day_key) or {}):
        editable(aggregates, day_key, dict).pop(journey.event_id)


def persist_watermark(ctx: Context, aggregates: MutableMapping[str, Any], partition: int) -> None:
    """Write the partition's in-memory newest event time to its totals, if it moved."""
    note_event(aggregates, partition, ctx.watermarks.get(partition))


def restore_watermark(ctx: Context, aggregates: Mapping[str, Any], partition: int) -> None:
    """After recovery: start from the persisted newest event time of the partition."""
    stored = (aggregates.get(f"{partition}|totals") or {}).get("wm", 0)
    if stored > ctx.watermarks.get(partition, 0):
        ctx.watermarks[partition] = stored


def attribution_records(
    sign: int,
    journey: ConvertedJourney,
    delta: Contribution,
    models: list[str],
    markov_effects: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """One output record per credited order and model (retractions carry ``retracted: true``)."""
    base = {
        "order_id": journey.order_id,
        "customer_id": journey.customer_id,
        "purchase_event_id": journey.event_id,
        "ts": journey.ts_ms,
        "value": journey.value,
        "path": list(journey.channels),
        "retracted": sign < 0,
    }
    records = []
    for model in models:
        if model == MARKOV:
            credits = markov_path_credits(journey, markov_effects)
            if credits is None:
                continue
        else:
            credits = {
                ch: {"conversions": c, "value": v} for ch, (c, v) in delta.credits[model].items()
            }
        records.append({**base, "model": model, "credits": credits})
    return records


def markov_path_credits(
    journey: ConvertedJourney, markov_effects: Mapping[str, Any] | None
) -> dict[str, dict[str, float]] | None:
    """Path-level Markov credit of one order from the latest solved removal effects."""
    if not markov_effects:
        return None
    from attribution.models.markov import path_credit

    split = path_credit(
        journey.channels,
        journey.value,
        markov_effects.get("removal_effects", {}),
        markov_effects.get("removal_effects_value", {}),
    )
    return {ch: {"conversions": c, "value": v} for ch, (c, v) in split.items()}
