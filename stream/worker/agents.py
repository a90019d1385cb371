"""The Faust agent that feeds the batch runner, and the rebalance hooks that reset its memory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from aiokafka.errors import KafkaError
from faust import Stream
from faust.types import EventT, StreamT

from stream.kafka.codecs import record_json
from stream.kafka.outgoing import (
    SEND_FAILED_EXIT,
    exit_before_commit,
    finish_before_cancel,
    send_or_exit,
)
from stream.pipeline import Pipeline
from stream.processing.runner import BatchResult
from stream.types import Record
from stream.worker.assignment import refusal, unrecovered_changelogs

# Exit status of a worker whose batch processing raised (an internal error, never bad input).
PROCESSING_FAILED_EXIT = 5


def input_record(event: EventT) -> Record:
    """The runner's view of a Faust event."""
    message = event.message
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        message.timestamp or None,
    )


def queue_outputs(pipeline: Pipeline, result: BatchResult) -> None:
    """Count the batch and put its dead letters and attribution records into the outgoing batch."""
    metrics = pipeline.metrics
    names = pipeline.topic_names
    for topic, count in result.events_in.items():
        metrics.events_in.labels(topic).inc(count)
    for topic, count in result.refilled.items():
        metrics.offsets_refilled.labels(topic).inc(count)
    metrics.journey_changes.labels("emitted").inc(result.emitted)
    metrics.journey_changes.labels("retracted").inc(result.retracted)
    metrics.too_late.inc(result.too_late())
    for outcome in result.outcomes:
        if outcome.dead_letter is not None:
            metrics.dead_lettered.labels(outcome.dead_letter["topic"]).inc()
            pipeline.outgoing.add_keyed(names.dead_letter, None, record_json(outcome.dead_letter))
        for record in outcome.attribution_records:
            key = record["customer_id"].encode()
            pipeline.outgoing.add_keyed(names.attributions, key, record_json(record))


def consumed_offsets(events: Sequence[EventT]) -> dict[tuple[str, int], int]:
    """The next offset to read of each topic partition, after ``events``."""
    offsets: dict[tuple[str, int], int] = {}
    for event in events:
        message = event.message
        where = (message.topic, message.partition)
        offsets[where] = max(offsets.get(where, 0), message.offset + 1)
    return offsets


async def handle_batch(pipeline: Pipeline, events: Sequence[EventT]) -> None:
    """Process, credit and send one batch; end the process rather than lose any of it."""
    started = time.perf_counter()
    try:
        result = await pipeline.runner.process([input_record(event) for event in events])
        pipeline.queue_table_writes()
        queue_outputs(pipeline, result)
    except KafkaError as error:
        # Processing reads Kafka itself (a skipped range of a partition, stream/kafka/gaps.py):
        # with the broker away that is an outage, not a bug, and a supervisor restarts on 4.
        exit_before_commit(
            SEND_FAILED_EXIT, f"could not read from Kafka while processing a batch ({error!r})"
        )
        return
    except Exception:  # noqa: BLE001 - see below
        # Faust would acknowledge the batch and restart the agent with its half-made writes
        # still held: end the process instead, so that a restart reads the batch again.
        exit_before_commit(PROCESSING_FAILED_EXIT, "processing a batch failed", exc_info=True)
        return
    # Delivered (with exactly_once: committed with the batch's offsets) before the loop asks
    # for the next batch, which acknowledges this one; the stores get the values only then.
    await send_or_exit(
        pipeline.outgoing, pipeline.store_table_writes, offsets=consumed_offsets(events)
    )
    elapsed = time.perf_counter() - started
    for _ in events:
        pipeline.metrics.processing_latency.observe(elapsed)
    now = time.time()
    for produced_at in result.purchase_timestamps:
        pipeline.metrics.purchase_to_table.observe(max(0.0, now - produced_at))


def attach_agent(pipeline: Pipeline) -> None:
    """Register the events agent and the rebalance hooks on the pipeline's app."""
    app = pipeline.app
    worker = pipeline.settings.worker

    @app.agent(pipeline.topics.inputs, name="events")
    async def events(stream: StreamT) -> None:
        if pipeline.transactions is not None:
            # Started before the first batch: it fences an earlier producer of this worker id.
            await pipeline.transactions.start()
        # Events come in batches; each batch's table writes are sent once per key at its end,
        # before Faust acknowledges its offsets. A rebalance or stop waits for the batch in hand
        # (stream_wait_empty), so it finds a batch either not started or fully written.
        # (take_events is Faust's Stream's own, not part of its StreamT interface.)
        batches = cast(Stream, stream).take_events(worker.batch_events, within=worker.batch_seconds)
        async for batch in batches:
            await finish_before_cancel(handle_batch(pipeline, batch))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        pipeline.metrics.rebalances.inc()
        for tp in revoked:
            pipeline.runner.revoked(tp.partition)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        missing = unrecovered_changelogs(
            ((tp.topic, tp.partition) for tp in assigned),
            pipeline.topic_names.inputs(),
            app.tables.changelog_topics,
        )
        if missing:
            # No batch of this assignment has run: exiting leaves nothing uncommitted, and the
            # worker restarted by its supervisor asks for fresh metadata when it joins again.
            exit_before_commit(SEND_FAILED_EXIT, refusal(missing))
            return
        for tp in assigned:
            pipeline.runner.assigned(tp.partition)
