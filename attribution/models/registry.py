"""Every attribution model by name, in the canonical order of the reports."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from attribution.models.heuristics import (
    first_touch,
    last_non_direct,
    last_touch,
    linear,
    position_based,
    time_decay,
)
from attribution.models.options import ModelOptions
from attribution.paths import PathTable
from attribution.results import ModelResult

Model = Callable[[PathTable, ModelOptions], ModelResult]

# Models that need the age of each touch, hence raw events rather than aggregated paths.
NEEDS_EVENTS = frozenset({"time_decay"})
# Models that look only at converting rows: the engine filters those rows once for all of them.
CONVERTING_ROWS_ONLY = frozenset(
    {"first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay"}
)


def _lazy(module: str, function: str) -> Model:
    """A model imported on first use (the data-driven models pull in scipy and networkx)."""

    def run(table: PathTable, options: ModelOptions) -> ModelResult:
        model: Model = getattr(importlib.import_module(module), function)
        return model(table, options)

    run.__name__ = function
    run.__doc__ = f"Run {module}.{function}."
    return run


MODELS: dict[str, Model] = {
    "first_touch": first_touch,
    "last_touch": last_touch,
    "last_non_direct": last_non_direct,
    "linear": linear,
    "position_based": position_based,
    "time_decay": time_decay,
    "markov": _lazy("attribution.models.markov", "markov"),
    "shapley": _lazy("attribution.models.shapley", "shapley"),
}


class UnknownModel(ValueError):
    """A model name that is not in :data:`MODELS`."""


def resolve_models(spec: str) -> list[str]:
    """Model names from ``m1,m2`` or ``all``, deduplicated, in canonical order."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise UnknownModel(f"no model given; choose from: all, {', '.join(MODELS)}")
    if "all" in names:
        return list(MODELS)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise UnknownModel(
            f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known models: {', '.join(MODELS)} (or all)"
        )
    return [name for name in MODELS if name in names]


def run_model(name: str, table: PathTable, options: ModelOptions) -> ModelResult:
    """Run one model by name."""
    try:
        model = MODELS[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None
    return model(table, options)
