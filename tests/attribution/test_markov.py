"""Markov model: published examples, counting rules, additivity, graph and path credit."""

from __future__ import annotations

import json
import random

import networkx as nx
import numpy as np
import pytest

from attribution.models import markov_counts
from attribution.models.markov import (
    CONVERSION,
    NULL,
    START,
    TransitionCounts,
    count_transitions,
    graph_to_json,
    markov,
    markov_from_counts,
    path_credit,
    path_transitions,
    solve_markov,
    state_channels,
    state_key,
)
from attribution.models.options import ModelOptions
from attribution.paths import PathTable
from attribution.results import ModelResult


def table(
    paths: list[str],
    conv: list[float],
    value: list[float] | None = None,
    nulls: list[float] | None = None,
) -> PathTable:
    return PathTable.from_paths([p.split(">") if p else [] for p in paths], conv, value, nulls)


def credits(result: ModelResult) -> dict[str, tuple[float, float, float | None, float | None]]:
    return {
        ch: (c.conversions, c.value, c.removal_effect, c.removal_effect_value)
        for ch, c in result.channels.items()
    }


def close(a: float | None, b: float, tol: float = 1e-12) -> bool:
    assert a is not None
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# --- published examples ---------------------------------------------------------------------


def test_example_repeats_collapse_a2_b1() -> None:
    t = table(["A>B>A>B>B>A", "A>B>B>A>A", "A>A"], [1, 1, 1])
    result = markov(t, ModelOptions(order=1))
    got = credits(result)
    assert close(got["A"][0], 2.0) and close(got["B"][0], 1.0)
    assert close(got["A"][2], 1.0) and close(got["B"][2], 0.5)
    assert close(result.conversion_probability, 1.0)


def test_example_with_nulls_a2_b15_c05() -> None:
    t = table(["a>b", "a>c"], [3, 1], nulls=[1, 1])
    got = credits(markov(t, ModelOptions()))
    for ch, conv, effect in (("a", 2.0, 1.0), ("b", 1.5, 0.75), ("c", 0.5, 0.25)):
        assert close(got[ch][0], conv), ch
        assert close(got[ch][2], effect), ch


def test_example_value_three_channels() -> None:
    t = table(["C1>C2>C3", "C1", "C2>C3"], [1, 0, 0], [1000, 0, 0], [0, 1, 1])
    result = markov(t, ModelOptions())
    assert close(result.conversion_probability, 1 / 3)
    got = credits(result)
    expected = {"C1": (0.2, 200, 0.5, 0.5), "C2": (0.4, 400, 1, 1), "C3": (0.4, 400, 1, 1)}
    for ch, want in expected.items():
        for g, w in zip(got[ch], want, strict=True):
            assert g is not None and close(g, w), (ch, got[ch], want)


# --- counting rules -------------------------------------------------------------------------


def test_state_keys_cannot_collide_with_separators() -> None:
    weird = ["a>b", 'a", "b', "(start)", "[x]", "a,b"]
    keys = {state_key([w]) for w in weird} | {state_key(["a", "b"]), state_key(["a>b"])}
    assert len(keys) == len(weird) + 1
    assert all(k not in (START, CONVERSION, NULL) for k in keys)
    for w in weird:
        assert state_channels(state_key([w, "z"])) == (w, "z")


def test_path_transitions_rules_order_2() -> None:
    counts = path_transitions(["a", "a", "b", "c", "c"], 2.0, 50.0, 1.0, order=2)
    a, ab, bc = state_key(["a"]), state_key(["a", "b"]), state_key(["b", "c"])
    assert counts.edges == {
        (START, a): 3.0,
        (a, ab): 3.0,
        (ab, bc): 3.0,
        (bc, CONVERSION): 2.0,
        (bc, NULL): 1.0,
    }
    assert counts.conversion_value == {bc: 50.0}
    assert counts.conversion_count == {bc: 2.0}
    assert counts.total_conversions == 2.0 and counts.total_value == 50.0


def test_empty_journey_counts_nothing() -> None:
    assert path_transitions([], 1.0, 10.0, 0.0, 1) == TransitionCounts()


def random_table(rng: random.Random, n_paths: int, n_channels: int) -> PathTable:
    names = [f"c{i}" for i in range(n_channels)]
    paths = [[rng.choice(names) for _ in range(rng.randint(0, 7))] for _ in range(n_paths)]
    conv = [float(rng.choice([0, 0, 1, 2])) for _ in paths]
    value = [round(rng.uniform(0, 300), 2) if c else 0.0 for c in conv]
    nulls = [float(rng.choice([0, 1, 3])) for _ in paths]
    return PathTable.from_paths(paths, conv, value, nulls)


