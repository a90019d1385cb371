"""Markov chain attribution of order k: removal effects from the journeys' transition chain.

Counting (:mod:`attribution.models.markov_counts`) is additive and shared with the stream;
solving (:mod:`attribution.models.markov_solve`) is exact. This module turns a solution into
channel credits, the transition matrix and graph, and per-journey credit. See docs/models.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from attribution.models.markov_counts import (
    CONVERSION,
    NULL,
    START,
    TransitionCounts,
    collapse_repeats,
    count_transitions,
    path_states,
    path_transitions,
    state_channels,
    state_key,
)
from attribution.models.markov_solve import MarkovSolution, solve_markov
from attribution.models.options import ModelOptions
from attribution.paths import PathTable
from attribution.results import ChannelCredit, ModelResult

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "CONVERSION",
    "NULL",
    "START",
    "MarkovSolution",
    "TransitionCounts",
    "collapse_repeats",
    "count_transitions",
    "graph_to_json",
    "markov",
    "markov_from_counts",
    "path_credit",
    "path_states",
    "path_transitions",
    "solve_markov",
    "state_channels",
    "state_key",
    "transition_graph",
]


def _shares(effects: Sequence[float], total: float) -> list[float]:
    """``total`` split in proportion to ``effects`` (nothing when they are all zero)."""
    denominator = sum(effects)
    if denominator <= 0:
        return [0.0] * len(effects)
    return [total * e / denominator for e in effects]


def transition_graph(solution: MarkovSolution) -> nx.DiGraph:
    """The chain as a DiGraph: edges carry ``weight``/``probability`` and ``count``."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_node(START, kind="start", channels=[])
    for state in solution.states[1:]:
        graph.add_node(state, kind="channel", channels=list(state_channels(state)))
    graph.add_node(CONVERSION, kind="conversion", channels=[])
    graph.add_node(NULL, kind="null", channels=[])
    for src, dst, probability, count in solution.transitions:
        graph.add_edge(src, dst, weight=probability, probability=probability, count=count)
    return graph


def graph_to_json(graph: nx.DiGraph) -> dict[str, Any]:
    """Node-link JSON of a transition graph (json.dumps-ready)."""
    from networkx.readwrite import json_graph

    data: dict[str, Any] = json_graph.node_link_data(graph, edges="links")
    return data


def markov_from_counts(counts: TransitionCounts, options: ModelOptions) -> ModelResult:
    """The Markov model's result from transition counts (batch and stream share this)."""
    solution = solve_markov(counts, options.max_steps)
    effects = [solution.removal_effects[ch] for ch in solution.channels]
    effects_value = [solution.removal_effects_value[ch] for ch in solution.channels]
    conv = _shares(effects, solution.total_conversions)
    value = _shares(effects_value, solution.total_value)
    channels = {
        ch: ChannelCredit(conv[i], value[i], effects[i], effects_value[i])
        for i, ch in enumerate(solution.channels)
    }
    matrix = [
        {"from": src, "to": dst, "probability": p, "count": w}
        for src, dst, p, w in solution.transitions
    ]
    extras = _Extras(solution)
    extras.update(
        {
            "transition_matrix": matrix,
            "removal_effects": dict(solution.removal_effects),
            "removal_effects_value": dict(solution.removal_effects_value),
            "states": list(solution.states),
        }
    )
    return ModelResult("markov", channels, solution.conversion_probability, extras)


class _Extras(dict[str, Any]):
    """The Markov extras; ``graph`` (a networkx DiGraph) is built on first access.

    Building it costs seconds at a thousand channels and most callers never look at it.
    """

    def __init__(self, solution: MarkovSolution) -> None:
        super().__init__()
        self._solution = solution

    def __missing__(self, key: str) -> Any:
        if key != "graph":
            raise KeyError(key)
        graph = self["graph"] = transition_graph(self._solution)
        return graph


def markov(table: PathTable, options: ModelOptions) -> ModelResult:
    """Markov attribution of order ``options.order`` over the rows of ``table``."""
    counts = count_transitions(table, options.order, options.markov_states)
    return markov_from_counts(counts, options)


def path_credit(
    channels: Sequence[str],
    value: float,
    removal_effects: Mapping[str, float],
    removal_effects_value: Mapping[str, float],
) -> dict[str, tuple[float, float]]:
    """One converting journey's (conversions, value) split over its distinct channels."""
    distinct = list(dict.fromkeys(channels))
    if not distinct:
        return {}
    n = len(distinct)
    effects = [max(0.0, removal_effects.get(ch, 0.0)) for ch in distinct]
    effects_value = [max(0.0, removal_effects_value.get(ch, 0.0)) for ch in distinct]
    conv = _shares(effects, 1.0) if sum(effects) > 0 else [1.0 / n] * n
    val = _shares(effects_value, value) if sum(effects_value) > 0 else [value / n] * n
    return {ch: (conv[i], val[i]) for i, ch in enumerate(distinct)}
