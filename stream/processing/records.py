"""One input record applied to its customer and the aggregates: decode, validate, insert.

Nothing here raises on bad input: a bad record becomes a dead letter. The customer's journeys
are rebuilt later, with the rest of the batch's (:mod:`stream.processing.batch_customers`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from attribution.events import (
    Assignment,
    Cost,
    InvalidRecord,
    Purchase,
    Rate,
    Refund,
    Touchpoint,
    parse_record_bytes,
)
from attribution.journeys import ConvertedJourney
from stream.processing.aggregates import (
    credited_journey,
    note_invalid,
    record_cost,
    record_funnel,
)
from stream.processing.analytics_parts import FUNNEL, apply_to_parts, with_original
from stream.processing.batch_customers import BatchCustomers
from stream.processing.context import Context
from stream.processing.customer_state import TooLateError
from stream.processing.dead_letters import dead_letter_record
from stream.processing.money import apply_refund, converted, record_rate
from stream.processing.outcome import Outcome
from stream.topics import TYPES_OF_KIND
from stream.types import Record


def process_record(
    ctx: Context,
    batch: BatchCustomers,
    aggregates: MutableMapping[str, Any],
    record: Record,
) -> Outcome:
    """Handle one message of an input event topic; a bad one becomes a dead letter.

    A customer event is inserted into its customer's state; the journeys are rebuilt, for all
    the customers of the batch at once, when ``batch`` is flushed.
    """
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
    customer_id = event.customer_id
    if ctx.key_partition is not None:
        wanted = ctx.key_partition(customer_id.encode("utf-8"))
        if wanted != partition:
            # The producers' partitioner is known: a record elsewhere is caught by whichever
            # worker reads it, even before the customer's other events are seen.
            return _invalid(
                aggregates,
                record,
                f"customer {customer_id!r}'s record is on partition {partition}, but "
                f"topics.partitioner puts its key on partition {wanted}: a producer with "
                "another partitioner, or partitions chosen by hand; not applied",
            )
    home = batch.home_partition(customer_id)
    if home is not None and home != partition:
        # The customer's state, journeys and credits live with partition `home`; applied here
        # the event would start a second state on another partition (on another worker, unseen
        # by the first) and split the customer's journeys: mis-credited without a word.
        return _invalid(
            aggregates,
            record,
            f"customer {customer_id!r} has events on partition {home} of the input "
            f"topics and this one on partition {partition}: all of one customer's events must "
            "go to one partition (key them by customer_id with one partitioner); not applied",
        )
    if isinstance(event, Refund):
        return _refund(ctx, batch, aggregates, record, event)
    state = batch.load(customer_id)
    state.partition = partition
    if isinstance(event, Assignment):
        state.analytics = apply_to_parts(state.analytics, event)
        batch.touch(customer_id, state, partition)
        return Outcome()
    ctx.note_event_time(kind, partition, event.ts_ms)
    try:
        inserted = state.insert(event)
    except TooLateError as error:
        return Outcome(
            dead_letter_record(str(error), topic, partition, offset, key, value), too_late=True
        )
    funnel_before = (state.analytics or {}).get(FUNNEL)
    state.analytics = apply_to_parts(state.analytics, event)
    campaign = event.campaign if isinstance(event, Touchpoint) else None
    record_funnel(aggregates, partition, funnel_before, state.analytics.get(FUNNEL), campaign)
    if original is not None:
        state.analytics = with_original(state.analytics, event.event_id, *original)
    batch.touch(customer_id, state, partition, rebuild=inserted)
    ctx.note_partition_time(partition, event.ts_ms)
    purchase = isinstance(event, Purchase)
    outcome = Outcome(purchase=purchase, customer_id=customer_id)
    if purchase:
        batch.purchase(customer_id, outcome, event.ts_ms)
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
    batch: BatchCustomers,
    aggregates: MutableMapping[str, Any],
    record: Record,
    refund: Refund,
) -> Outcome:
    """Take a refund on its order (stream.processing.money); one that cannot apply is a dead
    letter. Refunds move no clock: journeys are made of touchpoints and purchases only."""
    partition = record.partition
    # The refund revalues the journeys its customer's earlier events made, so the batch's
    # rebuilds run first (refunds are rare: one more kernel call each).
    batch.settle()
    pending = batch.pending

    def credited(event_id: str, ts_ms: int) -> ConvertedJourney | None:
        # Changed in this batch (not yet in the aggregates), or as the aggregates hold it.
        change = pending.latest(event_id)
        if change is not None:
            journey = change.journey
            return journey if change.sign > 0 and isinstance(journey, ConvertedJourney) else None
        return credited_journey(aggregates, partition, event_id, ts_ms)

    state = batch.load(refund.customer_id)
    state.partition = partition
    try:
        changes = apply_refund(state, refund, ctx.money.base_currency, credited)
    except InvalidRecord as error:
        return _invalid(aggregates, record, error.reason)
    batch.touch(refund.customer_id, state, partition)
    outcome = Outcome(changes=changes, customer_id=refund.customer_id)
    pending.add(partition, changes, outcome)
    return outcome
