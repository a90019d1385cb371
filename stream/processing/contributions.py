"""What journeys add to (or, retracted, remove from) the stream's aggregates.

The per-journey credit of the additive models comes from the batch models' own rules applied to
a table of the journeys changed together (``attribution.models.row_credits``), so the stream's
sums equal the batch engine's totals. Markov is not additive: a journey contributes transition
counts, and credits come from solving the summed counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from attribution.journeys import ConvertedJourney, Journey
from attribution.models.markov import TransitionCounts, path_transitions
from attribution.models.options import ModelOptions
from attribution.models.row_credits import RowCredit, row_credits
from attribution.paths import PathTable

MARKOV = "markov"


def day_of(ts_ms: int) -> str:
    """UTC calendar day of an event time, the key of the daily tumbling windows."""
    return _day_name(ts_ms // DAY_MS)


DAY_MS = 86_400_000


@lru_cache(maxsize=4096)
def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


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


def journeys_credits(
    journeys: Sequence[ConvertedJourney], models: list[str], options: ModelOptions
) -> list[dict[str, RowCredit]]:
    """Per journey, its credits under every additive model (Markov excluded), in one pass."""
    out: list[dict[str, RowCredit]] = [{} for _ in journeys]
    if not journeys:
        return out
    table = PathTable.from_paths(
        [j.channels for j in journeys],
        [1.0] * len(journeys),
        [j.value for j in journeys],
        [0.0] * len(journeys),
        [j.ages_days() for j in journeys],
    )
    for model in models:
        if model == MARKOV:
            continue
        for credits, row in zip(out, row_credits(model, table, options), strict=True):
            credits[model] = row
    return out


def contributions(
    changes: Sequence[tuple[int, Journey]], models: list[str], options: ModelOptions
) -> list[Contribution]:
    """The signed contribution of each (sign, journey) change to every aggregate."""
    credited = [
        journey
        for _, journey in changes
        if isinstance(journey, ConvertedJourney) and not journey.unattributed
    ]
    credits = iter(journeys_credits(credited, models, options))
    out = []
    for sign, journey in changes:
        if isinstance(journey, ConvertedJourney):
            delta = Contribution(sign, day_of(journey.ts_ms), conversions=1.0, value=journey.value)
            if journey.unattributed:
                delta.unattributed = 1.0
                out.append(delta)
                continue
            delta.credits = next(credits)
            if MARKOV in models:
                delta.transitions = path_transitions(
                    journey.channels, 1.0, journey.value, 0.0, options.order, options.markov_states
                )
        else:
            delta = Contribution(sign, day_of(journey.ts_ms), nulls=1.0)
            if MARKOV in models:
                delta.transitions = path_transitions(
                    journey.channels, 0.0, 0.0, 1.0, options.order, options.markov_states
                )
        out.append(delta)
    return out
