"""The agent that feeds the batch runner from the input feed, and the rebalance hooks."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from faust.types import StreamT

from stream.kafka.codecs import record_json
from stream.kafka.feed import InputFeed, consumed_offsets
from stream.kafka.outgoing import (
    SEND_FAILED_EXIT,
    exit_before_commit,
    finish_before_cancel,
    send_or_exit,
)
from stream.ops.gc_tuning import collect_between_batches
from stream.pipeline import Pipeline
from stream.processing.runner import BatchResult
from stream.types import Record, TopicPartition
from stream.worker.assignment import refusal, unrecovered_changelogs

# Exit status of a worker whose batch processing raised (an internal error, never bad input).
PROCESSING_FAILED_EXIT = 5


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
    metrics.customers_decoded.inc(result.customers_decoded)
    metrics.journeys_rebuilt.inc(result.journeys_rebuilt)
    for outcome in result.outcomes:
        if outcome.dead_letter is not None:
            metrics.dead_lettered.labels(outcome.dead_letter["topic"]).inc()
            pipeline.outgoing.add_keyed(names.dead_letter, None, record_json(outcome.dead_letter))
        for record in outcome.attribution_records:
            key = record["customer_id"].encode()
            pipeline.outgoing.add_keyed(names.attributions, key, record_json(record))


class InputOffsets(Protocol):
    """Where the agent reports the offsets of its batches (stream.kafka.feed.FeedConsumer)."""

    def note_committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets the worker's transaction committed."""
        ...

    async def commit_consumed(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit offsets to the consumer group."""
        ...


async def handle_batch(
    pipeline: Pipeline, records: Sequence[Record], offsets_to: InputOffsets
) -> None:
    """Process, credit, send and commit one batch; end the process rather than lose any of it."""
    started = time.perf_counter()
    try:
        result = await pipeline.runner.process(list(records))
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
        # Carrying on would commit the batch's offsets with its half-made writes still held:
        # end the process instead, so that a restart reads the batch again.
        exit_before_commit(PROCESSING_FAILED_EXIT, "processing a batch failed", exc_info=True)
        return
    offsets = consumed_offsets(records)
    # Delivered (with exactly_once: committed with the batch's offsets) before the offsets are
    # committed or the next batch taken; the stores get the values only then.
    sent = await send_or_exit(pipeline.outgoing, pipeline.store_table_writes, offsets=offsets)
    if pipeline.transactions is not None and sent:
        # The transaction committed the offsets: Faust's consumer only records them.
        offsets_to.note_committed(offsets)
    else:
        # at_least_once, or a batch that wrote nothing (no transaction): a plain group commit.
        await offsets_to.commit_consumed(offsets)
    elapsed = time.perf_counter() - started
    for _ in records:
        pipeline.metrics.processing_latency.observe(elapsed)
    now = time.time()
    for produced_at in result.purchase_timestamps:
        pipeline.metrics.purchase_to_table.observe(max(0.0, now - produced_at))


async def run_batches(pipeline: Pipeline, feed: InputFeed, offsets_to: InputOffsets) -> None:
    """Take batches from the feed and handle them, one at a time, until cancelled."""
    worker = pipeline.settings.worker
    while True:
        records = await feed.take(worker.batch_events, worker.batch_seconds)
        try:
            # A stop cancels the agent: the batch in hand still ends (sent and committed).
            await finish_before_cancel(handle_batch(pipeline, records, offsets_to))
        finally:
            # A rebalance waits for this (FeedConsumer.on_partitions_revoked), so it finds the
            # batch either not started or fully written and committed.
            feed.done(records)
        # The batch's states are freed now: collect young garbage here, not amid them.
        collect_between_batches()


def attach_agent(pipeline: Pipeline) -> None:
    """Register the events agent and the rebalance hooks on the pipeline's app."""
    app = pipeline.app

    # Still a Faust agent over the input topics (its stream is never iterated: the records
    # come from the feed): Faust starts it with the app and cancels it on stop, as before, and
    # the assignor keeps partition P of every input topic on one worker. On a stop the batch
    # in hand ends first (FeedConsumer.wait_empty, before Faust closes the tables), and a
    # batch still held when the agent is cancelled ends too (finish_before_cancel).
    @app.agent(pipeline.topics.inputs, name="events")
    async def events(stream: StreamT) -> None:
        if pipeline.transactions is not None:
            # Started before the first batch: it fences an earlier producer of this worker id.
            await pipeline.transactions.start()
        # Subscribes the consumer to the input topics (Faust does it when a stream is first
        # iterated); FeedConsumer hands their records to the feed, never to this channel.
        aiter(pipeline.topics.inputs)
        await run_batches(pipeline, pipeline.feed, pipeline.input_offsets())

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
