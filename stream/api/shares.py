"""What this worker holds, for the partitions it owns: the share a fan-out collects from it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from stream.pipeline import Pipeline
from stream.processing import aggregate_keys
from stream.processing.aggregates import items_by_partition, with_watermark
from stream.processing.analytics_shares import partition_shares
from stream.processing.write_back import snapshot_items


def owned_keys(partitions: set[int], kinds: set[str]) -> Callable[[str], bool]:
    """Whether an aggregate key is of one of ``partitions`` and ``kinds`` (any kind if none).

    Scans filter on the key before any value is read: the expiry ticks ask for the totals every
    few seconds, and a RocksDB scan decoding every value (every converted journey) to keep a
    few took an eighth of a worker's time.
    """

    def keep(key: str) -> bool:
        partition, kind, _ = aggregate_keys.parse(key)
        return partition in partitions and (not kinds or kind in kinds)

    return keep


async def local_share(pipeline: Pipeline, kinds: str) -> dict[str, Any]:
    """This worker's aggregate items, for the partitions it owns, limited to ``kinds``."""
    wanted = {k for k in kinds.split(",") if k} if kinds else set()
    partitions = pipeline.assigned_partitions()

    keep = owned_keys(partitions, wanted)
    share = items_by_partition(pipeline.aggregates.items(keep), partitions, wanted)
    # The newest event times live in memory between aggregate writes.
    if not wanted or aggregate_keys.TOTALS in wanted:
        for partition in partitions:
            items = share.setdefault(str(partition), {})
            totals = items.get(aggregate_keys.TOTALS)
            mark = pipeline.runner.watermark(partition)
            if mark > (totals or {}).get("wm", 0):
                items[aggregate_keys.TOTALS] = with_watermark(totals, mark)
    return {"url": str(pipeline.app.conf.canonical_url), "partitions": share}


async def local_analytics(pipeline: Pipeline) -> dict[str, Any]:
    """This worker's analytics columns and sums, cost events and converted journeys, per owned
    partition.

    The tables are read here, in the event loop, where no batch code runs meanwhile: the two
    reads are one consistent moment, and only the loop iterates the stores. The columns are
    then built on a thread (1.7 s of a cold /analytics at 60,000 customers) while the agent
    goes on: written values are never changed in place, and the few a batch paused at an
    await holds to change (``P|funnel``) are copied by the snapshot.
    """
    partitions = pipeline.assigned_partitions()
    kinds = {aggregate_keys.COSTS, aggregate_keys.FUNNEL, aggregate_keys.CONVERSIONS}
    customers = snapshot_items(pipeline.customers)
    aggregates = snapshot_items(pipeline.aggregates, owned_keys(partitions, kinds))
    shares = await asyncio.to_thread(
        partition_shares,
        customers,
        aggregates,
        partitions,
        pipeline.customer_partition,
        pipeline.settings.business.base_currency,
        # P|funnel moves with the customer records only when a batch commits as one.
        funnel_sums_exact=pipeline.settings.worker.processing_guarantee == "exactly_once",
    )
    return {"url": str(pipeline.app.conf.canonical_url), "partitions": shares}


async def local_version(pipeline: Pipeline) -> dict[str, Any]:
    """The version of what this worker holds for its partitions: cheap, no table read.

    It changes whenever a query's answer could: a batch's changes reaching the stores (the
    expiry clock and offset bookkeeping aside, which /analytics does not read), a
    rebalance (the consumer generation and the partitions owned: a partition recovered from
    its changelog holds what another worker wrote) and a restart (this process's id).
    """
    return {
        "url": str(pipeline.app.conf.canonical_url),
        "version": [
            pipeline.instance,
            pipeline.changes_stored,
            pipeline.app.consumer_generation_id,
            sorted(pipeline.assigned_partitions()),
        ],
    }
