"""Shapley model: closed form equals enumeration equals the permutation definition."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import numpy as np
import pytest

from attribution.models.options import ModelOptions
from attribution.models.shapley import (
    MAX_ENUMERATION_CHANNELS,
    TooManyChannels,
    channel_set_masks,
    closed_form,
    shapley,
    shapley_from_worth,
    subset_sums,
)
from attribution.paths import PathTable


def random_table(seed: int, n_channels: int, n_paths: int = 40) -> PathTable:
    rng = random.Random(seed)
    names = [f"ch{i}" for i in range(n_channels)]
    paths = [[rng.choice(names) for _ in range(rng.randint(0, 5))] for _ in range(n_paths)]
    conv = [float(rng.choice([0, 1, 1, 2])) for _ in paths]
    value = [round(rng.uniform(1, 200), 2) * c for c in conv]
    nulls = [float(rng.choice([0, 1, 2])) for _ in paths]
    return PathTable.from_paths(paths, conv, value, nulls)


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def permutation_shapley(
    players: list[str], worth: Callable[[frozenset[str]], float]
) -> dict[str, float]:
    """Shapley values straight from the definition: average marginal worth over orderings."""
    phi = dict.fromkeys(players, 0.0)
    for order in itertools.permutations(players):
        before: frozenset[str] = frozenset()
        for player in order:
            phi[player] += worth(before | {player}) - worth(before)
            before = before | {player}
    return {p: v / math.factorial(len(players)) for p, v in phi.items()}


def row_sets(t: PathTable) -> list[frozenset[str]]:
    return [frozenset(t.path(i)) for i in range(t.n_paths)]


def additive_worth(t: PathTable, column: np.ndarray) -> Callable[[frozenset[str]], float]:
    sets = row_sets(t)
    return lambda s: sum(column[i] for i, cs in enumerate(sets) if cs and cs <= s)


def rate_worth(t: PathTable, column: np.ndarray) -> Callable[[frozenset[str]], float]:
    sets = row_sets(t)

    def worth(s: frozenset[str]) -> float:
        inside = [i for i, cs in enumerate(sets) if cs and cs <= s]
        journeys = sum(t.conversions[i] + t.nulls[i] for i in inside)
        return sum(column[i] for i in inside) / journeys if journeys else 0.0

    return worth


@pytest.mark.parametrize("seed", range(8))
def test_closed_form_equals_definition(seed: int) -> None:
    t = random_table(seed, n_channels=1 + seed % 5)
    result = shapley(t, ModelOptions())
    players = sorted({ch for i in range(t.n_paths) for ch in t.path(i)})
    by_conv = permutation_shapley(players, additive_worth(t, t.conversions))
    by_value = permutation_shapley(players, additive_worth(t, t.value))
    for ch in players:
        credit = result.channels.get(ch)
        assert close(credit.conversions if credit else 0.0, by_conv[ch]), ch
        assert close(credit.value if credit else 0.0, by_value[ch]), ch


@pytest.mark.parametrize("seed", range(6))
def test_closed_form_equals_coalition_enumeration(seed: int) -> None:
    t = random_table(100 + seed, n_channels=3 + 2 * seed, n_paths=200)
    names, conv, value = closed_form(t)
    mask_names, rows, masks = channel_set_masks(t)
    assert mask_names == names
    n = len(names)
    phi = shapley_from_worth(subset_sums(masks, t.conversions[rows], n), n)
    phi_value = shapley_from_worth(subset_sums(masks, t.value[rows], n), n)
    np.testing.assert_allclose(phi, conv, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(phi_value, value, rtol=1e-10, atol=1e-10)


def test_subset_sums_by_brute_force() -> None:
    masks = np.array([0b001, 0b011, 0b110, 0b011], dtype=np.int64)
    weights = np.array([1.0, 2.0, 4.0, 8.0])
    v = subset_sums(masks, weights, 3)
    for s in range(8):
        assert v[s] == sum(w for m, w in zip(masks, weights, strict=True) if m & s == m)


@pytest.mark.parametrize("seed", range(6))
def test_conversion_rate_worth_equals_definition(seed: int) -> None:
    t = random_table(200 + seed, n_channels=2 + seed % 4)
    result = shapley(t, ModelOptions(), worth="conversion_rate")
    players = sorted({ch for i in range(t.n_paths) for ch in t.path(i)})
    journeys = sum(t.conversions[i] + t.nulls[i] for i in range(t.n_paths) if t.lengths[i] > 0)
    by_conv = permutation_shapley(players, rate_worth(t, t.conversions))
    by_value = permutation_shapley(players, rate_worth(t, t.value))
    assert set(result.channels) == set(players)
    for ch in players:
        assert close(result.channels[ch].conversions, by_conv[ch] * journeys), ch
        assert close(result.channels[ch].value, by_value[ch] * journeys), ch


@pytest.mark.parametrize("worth", ["conversions", "conversion_rate"])
@pytest.mark.parametrize("seed", range(5))
def test_credits_conserve_conversions_of_journeys_with_touches(worth: str, seed: int) -> None:
    t = random_table(300 + seed, n_channels=6, n_paths=120)
    touched = t.lengths > 0
    result = shapley(t, ModelOptions(), worth=worth)  # type: ignore[arg-type]
    assert close(result.total_conversions(), float(t.conversions[touched].sum()))
    assert close(result.total_value(), float(t.value[touched].sum()))


def test_simple_example_by_hand() -> None:
    # a>b>a: 2 conversions split over {a, b}; b alone: 1; c>a: 1 split over {a, c}.
    t = PathTable.from_paths([["a", "b", "a"], ["b"], ["c", "a"], []], [2, 1, 1, 5])
    got = {ch: c.conversions for ch, c in shapley(t, ModelOptions()).channels.items()}
    assert got == {"a": 1.5, "b": 2.0, "c": 0.5}


def test_enumeration_refuses_too_many_channels() -> None:
    n = MAX_ENUMERATION_CHANNELS + 1
    t = PathTable.from_paths([[f"c{i}"] for i in range(n)], [1.0] * n)
    with pytest.raises(TooManyChannels, match=rf"at most {MAX_ENUMERATION_CHANNELS}.*have {n}"):
        shapley(t, ModelOptions(), worth="conversion_rate")
    # The closed form has no such limit.
    assert len(shapley(t, ModelOptions()).channels) == n


def test_unknown_worth_is_rejected() -> None:
    t = PathTable.from_paths([["a"]], [1.0])
    with pytest.raises(ValueError, match="worth"):
        shapley(t, ModelOptions(), worth="bogus")  # type: ignore[arg-type]


def test_no_touches_no_credit() -> None:
    t = PathTable.from_paths([[]], [3.0])
    assert shapley(t, ModelOptions()).channels == {}
    assert shapley(t, ModelOptions(), worth="conversion_rate").channels == {}


@pytest.mark.parametrize("n_channels", [5, 70])
def test_closed_form_splits_each_journey_over_its_distinct_channels(n_channels: int) -> None:
    # 70 channels exceed one int64 bit mask: the sort-based path must agree too.
    t = random_table(400 + n_channels, n_channels=n_channels, n_paths=300)
    expected_conv: dict[str, float] = {}
    expected_value: dict[str, float] = {}
    for i in range(t.n_paths):
        channels = set(t.path(i))
        for ch in channels:
            expected_conv[ch] = expected_conv.get(ch, 0.0) + t.conversions[i] / len(channels)
            expected_value[ch] = expected_value.get(ch, 0.0) + t.value[i] / len(channels)
    names, conv, value = closed_form(t)
    assert set(names) == set(expected_conv)
    for ch, c, v in zip(names, conv, value, strict=True):
        assert close(c, expected_conv[ch]) and close(v, expected_value[ch]), ch
