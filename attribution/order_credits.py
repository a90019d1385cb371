"""Each order's credit under every model, in the shape of the stream's attribution records.

The batch ``export`` writes the rows the stream's SQL sink keeps: the additive models split
each converted journey by their own per-touch rules (:func:`row_credits`); Markov splits it
by the removal effects of the whole log (:func:`path_credit`), as the stream does with its
latest solved effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attribution.journeys import ConvertedJourney, Journey
from attribution.models.markov import path_credit
from attribution.models.options import ModelOptions
from attribution.models.row_credits import ADDITIVE_MODELS, row_credits
from attribution.paths import PathTable

MARKOV = "markov"


def order_records(
    journeys: Sequence[Journey],
    models: Sequence[str],
    options: ModelOptions,
    markov_effects: tuple[dict[str, float], dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """One record per credited order and model: ids, time, value, path and channel credits."""
    credited = [j for j in journeys if isinstance(j, ConvertedJourney) and not j.unattributed]
    table = PathTable.from_paths(
        [j.channels for j in credited],
        [1.0] * len(credited),
        [j.value for j in credited],
        [0.0] * len(credited),
        [j.ages_days() for j in credited],
    )
    per_model = {m: row_credits(m, table, options) for m in models if m in ADDITIVE_MODELS}
    records = []
    for i, journey in enumerate(credited):
        base = {
            "order_id": journey.order_id,
            "customer_id": journey.customer_id,
            "purchase_event_id": journey.event_id,
            "ts": journey.ts_ms,
            "value": journey.value,
            "path": list(journey.channels),
            "retracted": False,
        }
        for model in models:
            if model == MARKOV:
                if markov_effects is None:
                    continue
                split = path_credit(journey.channels, journey.value, *markov_effects)
            elif model in per_model:
                split = per_model[model][i]
            else:
                continue
            credits = {ch: {"conversions": c, "value": v} for ch, (c, v) in split.items()}
            records.append({**base, "model": model, "credits": credits})
    return records


def markov_effects_of(result: Any) -> tuple[dict[str, float], dict[str, float]] | None:
    """The (conversion, value) removal effects of a batch Markov result, if there is one."""
    if result is None:
        return None
    return (
        dict(result.extras.get("removal_effects", {})),
        dict(result.extras.get("removal_effects_value", {})),
    )
