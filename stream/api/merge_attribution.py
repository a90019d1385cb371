"""The batch engine's attribution answers from the summed aggregates of every partition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attribution.engine import Totals, with_intervals
from attribution.journeys import Journey
from attribution.models.markov import TransitionCounts, markov_from_counts
from attribution.models.options import ModelOptions
from attribution.results import ChannelCredit, ModelResult
from stream.processing.aggregates import Merged
from stream.processing.contributions import MARKOV

# Credits retracted to nothing may leave float residue; a channel below this is one the batch
# engine never credited.
RESIDUE = 1e-9


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


def credit_result(model: str, credits: dict[str, list[float]]) -> ModelResult:
    """A model's result from channel -> [conversions, value] sums (residue dropped)."""
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
        else credit_result(model, merged.credits.get(model, {}))
        for model in models
    }


def attribution_object(merged: Merged, models: list[str], options: ModelOptions) -> dict[str, Any]:
    """Exactly the JSON object ``crm-attribution attribute --events`` prints for the same log."""
    results = {m: r.to_json() for m, r in model_results(merged, models, options).items()}
    return {"totals": totals_object(merged), "models": results}


def credits_between_object(
    merged: Merged, models: list[str], start: str | None, end: str | None
) -> dict[str, Any]:
    """Credits per model and channel summed over purchase days in [start, end] (no Markov)."""
    additive = [m for m in models if m != MARKOV]
    summed = merged.credits_between(start, end, additive)
    return {
        "from": start,
        "to": end,
        "models": {m: credit_result(m, summed[m]).to_json() for m in summed},
        "note": "markov credits are only computed over the whole stream"
        if MARKOV in models
        else None,
    }


def credits_with_intervals(
    merged: Merged,
    journeys: Sequence[Journey],
    models: list[str],
    options: ModelOptions,
    level: float,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """All-time credits with the bootstrap's intervals over customers, as ``attribute --events
    --ci LEVEL --resamples N --seed S`` prints them for the same log (the stream's journeys:
    converted ones and, kept with ``attribution.credit_intervals``, null paths)."""
    from attribution.bootstrap import credit_intervals_of_journeys

    answer = attribution_object(merged, models, options)
    confidence = credit_intervals_of_journeys(journeys, models, options, resamples, level, seed)
    return {"from": None, "to": None, **with_intervals(answer, confidence)}
