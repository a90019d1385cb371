"""Assisted conversions per channel.

A channel assists a converting journey when it has a touch other than the journey's final
touch (as in Google Analytics: a channel can both assist and be the last touch of the same
journey). Each journey counts at most once per channel for assists, and once for its
last-touch channel. Unattributed journeys count nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from attribution.analytics._common import ALL_TIME, UTC_ZONE, Granularity, period_key, ratio
from attribution.journeys import ConvertedJourney


@dataclass
class AssistCounts:
    """Per period and channel: [assisted, last_touch]; additive (retract with sign -1)."""

    granularity: Granularity = "all"
    counts: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    time_zone: str = UTC_ZONE  # of the period buckets (business.time_zone)

    def add(self, journey: ConvertedJourney, sign: int = 1) -> None:
        """Count (or with sign -1 retract) one converted journey."""
        if journey.unattributed:
            return
        assisting = {t.channel for t in journey.touches[:-1]}
        last = journey.touches[-1].channel
        for period in {ALL_TIME, period_key(journey.ts_ms, self.granularity, self.time_zone)}:
            bucket = self.counts.setdefault(period, {})
            for channel in assisting:
                bucket.setdefault(channel, [0, 0])[0] += sign
            bucket.setdefault(last, [0, 0])[1] += sign

    def add_all(self, journeys: Iterable[ConvertedJourney]) -> AssistCounts:
        """Count every journey; returns self."""
        for journey in journeys:
            self.add(journey)
        return self

    def merge(self, other: AssistCounts) -> None:
        """Add another partition's counts."""
        for period, channels in other.counts.items():
            bucket = self.counts.setdefault(period, {})
            for channel, (assisted, last) in channels.items():
                mine = bucket.setdefault(channel, [0, 0])
                mine[0] += assisted
                mine[1] += last

    def to_json(self) -> dict[str, Any]:
        """JSON object."""
        out: dict[str, Any] = {"granularity": self.granularity, "counts": self.counts}
        if self.time_zone != UTC_ZONE:
            out["time_zone"] = self.time_zone
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AssistCounts:
        """Inverse of :meth:`to_json`."""
        return cls(
            data["granularity"],
            {
                p: {c: [int(a), int(b)] for c, (a, b) in ch.items()}
                for p, ch in data["counts"].items()
            },
            data.get("time_zone", UTC_ZONE),
        )


@dataclass(frozen=True)
class AssistRow:
    """Assisted and last-touch conversions of one channel."""

    assisted: int
    last_touch: int
    assisted_to_last_touch: float | None


def assist_report(counts: AssistCounts, period: str = ALL_TIME) -> dict[str, AssistRow]:
    """channel -> assisted, last-touch and their ratio (None when no last-touch conversion)."""
    return {
        channel: AssistRow(a, b, ratio(a, b))
        for channel, (a, b) in sorted(counts.counts.get(period, {}).items())
    }
