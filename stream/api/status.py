"""The worker's own state for ops: gauges computed on scrape, and a JSON summary of metrics."""

from __future__ import annotations

import contextlib
from typing import Any

from stream.pipeline import Pipeline


def update_gauges(pipeline: Pipeline) -> None:
    """Refresh the gauges computed on scrape: consumer lag, journeys and customers held."""
    metrics = pipeline.metrics
    indexes = pipeline.runner.indexes
    metrics.journeys_held.set(indexes.open_count())
    metrics.held_journeys.set(len(indexes.held))
    with contextlib.suppress(Exception):  # the table is not ready during recovery
        metrics.customers_held.set(pipeline.customers.stored_count())
    consumer = getattr(pipeline.app, "consumer", None)
    if consumer is None:
        return
    try:
        for tp in pipeline.app.assignor.assigned_actives():
            highwater = consumer.highwater(tp)
            position = consumer._committed_offset.get(tp)  # noqa: SLF001 - Faust keeps it here
            if highwater is not None and position is not None:
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                    max(0, highwater - position - 1)
                )
    except Exception:  # noqa: BLE001 - not assigned yet
        pass


def metrics_summary(pipeline: Pipeline) -> dict[str, Any]:
    """A few worker metrics as JSON (benchmarks and the demo read it)."""
    m = pipeline.metrics
    events_in = sum(
        sample.value
        for metric in m.events_in.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    return {
        "events_in": events_in,
        "table_writes_sent": pipeline.customers.sent + pipeline.aggregates.sent,
        "table_writes_coalesced": pipeline.customers.coalesced + pipeline.aggregates.coalesced,
        "customers_held": m.customers_held._value.get(),  # noqa: SLF001 - prometheus gauge
        "open_journeys": m.journeys_held._value.get(),  # noqa: SLF001
        # Customers whose closed journeys wait for a backlogged topic (docs/stream.md).
        "customers_with_held_journeys": m.held_journeys._value.get(),  # noqa: SLF001
        # /analytics answers rebuilt, and served exact from the cache (stream.versioned_cache).
        "analytics_built": pipeline.analytics_cache.built,
        "analytics_served_kept": pipeline.analytics_cache.served_kept,
        # Kept answers served though the data had moved: the rebuild budget was spent.
        "analytics_served_outdated": pipeline.analytics_cache.served_outdated,
        # Per event read: how often a batch decodes a customer (docs/stream.md, batches).
        "customer_records_decoded": m.customers_decoded._value.get(),  # noqa: SLF001
        "journey_rebuilds": m.journeys_rebuilt._value.get(),  # noqa: SLF001
        "journey_changes": {
            change: m.journey_changes.labels(change)._value.get()  # noqa: SLF001
            for change in ("emitted", "retracted")
        },
    }
