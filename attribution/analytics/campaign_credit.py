"""Every engine model's credit spread over touches, so campaigns get the credit of their touches.

The rule-based models (first_touch, last_touch, last_non_direct, linear, position_based,
time_decay) give each touch of a journey the same weight as the engine's vectorised models
(:mod:`attribution.models.heuristics`). The data-driven models give credit to channels, not
touches; their per-journey channel credit is:

* ``shapley``: the journey split equally over its distinct channels (the closed form of the
  engine's default additive worth, exact per journey);
* ``markov``: the journey split over its distinct channels in proportion to the model's
  channel credit (:func:`attribution.models.markov.path_credit`, the stream's per-order rule;
  the model's credits are proportional to its removal effects), conversions and value apart.

A channel's credit within a journey is then split equally among that channel's touches in
the journey, and each touch's share goes to its campaign (touches without one credit none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from attribution.analytics.touch_credit import (
    Credit,
    CreditLike,
    TouchWeights,
    allocate,
    by_campaign,
    credit_conversions,
    credit_value,
    first_purchase_credit,
    first_touch,
    last_touch,
    linear,
)
from attribution.journeys import ConvertedJourney, Journey
from attribution.models.heuristics import FIRST_SHARE, LAST_SHARE, MIDDLE_SHARE
from attribution.models.options import ModelOptions


@dataclass(frozen=True)
class ModelWeights:
    """Touch weights of one model: for conversions, and for value (the same except Markov)."""

    conversions: TouchWeights
    value: TouchWeights


def last_non_direct(direct_channel: str) -> TouchWeights:
    """All credit to the last touch not in ``direct_channel`` (the last touch if all are)."""

    def weights(journey: ConvertedJourney) -> list[float]:
        n = len(journey.touches)
        chosen = n - 1
        for i in range(n - 1, -1, -1):
            if journey.touches[i].channel != direct_channel:
                chosen = i
                break
        return [1.0 if i == chosen else 0.0 for i in range(n)]

    return weights


def position_based(journey: ConvertedJourney) -> list[float]:
    """40% first, 40% last, 20% shared by the middle; all to a lone touch, 50/50 for two."""
    n = len(journey.touches)
    if n <= 2:
        return [1.0 / n] * n
    middle = MIDDLE_SHARE / (n - 2)
    return [FIRST_SHARE, *([middle] * (n - 2)), LAST_SHARE]


def time_decay(half_life_days: float) -> TouchWeights:
    """Weight ``2^(-age / half_life)`` per touch, normalised over the journey."""

    def weights(journey: ConvertedJourney) -> list[float]:
        ages = np.array(journey.ages_days(), dtype=np.float64)
        # Relative to the youngest touch, as the engine does: same weights, no underflow.
        raw = np.exp2(-(ages - ages.min()) / half_life_days)
        return [float(w) for w in raw / raw.sum()]

    return weights


def _per_touch(journey: ConvertedJourney, channel_shares: Mapping[str, float]) -> list[float]:
    """Each channel's share of the journey split equally among that channel's touches."""
    counts: dict[str, int] = {}
    for touch in journey.touches:
        counts[touch.channel] = counts.get(touch.channel, 0) + 1
    return [channel_shares.get(t.channel, 0.0) / counts[t.channel] for t in journey.touches]


def shapley(journey: ConvertedJourney) -> list[float]:
    """The journey split equally over its distinct channels, then over each channel's touches."""
    distinct = dict.fromkeys(journey.channels)
    return _per_touch(journey, {channel: 1.0 / len(distinct) for channel in distinct})


def markov(channel_credits: Mapping[str, CreditLike]) -> ModelWeights:
    """Per-journey Markov split in proportion to the model's channel credits."""
    from attribution.models.markov import path_credit

    conv = {ch: credit_conversions(c) for ch, c in channel_credits.items()}
    value = {ch: credit_value(c) for ch, c in channel_credits.items()}

    def split(journey: ConvertedJourney) -> dict[str, tuple[float, float]]:
        return path_credit(journey.channels, 1.0, conv, value)

    def conversions(journey: ConvertedJourney) -> list[float]:
        return _per_touch(journey, {ch: c for ch, (c, _) in split(journey).items()})

    def values(journey: ConvertedJourney) -> list[float]:
        return _per_touch(journey, {ch: v for ch, (_, v) in split(journey).items()})

    return ModelWeights(conversions, values)


def model_weights(
    model: str, options: ModelOptions, channel_credits: Mapping[str, CreditLike]
) -> ModelWeights | None:
    """Touch weights of an engine model by name (None for a model this module does not know)."""
    if model == "markov":
        return markov(channel_credits)
    simple: dict[str, Callable[[], TouchWeights]] = {
        "first_touch": lambda: first_touch,
        "last_touch": lambda: last_touch,
        "last_non_direct": lambda: last_non_direct(options.direct_channel),
        "linear": lambda: linear,
        "position_based": lambda: position_based,
        "time_decay": lambda: time_decay(options.half_life_days),
        "shapley": lambda: shapley,
    }
    make = simple.get(model)
    if make is None:
        return None
    weights = make()
    return ModelWeights(weights, weights)


def campaign_credits(
    journeys: Sequence[ConvertedJourney], weights: ModelWeights
) -> dict[str, Credit]:
    """campaign -> (conversions, value) credited over all time."""
    by_conv = allocate(journeys, weights.conversions, key=by_campaign).get("all", {})
    if weights.value is weights.conversions:
        return by_conv
    by_value = allocate(journeys, weights.value, key=by_campaign).get("all", {})
    names = sorted(set(by_conv) | set(by_value))
    return {
        name: Credit(by_conv.get(name, Credit()).conversions, by_value.get(name, Credit()).value)
        for name in names
    }


def new_customers(journeys: Sequence[ConvertedJourney], weights: ModelWeights) -> dict[str, float]:
    """campaign -> customers acquired (first purchases, spread by the conversion weights)."""
    return first_purchase_credit(journeys, weights.conversions)


def converted(journeys: Iterable[Journey]) -> list[ConvertedJourney]:
    """The converted journeys among ``journeys``."""
    return [j for j in journeys if isinstance(j, ConvertedJourney)]
