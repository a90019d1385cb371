"""Spreading a model's credit over touches, and from touches to any key (channel, campaign).

The credit a model gives to a touch goes to that touch's channel, and to that touch's
campaign (touches without a campaign credit no campaign). A model is given here as its touch
weights: a function from a converted journey to one weight per touch, summing to 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from attribution.analytics._common import ALL_TIME, UTC_ZONE, Granularity, period_key
from attribution.journeys import ConvertedJourney, Touch

TouchWeights = Callable[[ConvertedJourney], Sequence[float]]
TouchKey = Callable[[Touch], str | None]


@dataclass
class Credit:
    """Conversions and value credited to one key."""

    conversions: float = 0.0
    value: float = 0.0


class _HasValue(Protocol):
    value: float


CreditLike = _HasValue | tuple[float, float]
"""A credit as the engine gives it: ChannelCredit/Credit, or a (conversions, value) pair."""


def credit_value(credit: CreditLike) -> float:
    """The value of a credit in any of the accepted shapes."""
    return float(credit[1]) if isinstance(credit, tuple) else float(credit.value)


def credit_conversions(credit: CreditLike) -> float:
    """The conversions of a credit in any of the accepted shapes."""
    if isinstance(credit, tuple):
        return float(credit[0])
    return float(getattr(credit, "conversions", 0.0))


def last_touch(journey: ConvertedJourney) -> list[float]:
    """All credit to the last touch."""
    n = len(journey.touches)
    return [0.0] * (n - 1) + [1.0] if n else []


def first_touch(journey: ConvertedJourney) -> list[float]:
    """All credit to the first touch."""
    n = len(journey.touches)
    return [1.0] + [0.0] * (n - 1) if n else []


def linear(journey: ConvertedJourney) -> list[float]:
    """Equal credit to every touch."""
    n = len(journey.touches)
    return [1.0 / n] * n


def by_channel(touch: Touch) -> str | None:
    """Key a touch by its channel."""
    return touch.channel


def by_campaign(touch: Touch) -> str | None:
    """Key a touch by its campaign (None: no campaign)."""
    return touch.campaign


def _check(journey: ConvertedJourney, weights: Sequence[float]) -> None:
    if len(weights) != len(journey.touches) or not math.isclose(math.fsum(weights), 1.0):
        raise ValueError(
            f"touch weights for order {journey.order_id!r} must be one per touch "
            f"({len(journey.touches)}) and sum to 1, got {list(weights)}"
        )


def allocate(
    journeys: Iterable[ConvertedJourney],
    weights: TouchWeights,
    key: TouchKey = by_channel,
    granularity: Granularity = "all",
    time_zone: str = UTC_ZONE,
) -> dict[str, dict[str, Credit]]:
    """Credit per period (always including ``all``; periods of ``time_zone``) and key;
    unattributed journeys credit none."""
    parts: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for journey in sorted(journeys, key=lambda j: (j.ts_ms, j.event_id)):
        if journey.unattributed:
            continue
        shares = weights(journey)
        _check(journey, shares)
        for period in {ALL_TIME, period_key(journey.ts_ms, granularity, time_zone)}:
            bucket = parts.setdefault(period, {})
            for touch, share in zip(journey.touches, shares, strict=True):
                name = key(touch)
                if name is not None and share:
                    bucket.setdefault(name, []).append((share, share * journey.value))
    return {
        period: {
            name: Credit(math.fsum(c for c, _ in items), math.fsum(v for _, v in items))
            for name, items in sorted(bucket.items())
        }
        for period, bucket in sorted(parts.items())
    }


def first_purchase_credit(
    journeys: Iterable[ConvertedJourney], weights: TouchWeights, key: TouchKey = by_campaign
) -> dict[str, float]:
    """New customers per key: each customer's first purchase, spread by the model's weights."""
    first: dict[str, ConvertedJourney] = {}
    for journey in journeys:
        known = first.get(journey.customer_id)
        if known is None or (journey.ts_ms, journey.event_id) < (known.ts_ms, known.event_id):
            first[journey.customer_id] = journey
    parts: dict[str, list[float]] = {}
    for customer in sorted(first):
        journey = first[customer]
        if journey.unattributed:
            continue
        shares = weights(journey)
        _check(journey, shares)
        for touch, share in zip(journey.touches, shares, strict=True):
            name = key(touch)
            if name is not None and share:
                parts.setdefault(name, []).append(share)
    return {name: math.fsum(items) for name, items in sorted(parts.items())}


def model_credits(
    journeys: Sequence[ConvertedJourney],
    models: Mapping[str, TouchWeights],
    key: TouchKey = by_channel,
    granularity: Granularity = "all",
) -> dict[str, dict[str, dict[str, Credit]]]:
    """period -> model -> key -> credit, for several models at once."""
    out: dict[str, dict[str, dict[str, Credit]]] = {}
    for model, weights in models.items():
        for period, credits in allocate(journeys, weights, key, granularity).items():
            out.setdefault(period, {})[model] = credits
    return out