def assert_counts_equal(a: TransitionCounts, b: TransitionCounts) -> None:
    assert a.edges == b.edges  # integer-valued weights: exact
    assert a.conversion_count == b.conversion_count
    assert a.conversion_value.keys() == b.conversion_value.keys()
    for key, amount in a.conversion_value.items():
        assert close(amount, b.conversion_value[key]), key


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_vectorised_counts_equal_sum_of_journeys(order: int, seed: int) -> None:
    rng = random.Random(seed * 10 + order)
    t = random_table(rng, rng.randint(1, 120), rng.randint(1, 6))
    per_journey = TransitionCounts.sum(
        path_transitions(t.path(i), t.conversions[i], t.value[i], t.nulls[i], order)
        for i in range(t.n_paths)
    )
    assert_counts_equal(count_transitions(t, order), per_journey)


@pytest.mark.parametrize("order", [1, 3])
def test_vectorised_counts_without_lookup_tables(
    order: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force the sorting fallbacks that huge id spaces take.
    monkeypatch.setattr(markov_counts, "_RAW_TABLE_LIMIT", 0)
    monkeypatch.setattr(markov_counts, "_DENSE_LIMIT", 0)
    monkeypatch.setattr(markov_counts, "_PAIR_TABLE_LIMIT", 0)
    rng = random.Random(order)
    t = random_table(rng, 100, 5)
    per_journey = TransitionCounts.sum(
        path_transitions(t.path(i), t.conversions[i], t.value[i], t.nulls[i], order)
        for i in range(t.n_paths)
    )
    assert_counts_equal(count_transitions(t, order), per_journey)


@pytest.mark.parametrize("block", [1, 3, 64, 1 << 16])
@pytest.mark.parametrize("seed", range(4))
def test_counts_by_blocks_equal_whole_table_bit_for_bit(
    block: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fractional weights: any change in the order of the additions would show in the last bits.
    monkeypatch.setattr(markov_counts, "_BLOCK_TOUCHES", block)
    rng = random.Random(seed)
    names = [f"c{i}" for i in range(rng.randint(1, 6))]
    paths = [[rng.choice(names) for _ in range(rng.randint(0, 8))] for _ in range(80)]
    weights = [0.0, 0.1, 1.0, 2.7, 1e-17, 3e16, 1 / 3]
    t = PathTable.from_paths(
        paths,
        [rng.choice(weights) for _ in paths],
        [rng.uniform(0, 300) for _ in paths],
        [rng.choice(weights) for _ in paths],
        channels=names,
    )
    for order in (1, 2, 3):
        blocks = markov_counts._count_blocks(t, order)
        whole = markov_counts._count_whole(t, order)
        assert list(blocks.edges.items()) == list(whole.edges.items())
        assert list(blocks.conversion_value.items()) == list(whole.conversion_value.items())
        assert list(blocks.conversion_count.items()) == list(whole.conversion_count.items())


def test_counts_of_a_table_without_touches() -> None:
    t = PathTable.from_paths([[], []], [1.0, 0.0], [5.0, 0.0], [0.0, 2.0])
    assert count_transitions(t, 1) == TransitionCounts()
    assert markov_counts._count_whole(t, 1) == TransitionCounts()


def test_vectorised_counts_when_state_ids_overflow_int64() -> None:
    # 2,001 channels at order 6 have more mixed-radix ids than an int64 holds.
    rng = random.Random(11)
    base = random_table(rng, 150, 6)
    names = [*base.channels, *(f"pad{i}" for i in range(2001 - len(base.channels)))]
    t = PathTable.from_paths(
        [base.path(i) for i in range(base.n_paths)],
        base.conversions,
        base.value,
        base.nulls,
        channels=names,
    )
    per_journey = TransitionCounts.sum(
        path_transitions(t.path(i), t.conversions[i], t.value[i], t.nulls[i], 6)
        for i in range(t.n_paths)
    )
    assert_counts_equal(count_transitions(t, 6), per_journey)


def test_counts_add_subtract_and_json_round_trip() -> None:
    one = path_transitions(["a", "b"], 1.0, 20.0, 0.0, 1)
    two = path_transitions(["b"], 0.0, 0.0, 1.0, 1)
    total = one.merge(two)
    assert total.edges[(START, state_key(["b"]))] == 1.0
    total.add(two, sign=-1)
    assert total == one  # retraction leaves no zero-weight residue
    total.add(one, sign=-1)
    assert total == TransitionCounts()
    back = TransitionCounts.from_json(json.loads(json.dumps(one.merge(two).to_json())))
    assert back == one.merge(two)
    with pytest.raises(ValueError, match="edges"):
        TransitionCounts.from_json({"conversion_value": {}})


def test_solution_independent_of_insertion_order() -> None:
    t = random_table(random.Random(7), 80, 5)
    rows = [
        path_transitions(t.path(i), t.conversions[i], t.value[i], t.nulls[i], 2)
        for i in range(t.n_paths)
    ]
    forward = TransitionCounts.sum(rows)
    shuffled = TransitionCounts()
    for part in reversed(rows):
        shuffled.add(part)
    # Rebuild dicts in reverse insertion order; integer weights make the sums identical.
    shuffled = TransitionCounts.from_parts(
        dict(reversed(list(forward.edges.items()))),
        dict(reversed(list(forward.conversion_value.items()))),
        dict(reversed(list(forward.conversion_count.items()))),
    )
    a, b = solve_markov(forward), solve_markov(shuffled)
    assert a.removal_effects == b.removal_effects
    assert a.removal_effects_value == b.removal_effects_value
    assert a.conversion_probability == b.conversion_probability
    assert a.transitions == b.transitions


# --- solver edge cases ----------------------------------------------------------------------


def test_no_conversions_gives_zero_credit_not_nan() -> None:
    result = markov(table(["a>b", "b"], [0, 0], nulls=[2, 1]), ModelOptions())
    assert result.conversion_probability == 0.0
    for credit in result.channels.values():
        assert credit.conversions == 0.0 and credit.value == 0.0
        assert credit.removal_effect == 0.0
    assert markov(table([], []), ModelOptions()).channels == {}


def test_empty_paths_are_not_counted() -> None:
    result = markov(table(["a", ""], [1, 5], [10, 99]), ModelOptions())
    assert close(result.channels["a"].conversions, 1.0)
    assert close(result.channels["a"].value, 10.0)


def test_max_steps_cuts_long_walks() -> None:
    # start>a>b>c>conversion takes 4 transitions, start>d>conversion 2: with max_steps 3 only
    # d's walks count, so d takes all the credit.
    t = table(["a>b>c", "d"], [1, 1], [10, 30])
    result = markov(t, ModelOptions(max_steps=3))
    assert close(result.conversion_probability, 0.5)
    assert close(result.channels["d"].conversions, 2.0)
    assert close(result.channels["d"].value, 40.0)
    assert all(result.channels[ch].removal_effect == 0.0 for ch in "abc")
    assert close(markov(t, ModelOptions(max_steps=4)).conversion_probability, 1.0)
    assert markov(t, ModelOptions(max_steps=1)).conversion_probability == 0.0
    with pytest.raises(ValueError, match="max_steps"):
        markov(t, ModelOptions(max_steps=0))


def test_order_must_be_positive() -> None:
    with pytest.raises(ValueError, match="order"):
        count_transitions(table(["a"], [1]), 0)


# --- transition matrix and graph -----------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2, 3])
def test_graph_probabilities_sum_to_one_and_json_round_trips(order: int) -> None:
    t = random_table(random.Random(order), 60, 4)
    result = markov(t, ModelOptions(order=order))
    assert "graph" not in result.extras  # built on first access only
    graph: nx.DiGraph = result.extras["graph"]
    for state in result.extras["states"]:
        out = [d["probability"] for _, _, d in graph.out_edges(state, data=True)]
        assert out and close(sum(out), 1.0), state
        assert all(d["weight"] == d["probability"] for _, _, d in graph.out_edges(state, data=True))
    assert graph.out_degree(CONVERSION) == 0 and graph.out_degree(NULL) == 0
    data = json.loads(json.dumps(graph_to_json(graph)))
    again = nx.readwrite.json_graph.node_link_graph(data, edges="links")
    assert set(again.edges) == set(graph.edges)
    matrix = json.loads(json.dumps(result.extras["transition_matrix"]))
    assert {(e["from"], e["to"]) for e in matrix} == set(graph.edges)
    assert all(e["count"] > 0 for e in matrix)


def test_stream_and_batch_share_the_solver() -> None:
    t = random_table(random.Random(3), 50, 4)
    counts = count_transitions(t, 2)
    a = markov(t, ModelOptions(order=2))
    b = markov_from_counts(TransitionCounts.from_json(counts.to_json()), ModelOptions(order=2))
    assert credits(a) == credits(b)


# --- path credit ----------------------------------------------------------------------------


def test_path_credit_splits_by_removal_effects() -> None:
    split = path_credit(["a", "b", "a"], 90.0, {"a": 1.0, "b": 0.5}, {"a": 0.25, "b": 0.5})
    assert split.keys() == {"a", "b"}
    assert close(split["a"][0], 2 / 3) and close(split["b"][0], 1 / 3)
    assert close(split["a"][1], 30.0) and close(split["b"][1], 60.0)


def test_path_credit_equal_split_when_effects_unknown() -> None:
    split = path_credit(["x", "y", "z"], 30.0, {}, {"x": 0.0})
    assert all(close(c, 1 / 3) and close(v, 10.0) for c, v in split.values())
    assert path_credit([], 5.0, {}, {}) == {}
    total = path_credit(["p", "q"], 7.0, {"p": 0.3, "q": 0.9}, {"p": 0.0, "q": 0.0})
    assert close(sum(c for c, _ in total.values()), 1.0)
    assert close(sum(v for _, v in total.values()), 7.0)
    assert np.isfinite([x for pair in total.values() for x in pair]).all()
