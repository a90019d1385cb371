"""Turn the per-partition aggregates into answers: the batch engine's JSON, credits, Markov."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attribution.engine import Totals
from attribution.journeys import ConvertedJourney, EventRow
from attribution.models.markov import TransitionCounts
from attribution.models.options import ModelOptions
from attribution.results import ChannelCredit, ModelResult
from stream.fanout import gather_local, merge_shares

if TYPE_CHECKING:
    from stream.app import Pipeline

MARKOV = "markov"


@dataclass
class Merged:
    """Aggregates of all partitions summed."""

    totals: dict[str, float] = field(default_factory=dict)
    invalid: int = 0
    credits: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    daily: dict[str, dict[str, Any]] = field(default_factory=dict)
    markov: dict[str, dict[str, Any]] = field(default_factory=dict)
    watermark: int = 0
    tick: int = 0


def _sum_credits(target: dict[str, list[float]], source: dict[str, list[float]]) -> None:
    for channel, (conv, value) in source.items():
        slot = target.setdefault(channel, [0.0, 0.0])
        slot[0] += conv
        slot[1] += value


def merge_partitions(partitions: dict[str, dict[str, Any]]) -> Merged:
    """Sum the aggregate items of every partition (in partition order, for reproducibility)."""
    merged = Merged()
    for partition in sorted(partitions, key=int):
        for rest, value in sorted(partitions[partition].items()):
            kind, _, tail = rest.partition("|")
            if kind == "totals":
                for name, amount in value.items():
                    if name == "wm":
                        merged.watermark = max(merged.watermark, int(amount))
                    elif name == "invalid":
                        merged.invalid += int(amount)
                    elif name == "invalid_offsets":
                        continue
                    else:
                        merged.totals[name] = merged.totals.get(name, 0.0) + amount
            elif kind == "credits":
                for model, credits in value.items():
                    _sum_credits(merged.credits.setdefault(model, {}), credits)
            elif kind == "daily":
                bucket = merged.daily.setdefault(tail, {})
                for model, content in value.items():
                    if model == "totals":
                        totals = bucket.setdefault("totals", {})
                        for name, amount in content.items():
                            totals[name] = totals.get(name, 0.0) + amount
                    else:
                        _sum_credits(bucket.setdefault(model, {}), content)
            elif kind == "markov":
                node = merged.markov.setdefault(tail, {"to": {}, "cv": 0.0, "cc": 0.0})
                for dst, weight in value["to"].items():
                    node["to"][dst] = node["to"].get(dst, 0.0) + weight
                node["cv"] += value["cv"]
                node["cc"] += value["cc"]
            elif kind == "tick":
                merged.tick = int(value) if not merged.tick else min(merged.tick, int(value))
    return merged


def transition_counts(merged: Merged) -> TransitionCounts:
    """The Markov transition counts of the whole stream."""
    edges: dict[tuple[str, str], float] = {}
    value: dict[str, float] = {}
    count: dict[str, float] = {}
    for state, node in merged.markov.items():
        for dst, weight in node["to"].items():
            if weight:
                edges[(state, dst)] = weight
        if node["cc"]:
            value[state] = node["cv"]
            count[state] = node["cc"]
    return TransitionCounts.from_parts(edges, value, count)


def markov_result(merged: Merged, options: ModelOptions) -> ModelResult:
    """Solve the Markov model from the summed counts (the batch engine's own solver)."""
    from attribution.models.markov import markov_from_counts

    return markov_from_counts(transition_counts(merged), options)


def totals_object(merged: Merged) -> dict[str, Any]:
    """The ``totals`` object of the attribute command's JSON."""
    t = merged.totals
    return Totals(
        conversions=t.get("conversions", 0.0),
        value=t.get("value", 0.0),
        null=t.get("null", 0.0),
        unattributed_conversions=t.get("unattributed_conversions", 0.0),
        invalid_records=merged.invalid,
    ).to_json()


# Credits retracted to nothing may leave float residue; a channel below this is one the batch
# engine never credited.
RESIDUE = 1e-9


def _credit_result(model: str, credits: dict[str, list[float]]) -> ModelResult:
    return ModelResult(
        model,
        {
            ch: ChannelCredit(conv, value)
            for ch, (conv, value) in credits.items()
            if abs(conv) > RESIDUE or abs(value) > RESIDUE
        },
    )


def model_results(
    merged: Merged, models: list[str], options: ModelOptions
) -> dict[str, ModelResult]:
    """Each model's channel credits over the whole stream."""
    return {
        model: markov_result(merged, options)
        if model == MARKOV
        else _credit_result(model, merged.credits.get(model, {}))
        for model in models
    }


def attribution_object(merged: Merged, models: list[str], options: ModelOptions) -> dict[str, Any]:
    """Exactly the JSON object ``crm-attribution attribute --events`` prints for the same log."""
    results = {m: r.to_json() for m, r in model_results(merged, models, options).items()}
    return {"totals": totals_object(merged), "models": results}


async def merged_view(pipeline: Pipeline, kinds: str) -> Merged:
    """Gather every worker's share of the given kinds and sum them."""
    return merge_partitions(merge_shares(await gather_local(pipeline, kinds)))


async def attribution_json(pipeline: Pipeline) -> dict[str, Any]:
    """The whole stream's attribution, as the batch command prints it."""
    merged = await merged_view(pipeline, "totals,credits,markov,tick")
    out = attribution_object(merged, pipeline.models, pipeline.options)
    return out


async def totals_json(pipeline: Pipeline) -> dict[str, Any]:
    """Totals plus the stream's clocks (newest event time and last expiry tick)."""
    merged = await merged_view(pipeline, "totals,tick")
    return {
        **totals_object(merged),
        "watermark_ms": merged.watermark,
        "expired_as_of_ms": merged.tick,
    }


async def credits_json(
    pipeline: Pipeline, models: list[str], start: str | None, end: str | None
) -> dict[str, Any]:
    """Credits per model and channel, all time or summed over purchase days in [start, end]."""
    if start is None and end is None:
        merged = await merged_view(pipeline, "totals,credits,markov")
        return {
            "from": None,
            "to": None,
            "models": attribution_object(merged, models, pipeline.options)["models"],
        }
    merged = await merged_view(pipeline, "daily")
    summed: dict[str, dict[str, list[float]]] = {}
    for day, bucket in merged.daily.items():
        if (start and day < start) or (end and day > end):
            continue
        for model in models:
            if model != MARKOV:
                _sum_credits(summed.setdefault(model, {}), bucket.get(model, {}))
    return {
        "from": start,
        "to": end,
        "models": {m: _credit_result(m, summed.get(m, {})).to_json() for m in summed},
        "note": "markov credits are only computed over the whole stream"
        if MARKOV in models
        else None,
    }


async def refresh_markov_solution(pipeline: Pipeline) -> dict[str, Any]:
    """Re-solve Markov from the group's counts and keep it for per-order records."""
    started = time.perf_counter()
    merged = await merged_view(pipeline, "markov")
    result = markov_result(merged, pipeline.options)
    elapsed = time.perf_counter() - started
    pipeline.metrics.markov_refresh.observe(elapsed)
    effects = {
        "removal_effects": {ch: c.removal_effect or 0.0 for ch, c in result.channels.items()},
        "removal_effects_value": {
            ch: c.removal_effect_value or 0.0 for ch, c in result.channels.items()
        },
    }
    pipeline.markov_solution = {"effects": effects, "result": result, "solved_at": time.time()}
    return pipeline.markov_solution


async def markov_json(pipeline: Pipeline, refresh: bool) -> dict[str, Any]:
    """Removal effects, conversion probability and transition matrix (latest or fresh)."""
    if refresh or pipeline.markov_solution is None:
        await refresh_markov_solution(pipeline)
    solution = pipeline.markov_solution
    result: ModelResult = solution["result"]
    return {
        "solved_at": solution["solved_at"],
        "conversion_probability": result.conversion_probability,
        "channels": result.to_json()["channels"],
        "transition_matrix": result.extras.get("transition_matrix", []),
    }


def customer_json(pipeline: Pipeline, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A customer's retained events, emitted journeys and their credits."""
    from stream.contributions import journeys_credits
    from stream.customer_state import CustomerState

    state = CustomerState.from_json(customer_id, data)
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


def update_gauges(pipeline: Pipeline) -> None:
    """Refresh the gauges computed on scrape: consumer lag, journeys and customers held."""
    metrics = pipeline.metrics
    metrics.journeys_held.set(sum(len(v) for v in pipeline.open_index.values()))
    metrics.held_journeys.set(len(pipeline.held))
    with contextlib.suppress(Exception):  # the table is not ready during recovery
        metrics.customers_held.set(len(pipeline.customers))
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
        "journey_changes": {
            change: m.journey_changes.labels(change)._value.get()  # noqa: SLF001
            for change in ("emitted", "retracted")
        },
    }
