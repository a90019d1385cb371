"""The customer analytics report of the whole stream: the batch ``report`` command's JSON.

Each worker hands over, for the partitions it owns, its customers' analytics parts, the cost
events and the converted journeys (``/internal/analytics``); the worker that was asked rebuilds
the analytics state from them and runs the library's own report on it with the stream's channel
credits, so the answer equals ``crm-attribution report`` on the same log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from attribution.analytics.holdout import HashMembership
from attribution.journeys import ConvertedJourney
from stream.aggregates import split_key
from stream.customer_state import row_to_journey
from stream.fanout import ANALYTICS_PATH, gather, merge_shares
from stream.partitioning import customer_partition

if TYPE_CHECKING:
    from attribution.models.options import ModelOptions
    from config.settings import Settings
    from stream.app import Pipeline
    from stream.report import Merged

ANALYTICS_FIELD = "x"  # a customer's analytics parts inside its table entry


def local_analytics(pipeline: Pipeline) -> dict[str, Any]:
    """This worker's analytics parts, cost events and converted journeys, per owned partition."""
    shares = partition_shares(
        pipeline.customers.items(),
        pipeline.aggregates.items(),
        pipeline.assigned_partitions(),
        pipeline.partitions,
    )
    return {"url": str(pipeline.app.conf.canonical_url), "partitions": shares}


def partition_shares(
    customer_items: Iterable[tuple[bytes, Any]],
    aggregate_items: Iterable[tuple[str, Any]],
    partitions: set[int],
    partition_count: int,
) -> dict[str, dict[str, Any]]:
    """Per partition: customers' analytics parts, cost events, converted journey rows."""
    out: dict[str, dict[str, Any]] = {
        str(p): {"customers": {}, "costs": None, "journeys": []} for p in partitions
    }
    for raw_key, data in customer_items:
        parts = (data or {}).get(ANALYTICS_FIELD)
        if not parts:
            continue
        customer = raw_key.decode("utf-8")
        partition = customer_partition(customer, partition_count)
        if partition in partitions:
            out[str(partition)]["customers"][customer] = parts
    for aggregate_key, value in aggregate_items:
        partition, rest = split_key(aggregate_key)
        if partition not in partitions:
            continue
        if rest == "costs":
            out[str(partition)]["costs"] = value
        elif rest.startswith("conv|"):
            out[str(partition)]["journeys"].extend(value.values())
    return out


def converted_journeys(rows: Iterable[list[Any]]) -> list[ConvertedJourney]:
    """Journeys from ``[customer_id, row]`` pairs, in the batch engine's order."""
    journeys = []
    for customer, row in rows:
        journey = row_to_journey(customer, row)
        assert isinstance(journey, ConvertedJourney)
        journeys.append(journey)
    journeys.sort(key=lambda j: (j.customer_id, j.ts_ms, j.event_id))
    return journeys


async def analytics_json(
    pipeline: Pipeline, customer_scores: bool = False, compare_days: float = 30.0
) -> dict[str, Any]:
    """The whole stream's analytics report (the ``report --format json`` object)."""
    from stream.report import merged_view

    shares = merge_shares(
        await gather(pipeline, ANALYTICS_PATH, {}, lambda: local_analytics(pipeline))
    )
    merged = await merged_view(pipeline, "totals,credits,markov")
    # Seconds of CPU for thousands of customers: in the event loop it stalls consuming,
    # committing and heartbeats (the demo's worker stopped for 10 s out of every 20). The
    # shares are copies (table values are never mutated in place), so a thread may read them.
    return await asyncio.to_thread(
        report_from_shares,
        shares,
        merged,
        pipeline.settings,
        pipeline.models,
        pipeline.options,
        customer_scores=customer_scores,
        compare_days=compare_days,
    )


def report_from_shares(
    shares: dict[str, dict[str, Any]],
    merged: Merged,
    settings: Settings,
    models: list[str],
    options: ModelOptions,
    customer_scores: bool = False,
    compare_days: float = 30.0,
) -> dict[str, Any]:
    """The report from every partition's share and the merged attribution aggregates."""
    from attribution.analytics.report import ReportOptions, analytics_report, previous_snapshot
    from stream.customer_analytics import state_from_parts
    from stream.report import model_results, totals_object

    a = settings.analytics
    hashing = HashMembership(a.holdout_salt, a.holdout_control_share)
    customers = sorted(
        (customer, parts)
        for share in shares.values()
        for customer, parts in share["customers"].items()
    )
    costs = [share["costs"] for share in shares.values() if share["costs"]]
    state = state_from_parts(customers, costs, hashing if a.holdout_from_hash else None)
    if state.newest_ms is None:
        raise EmptyStream("the stream holds no event yet: nothing to report")
    journeys = converted_journeys(row for s in shares.values() for row in s["journeys"])
    results = model_results(merged, models, options)
    credits = {model: result.channels for model, result in results.items()}
    report_options = ReportOptions.from_settings(settings, options)
    when = state.newest_ms
    before = previous_snapshot(state, when, compare_days, a.rfm_window_days)
    report = analytics_report(
        state, credits, journeys, report_options, when, customer_scores, previous_snapshot=before
    )
    report["attribution"] = totals_object(merged)
    report["invalid_records"] = merged.invalid
    return report


class EmptyStream(LookupError):
    """No event has reached the tables yet."""
