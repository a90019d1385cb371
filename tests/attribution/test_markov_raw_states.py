"""Markov ``raw`` states reproduce ChannelAttribution's order-k chain (repeats kept).

Expectations: the issue's hand example (ChannelAttribution 2.2.5 gives a = 0.667, b = 0.333
by simulation; exactly 2/3 and 1/3), and ChannelAttribution 2.2.5's own transition matrices
and removal effects on a 3,000-journey file (tests/data/channelattribution/make.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.io.paths_reader import read_paths
from attribution.models.markov import (
    TransitionCounts,
    count_transitions,
    markov,
    markov_from_counts,
    path_states,
    path_transitions,
    solve_markov,
    state_channels,
)
from attribution.models.options import ModelOptions
from attribution.paths import PathTable

DATA = Path(__file__).resolve().parents[1] / "data" / "channelattribution"
ANSWERS = json.loads((DATA / "answers.json").read_text())


def test_the_issue_example_keeps_repeats_as_channelattribution_does() -> None:
    # Order 2: a>a converts once, b>a>a does not. Raw states: (start)->(a,a)->conv and
    # (start)->(b,a)->(a,a)->null, so P = 1/2; without b the second walk still fails, so b's
    # removal effect is 1/2 and a's is 1: credits 2/3 and 1/3.
    table = PathTable.from_paths([["a", "a"], ["b", "a", "a"]], [1, 0], [10.0, 0.0], [0, 1])
    raw = markov(table, ModelOptions(order=2, markov_states="raw")).channels
    assert math.isclose(raw["a"].conversions, 2 / 3) and math.isclose(raw["b"].conversions, 1 / 3)
    assert math.isclose(raw["a"].value, 20 / 3) and math.isclose(raw["b"].value, 10 / 3)
    assert raw["b"].removal_effect == pytest.approx(0.5)
    merged = markov(table, ModelOptions(order=2)).channels
    assert merged["a"].conversions == 1.0 and merged["b"].conversions == 0.0


@pytest.mark.parametrize(
    ("channels", "order", "states"),
    [
        (["a", "a", "b"], 2, [("a", "a"), ("a", "b")]),
        (["a", "a", "a", "b"], 2, [("a", "a"), ("a", "b")]),
        (["a"], 2, [("a",)]),
        (["a", "b"], 3, [("a", "b")]),
        (["a", "b", "c", "d"], 3, [("a", "b", "c"), ("b", "c", "d")]),
        (["a", "a", "b"], 1, [("a",), ("b",)]),
        ([], 2, []),
    ],
)
def test_raw_states_are_windows_of_k_channels(
    channels: list[str], order: int, states: list[tuple[str, ...]]
) -> None:
    assert path_states(channels, order, "raw") == states


def test_unknown_states_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="merged, raw"):
        path_states(["a"], 2, "collapsed")  # type: ignore[arg-type]


journeys = st.lists(
    st.tuples(
        st.lists(st.sampled_from("abcd"), max_size=7),
        st.integers(0, 2),
        st.floats(0, 100),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(journeys, st.integers(1, 3))
def test_counting_a_table_equals_summing_its_journeys(
    rows: list[tuple[list[str], int, float, int]], order: int
) -> None:
    table = PathTable.from_paths(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] * r[1] for r in rows],
        [r[3] for r in rows],
    )  # fmt: skip
    whole = count_transitions(table, order, "raw")
    summed = TransitionCounts.sum(
        path_transitions(p, c, v * c, n, order, "raw") for p, c, v, n in rows
    )
    assert whole.edges.keys() == summed.edges.keys()
    for key, weight in summed.edges.items():
        assert math.isclose(whole.edges[key], weight, rel_tol=1e-12, abs_tol=1e-9)
    assert whole.conversion_count.keys() == summed.conversion_count.keys()
    if order == 1:
        # One channel per state: keeping repeats changes nothing.
        assert whole.to_json() == count_transitions(table, 1).to_json()


def _named(state: Any) -> Any:
    return state if isinstance(state, str) else tuple(state)


@pytest.mark.parametrize("order", [2, 3])
def test_raw_transition_matrix_is_channelattributions(order: int) -> None:
    table = read_paths(DATA / "paths.csv").table
    solution = solve_markov(count_transitions(table, order, "raw"))
    ours = {
        (_named(a if a.startswith("(") else list(state_channels(a))),
         _named(b if b.startswith("(") else list(state_channels(b)))): p
        for a, b, p, _ in solution.transitions
    }  # fmt: skip
    theirs = {(_named(a), _named(b)): p for a, b, p in ANSWERS[str(order)]["transitions"]}
    assert ours.keys() == theirs.keys()
    for key, probability in theirs.items():
        assert ours[key] == pytest.approx(probability, abs=1e-12), key


def _largest_differences(order: int, states: str) -> tuple[float, float]:
    table = read_paths(DATA / "paths.csv").table
    result = markov_from_counts(
        count_transitions(table, order, states),  # type: ignore[arg-type]
        ModelOptions(order=order, markov_states=states),  # type: ignore[arg-type]
    )
    expected = ANSWERS[str(order)]
    effects = max(
        abs(c.removal_effect - expected["removal_effects"][ch])  # type: ignore[operator]
        for ch, c in result.channels.items()
    )
    credits = max(
        abs(c.conversions / expected["conversions"][ch] - 1) for ch, c in result.channels.items()
    )
    return effects, credits


@pytest.mark.parametrize("order", [2, 3])
def test_raw_removal_effects_and_credits_match_channelattributions_simulation(order: int) -> None:
    # ChannelAttribution simulates 2 million walks: its effects carry about 0.001 of noise.
    effects, credits = _largest_differences(order, "raw")
    assert effects < 0.005 and credits < 0.005
    # The merged states (the default) are a different chain: the comparison can tell.
    effects, credits = _largest_differences(order, "merged")
    assert effects > 0.02 and credits > 0.02
