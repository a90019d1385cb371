"""Batch attribution: run the chosen models over a path table or a whole event log.

The stream prints the very same :meth:`AttributionReport.to_json` object for the same log, so
this module decides the JSON shape and its number types (counts as integers, money as floats).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attribution.models.heuristics import credited_rows, select_rows
from attribution.models.options import ModelOptions
from attribution.models.registry import CONVERTING_ROWS_ONLY, run_model
from attribution.paths import PathTable
from attribution.results import ModelResult

if TYPE_CHECKING:
    # Events and journeys are imported where they are used: the events are pydantic models,
    # and pydantic takes longer to import than a path file takes to attribute.
    import polars as pl

    from attribution.bootstrap import BootstrapCredits
    from attribution.events import AnyEvent
    from attribution.journey_table import JourneyTable
    from attribution.journeys import JourneyRules


def as_count(x: float) -> int | float:
    """A count as an integer when it is one (path files may hold fractional counts)."""
    rounded = round(x)
    return int(rounded) if abs(x - rounded) < 1e-6 else x


@dataclass
class Totals:
    """What the input held, whatever the models credit."""

    conversions: float = 0.0
    value: float = 0.0
    null: float = 0.0
    unattributed_conversions: float = 0.0
    invalid_records: int = 0

    @classmethod
    def from_table(cls, table: PathTable, invalid_records: int = 0) -> Totals:
        """Totals of a path table; conversions of rows without touches are unattributed."""
        empty = table.lengths == 0
        return cls(
            conversions=float(table.conversions.sum()),
            value=float(table.value.sum()),
            null=float(table.nulls.sum()),
            unattributed_conversions=float(table.conversions[empty].sum()),
            invalid_records=invalid_records,
        )

    def to_json(self) -> dict[str, Any]:
        """The ``totals`` object of the report."""
        return {
            "conversions": as_count(self.conversions),
            "value": float(self.value),
            "null": as_count(self.null),
            "unattributed_conversions": as_count(self.unattributed_conversions),
            "invalid_records": int(self.invalid_records),
        }


@dataclass
class AttributionReport:
    """Totals and one result per model, in the order the models were asked for."""

    totals: Totals
    results: dict[str, ModelResult] = field(default_factory=dict)
    # Customers whose journey is still open at the end of the log (events input only).
    open_journeys: int = 0
    # The bootstrap's resamples (attribution/bootstrap.py), when intervals were asked for.
    confidence: BootstrapCredits | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"totals": ..., "models": {name: {"channels": ..., ...}}}``.

        With :attr:`confidence`, every channel's credit has ``ci`` (``{"conversions": [low,
        high], "value": [low, high]}``) and ``confidence`` says how it was made.
        """
        out = {
            "totals": self.totals.to_json(),
            "models": {name: result.to_json() for name, result in self.results.items()},
        }
        if self.confidence is not None:
            with_intervals(out, self.confidence)
        return out


def with_intervals(answer: dict[str, Any], confidence: BootstrapCredits) -> dict[str, Any]:
    """Put the bootstrap's interval on every channel of ``answer["models"]`` (``ci``: ``{
    "conversions": [low, high], "value": [low, high]}``, None where it has none) and say how
    they were made (``confidence``); returns ``answer``."""
    intervals = confidence.intervals()
    answer["confidence"] = confidence.settings_json()
    for name, model in answer["models"].items():
        for channel, credit in model["channels"].items():
            interval = intervals.get(name, {}).get(channel)
            credit["ci"] = None if interval is None else interval.to_json()
    return answer


def _with_touches(table: PathTable) -> PathTable:
    # Rows without touches (unattributed conversions) are in the totals, not in any model:
    # the Markov chain cannot start a path that has no channel.
    has_touches = table.lengths > 0
    return table if has_touches.all() else select_rows(table, has_touches)


def attribute_paths(
    table: PathTable, totals: Totals, models: list[str], options: ModelOptions
) -> AttributionReport:
    """Run ``models`` over a path table; ``totals`` describe the whole input."""
    attributable = _with_touches(table)
    converting = None
    results = {}
    for name in models:
        if name in CONVERTING_ROWS_ONLY:
            # Filtered once here rather than by each model: a million-row copy is not free.
            converting = credited_rows(attributable) if converting is None else converting
            results[name] = run_model(name, converting, options)
        else:
            results[name] = run_model(name, attributable, options)
    return AttributionReport(totals, results)


def totals_of_journeys(journeys: JourneyTable, invalid_records: int = 0) -> Totals:
    """What the journeys hold: conversions (unattributed ones too), value, null paths."""
    import numpy as np

    from attribution.journey_kernel import CONVERTED, NULL, UNATTRIBUTED

    kind = journeys.arrays.kind
    converting = (kind == CONVERTED) | (kind == UNATTRIBUTED)
    value = journeys.events.amount[journeys.arrays.purchase[converting]]
    return Totals(
        conversions=float(converting.sum()),
        value=float(np.sum(value)) if value.size else 0.0,
        null=float((kind == NULL).sum()),
        unattributed_conversions=float((kind == UNATTRIBUTED).sum()),
        invalid_records=invalid_records,
    )


def attribute_journeys(
    journeys: JourneyTable, models: list[str], options: ModelOptions
) -> AttributionReport:
    """Run ``models`` over the journeys of an event log."""
    report = attribute_paths(journeys.path_table(), totals_of_journeys(journeys), models, options)
    report.open_journeys = journeys.open_customers
    return report


def attribute_event_table(
    table: pl.DataFrame,
    rules: JourneyRules,
    models: list[str],
    options: ModelOptions,
    as_of_ms: int | None = None,
) -> AttributionReport:
    """Build journeys from an event table (costs and assignments ignored) and run ``models``."""
    from attribution.journey_table import build_journey_table

    return attribute_journeys(build_journey_table(table, rules, as_of_ms), models, options)


def attribute_events(
    events: Iterable[AnyEvent],
    rules: JourneyRules,
    models: list[str],
    options: ModelOptions,
    as_of_ms: int | None = None,
) -> AttributionReport:
    """:func:`attribute_event_table` over event objects."""
    from attribution.io.event_table import from_events

    return attribute_event_table(from_events(events), rules, models, options, as_of_ms)
