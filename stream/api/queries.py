"""Answers to the API's queries: gather every worker's share, merge, and shape the answer."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from attribution.journeys import ConvertedJourney, EventRow
from stream.api.fanout import ANALYTICS_PATH, gather, gather_local, group_version, merge_shares
from stream.api.merge_analytics import report_from_shares
from stream.api.merge_attribution import (
    attribution_object,
    credits_between_object,
    credits_with_intervals,
    markov_result,
    totals_object,
)
from stream.api.params import BadRequest, CreditIntervals
from stream.api.shares import local_analytics
from stream.pipeline import Pipeline
from stream.processing import customer_record
from stream.processing.aggregates import (
    CREDIT_INTERVAL_KINDS,
    Merged,
    merge_partitions,
    stored_journeys,
)
from stream.processing.contributions import journeys_credits
from stream.types import MarkovSolution
from stream.versioned_cache import Answer


async def merged_view(pipeline: Pipeline, kinds: str) -> Merged:
    """Gather every worker's share of the given kinds and sum them."""
    return merge_partitions(merge_shares(await gather_local(pipeline, kinds)))


async def attribution_json(pipeline: Pipeline) -> dict[str, Any]:
    """The whole stream's attribution, as the batch command prints it."""
    merged = await merged_view(pipeline, "totals,credits,markov,tick")
    return attribution_object(merged, pipeline.models, pipeline.options)


async def totals_json(pipeline: Pipeline) -> dict[str, Any]:
    """Totals plus the stream's clocks (newest event time and last expiry tick)."""
    merged = await merged_view(pipeline, "totals,tick")
    return {
        **totals_object(merged),
        "watermark_ms": merged.watermark,
        "expired_as_of_ms": merged.tick,
    }


async def newest_event_time(pipeline: Pipeline) -> int:
    """The group's newest event time (0: nothing yet), what expiry ticks carry."""
    return (await merged_view(pipeline, "totals")).watermark


async def credits_json(
    pipeline: Pipeline,
    models: list[str],
    start: str | None,
    end: str | None,
    intervals: CreditIntervals | None = None,
) -> dict[str, Any]:
    """Credits per model and channel, all time or summed over purchase days in [start, end];
    with ``intervals``, all time with the bootstrap's interval on every credit."""
    if intervals is not None:
        if not pipeline.ctx.keep_null_paths:
            raise BadRequest(
                "ci= resamples every journey, null paths included, which this stream does not "
                "keep: set attribution.credit_intervals = true (CRM_ATTRIBUTION__CREDIT_INTERVALS"
                "=true) and restart the workers on a fresh state"
            )
        if start is not None or end is not None:
            raise BadRequest("ci= gives intervals of the all-time credits: leave out from and to")
        merged = await merged_view(pipeline, "totals,credits,markov")
        kept = merge_shares(await gather_local(pipeline, ",".join(CREDIT_INTERVAL_KINDS)))
        journeys = stored_journeys(i for items in kept.values() for i in items.items())
        # Hundreds of resamples: seconds of CPU, in a thread as /analytics does (same reason).
        return await asyncio.to_thread(
            credits_with_intervals,
            merged,
            journeys,
            models,
            pipeline.options,
            *intervals.arguments(),
        )
    if start is None and end is None:
        merged = await merged_view(pipeline, "totals,credits,markov")
        return {
            "from": None,
            "to": None,
            "models": attribution_object(merged, models, pipeline.options)["models"],
        }
    return credits_between_object(await merged_view(pipeline, "daily"), models, start, end)


