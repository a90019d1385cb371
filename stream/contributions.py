"""What one journey adds to (or, retracted, removes from) the stream's aggregates.

The per-journey credit of the additive models is computed by the batch models themselves on a
one-row path table, so the stream's sums equal the batch engine's totals. Markov is not additive:
a journey contributes transition counts, and credits come from solving the summed counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from attribution.journeys import ConvertedJourney, Journey
from attribution.models.markov import TransitionCounts, path_transitions
from attribution.models.options import ModelOptions
from attribution.models.registry import run_model
from attribution.paths import PathTable

MARKOV = "markov"


def day_of(ts_ms: int) -> str:
    """UTC calendar day of an event time, the key of the daily tumbling windows."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


@dataclass
class Contribution:
    """Signed deltas of one journey change."""

    sign: int
    day: str
    conversions: float = 0.0
    value: float = 0.0
    nulls: float = 0.0
    unattributed: float = 0.0
    credits: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    transitions: TransitionCounts | None = None


def journey_credits(
    journey: ConvertedJourney, models: list[str], options: ModelOptions
) -> dict[str, dict[str, tuple[float, float]]]:
    """Credits of one converting journey under every additive model (Markov excluded)."""
    table = PathTable.from_paths(
        [journey.channels], [1.0], [journey.value], [0.0], [journey.ages_days()]
    )
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for model in models:
        if model == MARKOV:
            continue
        result = run_model(model, table, options)
        out[model] = {ch: (c.conversions, c.value) for ch, c in result.channels.items()}
    return out


def contribution(
    sign: int, journey: Journey, models: list[str], options: ModelOptions
) -> Contribution:
    """The signed contribution of a journey to every aggregate."""
    if isinstance(journey, ConvertedJourney):
        delta = Contribution(sign, day_of(journey.ts_ms), conversions=1.0, value=journey.value)
        if journey.unattributed:
            delta.unattributed = 1.0
            return delta
        delta.credits = journey_credits(journey, models, options)
        if MARKOV in models:
            delta.transitions = path_transitions(
                journey.channels, 1.0, journey.value, 0.0, options.order
            )
        return delta
    delta = Contribution(sign, day_of(journey.ts_ms), nulls=1.0)
    if MARKOV in models:
        delta.transitions = path_transitions(journey.channels, 0.0, 0.0, 1.0, options.order)
    return delta


def contribution_summary(delta: Contribution) -> dict[str, Any]:
    """Small JSON view of a contribution (logs, debugging)."""
    return {
        "sign": delta.sign,
        "day": delta.day,
        "conversions": delta.conversions,
        "value": delta.value,
        "nulls": delta.nulls,
        "unattributed": delta.unattributed,
        "models": sorted(delta.credits),
    }
