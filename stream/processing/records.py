"""One input record applied to its customer and the aggregates: decode, validate, update.

Nothing here raises on bad input: a bad record becomes a dead letter. Journey changes are kept
in a :class:`~stream.processing.crediting.PendingChanges` for the batch to credit together.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from attribution.events import (
    Assignment,
    Cost,
    InvalidRecord,
    Purchase,
    Rate,
    Refund,
    parse_record_bytes,
)
from attribution.journeys import ConvertedJourney
from stream.processing import customer_record
from stream.processing.aggregates import credited_journey, note_invalid, record_cost
from stream.processing.analytics_parts import apply_to_parts, with_original
from stream.processing.context import Context
from stream.processing.crediting import PendingChanges
from stream.processing.customer_state import CustomerState, JourneyChange, TooLateError
from stream.processing.dead_letters import dead_letter_record
from stream.processing.money import apply_refund, converted, record_rate
from stream.processing.outcome import Outcome
from stream.topics import TYPES_OF_KIND
from stream.types import Record


def process_record(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    aggregates: MutableMapping[str, Any],
    record: Record,
    pending: PendingChanges,
) -> Outcome:
    """Handle one message of an input event topic; a bad one becomes a dead letter."""
    topic, partition, offset, key, value = (
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
    )
    kind = ctx.topic_kinds[topic]
    original: tuple[str, float] | None = None  # a converted purchase's currency and amount
    try:
        event = parse_record_bytes(value)
        if event.type not in TYPES_OF_KIND[kind]:
            raise InvalidRecord(f"event type '{event.type}' does not belong on topic {topic}")
        if isinstance(event, Rate):
            record_rate(aggregates, partition, event)
            return Outcome()
        if isinstance(event, Cost):
            record_cost(aggregates, partition, converted(aggregates, partition, ctx.money, event))
            return Outcome()
        key_text = key.decode("utf-8", "replace") if key is not None else None
        if key_text != event.customer_id:
            raise InvalidRecord(
                f"message key {key_text!r} is not the event's customer_id {event.customer_id!r}; "
                "customer events must be keyed by customer_id"
            )
        if isinstance(event, Purchase):
            paid = converted(aggregates, partition, ctx.money, event)
            if paid is not event and event.currency is not None:
                original, event = (event.currency, event.amount), paid
    except InvalidRecord as error:
        return _invalid(aggregates, record, error.reason)
    key_bytes = event.customer_id.encode("utf-8")
    if ctx.key_partition is not None and ctx.key_partition(key_bytes) != partition:
        # The producers' partitioner is known: a record elsewhere is caught by whichever
        # worker reads it, even before the customer's other events are seen.
        if not note_invalid(aggregates, partition, topic, offset):
            return Outcome()
        reason = (
            f"customer {event.customer_id!r}'s record is on partition {partition}, but "
            f"topics.partitioner puts its key on partition {ctx.key_partition(key_bytes)}: "
            "a producer with another partitioner, or partitions chosen by hand; not applied"
        )
        return Outcome(dead_letter_record(reason, topic, partition, offset, key, value))
    stored = customers.get(key_bytes)
    home = customer_record.partition(stored)
    if home is not None and home != partition:
        # The customer's state, journeys and credits live with partition `home`; applied here
        # the event would start a second state on another partition (on another worker, unseen
        # by the first) and split the customer's journeys: mis-credited without a word.
        if not note_invalid(aggregates, partition, topic, offset):
            return Outcome()
        reason = (
            f"customer {event.customer_id!r} has events on partition {home} of the input "
            f"topics and this one on partition {partition}: all of one customer's events must "
            "go to one partition (key them by customer_id with one partitioner); not applied"
        )
        return Outcome(dead_letter_record(reason, topic, partition, offset, key, value))
    state = customer_record.decode(event.customer_id, stored)
    state.partition = partition
    if isinstance(event, Refund):
        return _refund(ctx, customers, aggregates, record, event, state, pending)
    if isinstance(event, Assignment):
        state.analytics = apply_to_parts(state.analytics, event)
        customers[key_bytes] = customer_record.encode(state)
        return Outcome()
    ctx.note_event_time(kind, partition, event.ts_ms)
    try:
        changes = state.add(
            event, ctx.rules, ctx.settled_before(partition), ctx.credit_through(partition)
        )
    except TooLateError as error:
        return Outcome(
            dead_letter_record(str(error), topic, partition, offset, key, value), too_late=True
        )
    state.analytics = apply_to_parts(state.analytics, event)
    if original is not None:
        state.analytics = with_original(state.analytics, event.event_id, *original)
    customers[key_bytes] = customer_record.encode(state)
    ctx.note_partition_time(partition, event.ts_ms)
    purchase = isinstance(event, Purchase)
    outcome = Outcome(
        changes=changes,
        purchase=purchase,
        held=purchase and state.held_since_ms is not None and state.held_since_ms <= event.ts_ms,
        customer_id=event.customer_id,
    )
    pending.add(partition, changes, outcome)
    return outcome


def _invalid(aggregates: MutableMapping[str, Any], record: Record, reason: str) -> Outcome:
    """A dead letter for the record, counted once per offset."""
    if not note_invalid(aggregates, record.partition, record.topic, record.offset):
        return Outcome()  # redelivered after a restart: already counted and dead-lettered
    return Outcome(
        dead_letter_record(
            reason, record.topic, record.partition, record.offset, record.key, record.value
        )
    )


def _refund(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    aggregates: MutableMapping[str, Any],
    record: Record,
    refund: Refund,
    state: CustomerState,
    pending: PendingChanges,
) -> Outcome:
    """Take a refund on its order (stream.processing.money); one that cannot apply is a dead
    letter. Refunds move no clock: journeys are made of touchpoints and purchases only."""
    partition = record.partition

    def credited(event_id: str, ts_ms: int) -> ConvertedJourney | None:
        # Changed in this batch (not yet in the aggregates), or as the aggregates hold it.
        change = pending.latest(event_id)
        if change is not None:
            journey = change.journey
            return journey if change.sign > 0 and isinstance(journey, ConvertedJourney) else None
        return credited_journey(aggregates, partition, event_id, ts_ms)

    try:
        changes = apply_refund(state, refund, ctx.money.base_currency, credited)
    except InvalidRecord as error:
        return _invalid(aggregates, record, error.reason)
    customers[refund.customer_id.encode("utf-8")] = customer_record.encode(state)
    outcome = Outcome(changes=changes, customer_id=refund.customer_id)
    pending.add(partition, changes, outcome)
    return outcome


def advance_customer(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    customer_id: str,
    partition: int,
    as_of_ms: int,
    pending: PendingChanges,
) -> Outcome:
    """Move a customer's expiry clock to the watermark (may turn its journey into a null path)."""

    def advance(state: CustomerState) -> tuple[list[JourneyChange], bool]:
        changes = state.advance(
            as_of_ms, ctx.rules, ctx.settled_before(partition), ctx.credit_through(partition)
        )
        return changes, bool(changes) or state.as_of_ms == as_of_ms

    return _update_customer(ctx, customers, customer_id, partition, advance, pending)


def release_customer(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    customer_id: str,
    partition: int,
    pending: PendingChanges,
) -> Outcome:
    """Credit a customer's held journeys that the partition's credit horizon now reaches."""

    def release(state: CustomerState) -> tuple[list[JourneyChange], bool]:
        changes = state.release(
            ctx.rules, ctx.settled_before(partition), ctx.credit_through(partition)
        )
        return changes, bool(changes)

    return _update_customer(ctx, customers, customer_id, partition, release, pending)


def _update_customer(
    ctx: Context,
    customers: MutableMapping[bytes, Any],
    customer_id: str,
    partition: int,
    update: Callable[[CustomerState], tuple[list[JourneyChange], bool]],
    pending: PendingChanges,
) -> Outcome:
    """Apply ``update`` (journey changes, and whether the state changed) to a stored customer."""
    key_bytes = customer_id.encode("utf-8")
    state = customer_record.decode(customer_id, customers.get(key_bytes))
    changes, changed = update(state)
    if changed:
        customers[key_bytes] = customer_record.encode(state)
    outcome = Outcome(changes=changes, customer_id=customer_id)
    pending.add(partition, changes, outcome)
    return outcome
