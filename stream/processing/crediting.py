"""Journey changes of a batch, credited together: aggregate deltas and attribution records."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from attribution.journeys import ConvertedJourney, Journey, NullJourney
from attribution.models.markov import path_credit
from stream.processing.aggregates import (
    apply_contribution,
    note_event,
    record_journeys,
)
from stream.processing.context import Context
from stream.processing.contributions import MARKOV, Contribution, contributions
from stream.processing.customer_state import JourneyChange
from stream.processing.outcome import Outcome


@dataclass
class PendingChanges:
    """Journey changes of a batch of events, credited together when the batch is done.

    Crediting a journey runs every model's rule on a path table; one table for the whole batch
    costs little more than one for a single journey.
    """

    items: list[tuple[int, JourneyChange, Outcome]] = field(default_factory=list)

    def add(self, partition: int, changes: list[JourneyChange], outcome: Outcome) -> None:
        """Keep the changes one event (or expiry) made, for :meth:`apply`."""
        self.items += [(partition, change, outcome) for change in changes]

    def latest(self, event_id: str) -> JourneyChange | None:
        """The last kept change of the converted journey of purchase ``event_id`` (None: none)."""
        for _, change, _ in reversed(self.items):
            journey = change.journey
            if isinstance(journey, ConvertedJourney) and journey.event_id == event_id:
                return change
        return None

    def counts(self) -> tuple[int, int]:
        """How many kept changes emit a journey, and how many retract one."""
        retracted = sum(1 for _, change, _ in self.items if change.sign < 0)
        return len(self.items) - retracted, retracted

    def apply(
        self,
        ctx: Context,
        aggregates: MutableMapping[str, Any],
        markov_effects: Mapping[str, Any] | None,
    ) -> None:
        """Add every kept change to the aggregates and its outcome's attribution records."""
        items, self.items = self.items, []
        if not items:
            return
        deltas = contributions([(c.sign, c.journey) for _, c, _ in items], ctx.models, ctx.options)
        for partition in sorted({partition for partition, _, _ in items}):
            note_event(aggregates, partition, ctx.watermarks.get(partition))
        kept: list[tuple[int, int, Journey]] = []
        for (partition, change, outcome), delta in zip(items, deltas, strict=True):
            apply_contribution(aggregates, partition, delta)
            if isinstance(change.journey, NullJourney):
                if ctx.keep_null_paths:
                    kept.append((partition, change.sign, change.journey))
                continue
            kept.append((partition, change.sign, change.journey))
            if not change.journey.unattributed:
                outcome.attribution_records += attribution_records(
                    change.sign, change.journey, delta, ctx.models, markov_effects
                )
        # One edit of each journey block for the whole batch (decoded and encoded once).
        record_journeys(aggregates, kept)


def attribution_records(
    sign: int,
    journey: ConvertedJourney,
    delta: Contribution,
    models: list[str],
    markov_effects: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """One output record per credited order and model (retractions carry ``retracted: true``)."""
    base = {
        "order_id": journey.order_id,
        "customer_id": journey.customer_id,
        "purchase_event_id": journey.event_id,
        "ts": journey.ts_ms,
        "value": journey.value,
        "path": list(journey.channels),
        "retracted": sign < 0,
    }
    records = []
    for model in models:
        if model == MARKOV:
            credits = markov_path_credits(journey, markov_effects)
            if credits is None:
                continue
        else:
            credits = {
                ch: {"conversions": c, "value": v} for ch, (c, v) in delta.credits[model].items()
            }
        records.append({**base, "model": model, "credits": credits})
    return records


def markov_path_credits(
    journey: ConvertedJourney, markov_effects: Mapping[str, Any] | None
) -> dict[str, dict[str, float]] | None:
    """Path-level Markov credit of one order from the latest solved removal effects."""
    if not markov_effects:
        return None
    split = path_credit(
        journey.channels,
        journey.value,
        markov_effects.get("removal_effects", {}),
        markov_effects.get("removal_effects_value", {}),
    )
    return {ch: {"conversions": c, "value": v} for ch, (c, v) in split.items()}
