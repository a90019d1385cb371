"""One input record applied to its customer and the aggregates: decode, validate, insert.

Nothing here raises on bad input: a bad record becomes a dead letter. The customer's journeys
are rebuilt later, with the rest of the batch's (:mod:`stream.processing.batch_customers`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from attribution.events import Assignment, Cost, InvalidRecord, Purchase, parse_event_bytes
from stream.processing.aggregates import note_invalid, record_cost
from stream.processing.analytics_parts import apply_to_parts
from stream.processing.batch_customers import BatchCustomers
from stream.processing.context import Context
from stream.processing.customer_state import TooLateError
from stream.processing.dead_letters import dead_letter_record
from stream.processing.outcome import Outcome
from stream.topics import TYPE_OF_KIND
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
    try:
        event = parse_event_bytes(value)
        if event.type != TYPE_OF_KIND[kind]:
            raise InvalidRecord(f"event type '{event.type}' does not belong on topic {topic}")
        if isinstance(event, Cost):
            record_cost(aggregates, partition, event)
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
    customer_id = event.customer_id
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
    state.analytics = apply_to_parts(state.analytics, event)
    batch.touch(customer_id, state, partition, rebuild=inserted)
    ctx.note_partition_time(partition, event.ts_ms)
    purchase = isinstance(event, Purchase)
    outcome = Outcome(purchase=purchase, customer_id=customer_id)
    if purchase:
        batch.purchase(customer_id, outcome, event.ts_ms)
    return outcome
