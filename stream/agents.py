"""Faust agents and timers of the pipeline."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from faust.types import TP

from stream.codecs import record_json
from stream.gaps import GapReader
from stream.gc_tuning import full_collection
from stream.held import consumer_highwater, mark_lagging
from stream.offsets import OffsetBook, missing_range
from stream.outgoing import exit_before_commit, finish_before_cancel, send_or_exit
from stream.partitioning import customer_partition
from stream.processing import (
    Context,
    Outcome,
    PendingChanges,
    advance_customer,
    persist_watermark,
    process_record,
    release_customer,
    restore_watermark,
)

if TYPE_CHECKING:
    from stream.app import Pipeline

log = logging.getLogger("crm_attribution.stream")
# Exit status of a worker whose batch processing raised (an internal error, never bad input).
PROCESSING_FAILED_EXIT = 5


def attach(pipeline: Pipeline) -> None:
    """Register the agents, timers and rebalance hooks on the pipeline's app."""
    app = pipeline.app
    topics = pipeline.topics
    names = pipeline.settings.topics
    ticks_name = topics.ticks.get_topic_name()
    ctx = Context(
        pipeline.rules,
        pipeline.options,
        pipeline.models,
        pipeline.retention_ms,
        {
            names.touchpoints: "touchpoints",
            names.purchases: "purchases",
            names.costs: "costs",
            names.assignments: "assignments",
        },
    )
    metrics = pipeline.metrics
    pipeline.context = ctx  # type: ignore[attr-defined]
    offset_book = OffsetBook()
    gap_reader = GapReader(pipeline.bootstrap)
    # Journey changes of the batch in hand, credited together at its end.
    pending = PendingChanges()

    held = pipeline.held
    customer_topics = {"touchpoints": names.touchpoints, "purchases": names.purchases}

    outgoing = pipeline.outgoing
    dead_letter_topic = names.dead_letter
    attributions_topic = names.attributions

    def emit(outcome: Outcome) -> None:
        """Hold the dead letter and attribution records of one outcome for sending."""
        if outcome.dead_letter is not None:
            metrics.dead_lettered.labels(outcome.dead_letter["topic"]).inc()
            if outcome.too_late:
                metrics.too_late.inc()
            outgoing.add_keyed(dead_letter_topic, None, record_json(outcome.dead_letter))
        for record in outcome.attribution_records:
            outgoing.add_keyed(
                attributions_topic, record["customer_id"].encode(), record_json(record)
            )

    def track_customer(partition: int, customer_id: str) -> None:
        """Keep the partition's open-journey and held-journey indexes in step with a customer."""
        if not held.known(partition):
            rebuild_indexes(partition)  # the scan sees this customer's new state too
            return
        data = pipeline.customers.get(customer_id.encode("utf-8")) or {}
        held.update(partition, customer_id, data.get("h"))
        index = pipeline.open_index.get(partition)
        if index is None:
            return
        if data.get("o") is not None:
            index[customer_id] = data["o"]
        else:
            index.pop(customer_id, None)

    def markov_effects() -> dict[str, Any] | None:
        solution = pipeline.markov_solution
        return None if solution is None else solution["effects"]

    def handle_tick(partition: int, value: bytes) -> list[Outcome]:
        as_of = int(json.loads(value)["as_of"])
        restore_watermark(ctx, pipeline.aggregates, partition)
        if partition not in pipeline.open_index or not held.known(partition):
            rebuild_indexes(partition)
        index = pipeline.open_index.get(partition, {})
        due = [
            cid
            for cid, since in index.items()
            if as_of - pipeline.rules.allowed_lateness_ms - since > pipeline.rules.timeout_ms
        ]
        outcomes = []
        for customer_id in due:
            outcomes.append(
                advance_customer(
                    ctx,
                    pipeline.customers,
                    pipeline.aggregates,
                    customer_id,
                    partition,
                    as_of,
                    pending=pending,
                )
            )
            track_customer(partition, customer_id)
        key = f"{partition}|tick"
        if (pipeline.aggregates.get(key) or 0) < as_of:
            pipeline.aggregates[key] = as_of
        persist_watermark(ctx, pipeline.aggregates, partition)
        offset_book.persist(pipeline.aggregates, partition)
        return outcomes

    def rebuild_indexes(partition: int) -> None:
        """Index the partition's open and held journeys from the customers table."""
        index: dict[str, int] = {}
        holding: list[tuple[str, int]] = []
        for key, data in pipeline.customers.items():
            if not data or (data.get("o") is None and data.get("h") is None):
                continue
            customer_id = key.decode("utf-8")
            if customer_partition(customer_id, pipeline.partitions) != partition:
                continue
            if data.get("o") is not None:
                index[customer_id] = data["o"]
            if data.get("h") is not None:
                holding.append((customer_id, data["h"]))
        pipeline.open_index[partition] = index
        held.rebuild(partition, holding)

    # Where this worker starts reading a customer topic partition it has processed nothing of
    # yet, and its end when the consumer has not fetched it yet (asked once per assignment).
    start_offsets: dict[tuple[str, int], int] = {}
    end_offsets: dict[tuple[str, int], int] = {}
    asked: set[tuple[str, int]] = set()  # asked once per assignment, answered or not

    async def learn_offsets(partitions: set[int]) -> None:
        """Ask Kafka where the unread customer topic partitions of ``partitions`` start and end.

        Right after an assignment, a batch may hold a partition's purchases before any of its
        touchpoints: without knowing where the touchpoints stand, their backlog would go
        unnoticed and every order would be credited and then re-credited per touch.
        """
        consumer: Any = app.consumer
        unknown = [
            TP(topic, partition)
            for partition in partitions
            for topic in customer_topics.values()
            if (topic, partition) not in offset_book.next_offsets
            and (topic, partition) not in asked
        ]
        if not unknown:
            return
        asked.update((tp.topic, tp.partition) for tp in unknown)
        committed = consumer._committed_offset  # noqa: SLF001 - Faust keeps it here
        never = [tp for tp in unknown if committed.get(tp) is None]
        unfetched = [tp for tp in unknown if consumer_highwater(consumer, tp) is None]
        try:
            earliest = await consumer.earliest_offsets(*never) if never else {}
            ends = await consumer.highwaters(*unfetched) if unfetched else {}
        except Exception as error:  # noqa: BLE001 - unknown means: hold nothing
            log.debug("offsets of %s unknown: %s", unknown, error)
            return
        for tp in unknown:
            start = committed.get(tp)
            start = earliest.get(tp) if start is None else start
            if start is not None:
                start_offsets[(tp.topic, tp.partition)] = start
            if tp in ends:
                end_offsets[(tp.topic, tp.partition)] = ends[tp]

    def update_lagging(partitions: set[int]) -> None:
        """Mark the customer topic partitions that still have unread events (consumer's view)."""
        consumer = app.consumer

        def highwater(topic: str, partition: int) -> int | None:
            end = consumer_highwater(consumer, TP(topic, partition))
            return end_offsets.get((topic, partition)) if end is None else end

        mark_lagging(
            ctx.lagging,
            partitions | {p for _, p in ctx.lagging},
            customer_topics,
            {**start_offsets, **offset_book.next_offsets},
            highwater,
            backlog=batch_events,
        )

    def forget_offsets(partition: int) -> None:
        for topic in customer_topics.values():
            start_offsets.pop((topic, partition), None)
            end_offsets.pop((topic, partition), None)
            asked.discard((topic, partition))

    def release_held() -> list[Outcome]:
        """Credit the held journeys that their partition's credit horizon reaches now."""
        outcomes = []
        for partition in held.partitions():
            for customer_id in held.due(partition, ctx.credit_through(partition)):
                outcomes.append(
                    release_customer(
                        ctx,
                        pipeline.customers,
                        pipeline.aggregates,
                        customer_id,
                        partition,
                        pending=pending,
                    )
                )
                track_customer(partition, customer_id)
        return outcomes

    def process_message(topic: str, partition: int, offset: int, key: Any, value: Any) -> Outcome:
        metrics.events_in.labels(topic).inc()
        outcome = process_record(
            ctx,
            pipeline.customers,
            pipeline.aggregates,
            topic,
            partition,
            offset,
            key,
            value,
            pending=pending,
        )
        if outcome.customer_id is not None:
            track_customer(partition, outcome.customer_id)
        offset_book.processed(topic, partition, offset)
        return outcome

    async def fill_gap(topic: str, partition: int, offset: int) -> list[Outcome]:
        """Process the messages before ``offset`` that this partition never recorded."""
        gap = missing_range(offset_book.expected(pipeline.aggregates, topic, partition), offset)
        if gap is None:
            return []
        start, end = gap
        log.info(
            "%s[%d]: offsets %d..%d were not recorded as processed; reading them directly",
            topic,
            partition,
            start,
            end - 1,
        )
        metrics.offsets_refilled.labels(topic).inc(end - start)
        outcomes = []
        async for record in gap_reader.read(topic, partition, start, end):
            outcomes.append(
                process_message(topic, partition, record.offset, record.key, record.value)
            )
        return outcomes

    async def process_batch(batch: Any) -> tuple[list[Outcome], list[float]]:
        """Process a batch's events in order, credit them, and queue every message they make."""
        outcomes: list[Outcome] = []
        purchases_at: list[float] = []
        partitions: set[int] = set()
        for event in batch:
            message = event.message
            if message.topic == ticks_name:
                outcomes += handle_tick(message.partition, message.value)
                continue
            partitions.add(message.partition)
            outcomes += await fill_gap(message.topic, message.partition, message.offset)
            outcome = process_message(
                message.topic, message.partition, message.offset, message.key, message.value
            )
            outcomes.append(outcome)
            if outcome.purchase and not outcome.held and message.timestamp:
                purchases_at.append(message.timestamp)
        await learn_offsets(partitions)
        update_lagging(partitions)
        outcomes += release_held()
        emitted, retracted = pending.counts()
        metrics.journey_changes.labels("emitted").inc(emitted)
        metrics.journey_changes.labels("retracted").inc(retracted)
        pending.apply(ctx, pipeline.aggregates, markov_effects())
        pipeline.queue_table_writes()
        for outcome in outcomes:
            emit(outcome)
        return outcomes, purchases_at

    async def handle_batch(batch: Any) -> None:
        """Process, credit and send one batch; end the process rather than lose any of it."""
        started = time.perf_counter()
        try:
            outcomes, purchases_at = await process_batch(batch)
        except Exception:  # noqa: BLE001 - see below
            # Faust would acknowledge the batch and restart the agent with its half-made writes
            # still held: end the process instead, so that a restart reads the batch again.
            exit_before_commit(PROCESSING_FAILED_EXIT, "processing a batch failed", exc_info=True)
            return
        # Delivered before the loop asks for the next batch, which acknowledges this one; the
        # stores get the values only then.
        await send_or_exit(outgoing, pipeline.store_table_writes)
        elapsed = time.perf_counter() - started
        for _ in batch:
            metrics.processing_latency.observe(elapsed)
        now = time.time()
        for produced_at in purchases_at:
            metrics.purchase_to_table.observe(max(0.0, now - produced_at))

    batch_events = pipeline.settings.worker.batch_events
    batch_seconds = pipeline.settings.worker.batch_seconds

    @app.agent(topics.inputs, name="events")
    async def events(stream: Any) -> None:
        # Events come in batches; each batch's table writes are sent once per key at its end,
        # before Faust acknowledges its offsets. A rebalance or stop waits for the batch in hand
        # (stream_wait_empty), so it finds a batch either not started or fully written.
        async for batch in stream.take_events(batch_events, within=batch_seconds):
            await finish_before_cancel(handle_batch(batch))

    @app.timer(interval=pipeline.tick_seconds, on_leader=True, name="watermark-ticks")
    async def send_ticks() -> None:
        """Broadcast the group's newest event time so that idle journeys expire."""
        if app.rebalancing:
            return
        from stream.fanout import FanoutError, gather_local, merge_shares

        try:
            merged = merge_shares(await gather_local(pipeline, "totals"))
        except FanoutError as error:
            log.info("watermark tick skipped: %s", error)
            return
        marks = [(items.get("totals") or {}).get("wm", 0) for items in merged.values()]
        if not marks or not max(marks):
            return
        as_of = max(marks)
        payload = json.dumps({"as_of": as_of}).encode()
        producer = await tick_producer()
        for partition in range(pipeline.partitions):
            await producer.send(ticks_name, value=payload, partition=partition)
        await producer.flush()

    tick_producer_holder: list[Any] = []

    async def tick_producer() -> Any:
        # Ticks are sent from a timer, outside any event: a plain producer sends them (Faust's
        # own would route them through its buffer and the next commit).
        if not tick_producer_holder:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, linger_ms=0)
            await producer.start()
            tick_producer_holder.append(producer)
        return tick_producer_holder[0]

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_tick_producer(sender: Any, **kwargs: Any) -> None:
        if tick_producer_holder:
            await tick_producer_holder.pop().stop()
        await gap_reader.close()

    @app.timer(interval=pipeline.settings.attribution.markov_refresh_seconds, name="markov-refresh")
    async def refresh_markov() -> None:
        """Re-solve the Markov model from the group's transition counts."""
        if "markov" in pipeline.models and not app.rebalancing:
            from stream.report import refresh_markov_solution

            try:
                await refresh_markov_solution(pipeline)
            except Exception as error:  # noqa: BLE001 - a refresh failure must not stop the worker
                log.warning("markov refresh failed: %s", error)

    @app.timer(
        interval=pipeline.settings.analytics.rfm_snapshot_seconds,
        on_leader=True,
        name="analytics-snapshot",
    )
    async def analytics_snapshot() -> None:
        """Take the scheduled analytics snapshot (RFM, CLV refit, holdout) and publish gauges."""
        if app.rebalancing:
            return
        from stream.analytics_report import EmptyStream, analytics_json
        from stream.fanout import FanoutError
        from stream.views import update_analytics_gauges

        try:
            answer = await analytics_json(pipeline)
        except (EmptyStream, FanoutError) as error:
            log.info("analytics snapshot skipped: %s", error)
            return
        pipeline.analytics_snapshot = answer  # type: ignore[attr-defined]
        update_analytics_gauges(metrics, answer)

    @app.timer(interval=pipeline.settings.worker.full_gc_seconds, name="full-gc")
    async def collect_garbage() -> None:
        """Run the full garbage collection the worker does not let allocations trigger."""
        started = time.perf_counter()
        found = full_collection()
        elapsed = time.perf_counter() - started
        metrics.full_gc.observe(elapsed)
        log.debug("full garbage collection: %d unreachable objects, %.3f s", found, elapsed)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()
        for tp in revoked:
            pipeline.open_index.pop(tp.partition, None)
            held.forget(tp.partition)
            forget_offsets(tp.partition)
            for kind in customer_topics:
                ctx.lagging.discard((kind, tp.partition))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        for tp in assigned:
            pipeline.open_index.pop(tp.partition, None)
            held.forget(tp.partition)
            forget_offsets(tp.partition)
            offset_book.forget(tp.partition)
            for kind in customer_topics:
                ctx.lagging.discard((kind, tp.partition))

    pipeline.agents = (events, send_ticks, refresh_markov, analytics_snapshot, collect_garbage)  # type: ignore[attr-defined]