async def refresh_markov_solution(pipeline: Pipeline) -> MarkovSolution:
    """Re-solve Markov from the group's counts and keep it for per-order records."""
    started = time.perf_counter()
    merged = await merged_view(pipeline, "markov")
    result = markov_result(merged, pipeline.options)
    pipeline.metrics.markov_refresh.observe(time.perf_counter() - started)
    effects = {
        "removal_effects": {ch: c.removal_effect or 0.0 for ch, c in result.channels.items()},
        "removal_effects_value": {
            ch: c.removal_effect_value or 0.0 for ch, c in result.channels.items()
        },
    }
    pipeline.markov_solution = MarkovSolution(effects, result, time.time())
    return pipeline.markov_solution


async def markov_json(pipeline: Pipeline, refresh: bool) -> dict[str, Any]:
    """Removal effects, conversion probability and transition matrix (latest or fresh)."""
    solution = pipeline.markov_solution
    if refresh or solution is None:
        solution = await refresh_markov_solution(pipeline)
    result = solution.result
    return {
        "solved_at": solution.solved_at,
        "conversion_probability": result.conversion_probability,
        "channels": result.to_json()["channels"],
        "transition_matrix": result.extras.get("transition_matrix", []),
    }


async def analytics_answer(
    pipeline: Pipeline,
    customer_scores: bool = False,
    compare_days: float = 30.0,
    fresh: bool = False,
) -> Answer:
    """The whole stream's analytics report (the ``report --format json`` object, as ``value``)
    and how fresh it is.

    Kept between changes: while no worker's data version moves, the same question gets the
    answer already built (``stream.versioned_cache``), so polling costs one tiny call per
    worker instead of a rebuild. While it moves, rebuilds take at most
    ``analytics.rebuild_cpu_share`` of the time and an outdated answer is served meanwhile,
    marked as such; ``fresh`` waits for the exact answer.
    """
    return await pipeline.analytics_cache.answer(
        (customer_scores, compare_days),
        lambda: group_version(pipeline),
        lambda: build_analytics(pipeline, customer_scores, compare_days),
        exact=fresh,
    )


def freshness_headers(answer: Answer, now: float) -> dict[str, str]:
    """How fresh an answer is, as response headers (``now``: epoch seconds)."""
    digest = hashlib.sha256(str(answer.version).encode("utf-8")).hexdigest()[:16]
    built = datetime.fromtimestamp(answer.built_at, UTC)
    return {
        "X-Data-Version": digest,
        "X-Built-At": built.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "Age": str(max(0, int(now - answer.built_at))),
        "X-Newer-Data": "true" if answer.newer_data else "false",
    }


async def build_analytics(
    pipeline: Pipeline, customer_scores: bool, compare_days: float
) -> dict[str, Any]:
    """The analytics report rebuilt from every worker's share (the costly path)."""
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


def customer_json(pipeline: Pipeline, customer_id: str, value: Any) -> dict[str, Any]:
    """A customer's retained events, emitted journeys and their credits."""
    state = customer_record.decode(customer_id, value)
    journeys = []
    for journey in state.emitted:
        item: dict[str, Any] = {"channels": list(journey.channels), "ts": journey.ts_ms}
        if isinstance(journey, ConvertedJourney):
            item.update(kind="converted", order_id=journey.order_id, value=journey.value)
            if journey.touches:
                credits = journeys_credits([journey], pipeline.models, pipeline.options)
                item["credits"] = credits[0]
        else:
            item["kind"] = "null"
        journeys.append(item)
    return {
        "customer_id": customer_id,
        "open_journey_since_ms": state.open_since_ms,
        "retained_events": [event_json(row) for row in state.events],
        "journeys": journeys,
    }


def event_json(row: EventRow) -> dict[str, Any]:
    """A retained event as JSON."""
    if row.is_purchase:
        return {
            "type": "purchase",
            "event_id": row.event_id,
            "ts": row.ts_ms,
            "order_id": row.channel_or_order,
            "amount": row.amount,
        }
    return {
        "type": "touchpoint",
        "event_id": row.event_id,
        "ts": row.ts_ms,
        "channel": row.channel_or_order,
        "campaign": row.campaign,
        "interaction": row.interaction,
    }
