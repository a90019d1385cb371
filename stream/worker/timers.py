"""The worker's timers: expiry ticks, Markov refresh, the analytics snapshot, full collections."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka.errors import KafkaError

from stream.api.fanout import FanoutError
from stream.api.merge_analytics import EmptyStream
from stream.api.queries import analytics_answer, newest_event_time, refresh_markov_solution
from stream.ops.gc_tuning import full_collection, release_free_memory
from stream.pipeline import Pipeline
from stream.processing.ticks import tick_value

log = logging.getLogger("crm_attribution.stream")


async def send_ticks(pipeline: Pipeline) -> None:
    """Broadcast the group's newest event time so that idle journeys expire."""
    try:
        as_of = await newest_event_time(pipeline)
    except FanoutError as error:
        log.info("watermark tick skipped: %s", error)
        return
    if not as_of:
        return
    try:
        await pipeline.tick_sender.send(
            pipeline.topic_names.ticks, pipeline.partitions, tick_value(as_of)
        )
    except KafkaError as error:
        # The broker is away (stopped, restarting). An exception here would crash Faust's
        # timer and the worker with status 1. A tick carries the group's newest event time,
        # so the next one, sent once the broker is back, carries as much or more: skipping
        # this one changes no figure, it only delays expiries until then.
        log.warning("watermark tick skipped: Kafka unreachable (%r)", error)


async def refresh_markov(pipeline: Pipeline) -> None:
    """Re-solve the Markov model from the group's transition counts."""
    try:
        await refresh_markov_solution(pipeline)
    except Exception as error:  # noqa: BLE001 - a refresh failure must not stop the worker
        log.warning("markov refresh failed: %s", error)


async def take_analytics_snapshot(pipeline: Pipeline) -> None:
    """Take the scheduled analytics snapshot (RFM, CLV refit, holdout) and publish gauges."""
    try:
        # Within the rebuild budget like any poll: a snapshot taken while the data moves may be
        # the kept answer, which is as good for the gauges as one a few seconds newer.
        answer = (await analytics_answer(pipeline)).value
    except (EmptyStream, FanoutError) as error:
        log.info("analytics snapshot skipped: %s", error)
        return
    pipeline.analytics_snapshot = answer
    pipeline.metrics.publish_analytics(answer)


def collect_garbage(pipeline: Pipeline) -> None:
    """Run the full garbage collection the worker does not let allocations trigger."""
    started = time.perf_counter()
    found = full_collection()
    release_free_memory()
    elapsed = time.perf_counter() - started
    pipeline.metrics.full_gc.observe(elapsed)
    log.debug("full garbage collection: %d unreachable objects, %.3f s", found, elapsed)


def attach_timers(pipeline: Pipeline) -> None:
    """Register the timers on the pipeline's app (and close their clients at shutdown)."""
    app = pipeline.app
    settings = pipeline.settings

    @app.timer(interval=pipeline.tick_seconds, on_leader=True, name="watermark-ticks")
    async def ticks() -> None:
        if not app.rebalancing:
            await send_ticks(pipeline)

    @app.timer(interval=settings.attribution.markov_refresh_seconds, name="markov-refresh")
    async def markov() -> None:
        if "markov" in pipeline.models and not app.rebalancing:
            await refresh_markov(pipeline)

    @app.timer(
        interval=settings.analytics.rfm_snapshot_seconds, on_leader=True, name="analytics-snapshot"
    )
    async def analytics() -> None:
        if not app.rebalancing:
            await take_analytics_snapshot(pipeline)

    @app.timer(interval=settings.worker.full_gc_seconds, name="full-gc")
    async def full_gc() -> None:
        collect_garbage(pipeline)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_clients(sender: Any, **kwargs: Any) -> None:
        await pipeline.tick_sender.close()
        await pipeline.gap_reader.close()
