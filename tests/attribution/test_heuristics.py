"""Heuristic models: published examples, edge cases, and conservation of credit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.models.heuristics import (
    first_touch,
    last_non_direct,
    last_touch,
    linear,
    position_based,
    select_rows,
    time_decay,
)
from attribution.models.options import ModelOptions
from attribution.models.registry import MODELS, UnknownModel, resolve_models, run_model
from attribution.paths import PathTable
from attribution.results import ModelResult

OPTIONS = ModelOptions()
HEURISTICS = ["first_touch", "last_touch", "last_non_direct", "linear", "position_based"]


def credits(result: ModelResult) -> dict[str, tuple[float, float]]:
    return {ch: (c.conversions, c.value) for ch, c in result.channels.items()}


def flat(found: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Credits as one flat mapping, for pytest.approx."""
    return {f"{ch}.{i}": x for ch, pair in found.items() for i, x in enumerate(pair)}


def test_time_decay_published_example_to_the_cent() -> None:
    table = PathTable.from_paths(
        [["email", "social", "search", "push"]], [1], [50.0], ages_days=[[9, 6, 0, 0]]
    )
    result = time_decay(table, ModelOptions(half_life_days=7.0))
    cents = {ch: round(c.value, 2) for ch, c in result.channels.items()}
    assert cents == {"email": 6.92, "social": 9.32, "search": 16.88, "push": 16.88}
    assert math.isclose(result.total_conversions(), 1.0)


def test_time_decay_without_ages_says_it_needs_events() -> None:
    table = PathTable.from_paths([["a", "b"]], [1], [10.0])
    with pytest.raises(ValueError, match="--events"):
        time_decay(table, OPTIONS)


def test_time_decay_very_old_touches_do_not_underflow() -> None:
    table = PathTable.from_paths([["a", "b"]], [1], [10.0], ages_days=[[5000, 3000]])
    result = time_decay(table, ModelOptions(half_life_days=1.0))
    assert credits(result) == {"b": (1.0, 10.0)}


def test_position_based_40_20_40() -> None:
    table = PathTable.from_paths([["a", "b", "c", "d"]], [1], [100.0])
    got = credits(position_based(table, OPTIONS))
    expected = {"a": (0.4, 40.0), "b": (0.1, 10.0), "c": (0.1, 10.0), "d": (0.4, 40.0)}
    assert flat(got) == pytest.approx(flat(expected))


def test_position_based_one_and_two_touches() -> None:
    one = PathTable.from_paths([["a"]], [2], [30.0])
    assert credits(position_based(one, OPTIONS)) == {"a": (2.0, 30.0)}
    two = PathTable.from_paths([["a", "b"]], [1], [30.0])
    assert credits(position_based(two, OPTIONS)) == {"a": (0.5, 15.0), "b": (0.5, 15.0)}
    three = PathTable.from_paths([["a", "b", "a"]], [1], [10.0])
    got = credits(position_based(three, OPTIONS))
    assert flat(got) == pytest.approx(flat({"a": (0.8, 8.0), "b": (0.2, 2.0)}))


def test_linear_counts_repeats() -> None:
    table = PathTable.from_paths([["email", "search", "email", "push"]], [1], [8.0])
    got = credits(linear(table, OPTIONS))
    assert got == {"email": (0.5, 4.0), "search": (0.25, 2.0), "push": (0.25, 2.0)}


def test_first_and_last_touch() -> None:
    table = PathTable.from_paths([["a", "b", "c"], ["c", "a"]], [1, 3], [10.0, 5.0])
    assert credits(first_touch(table, OPTIONS)) == {"a": (1.0, 10.0), "c": (3.0, 5.0)}
    assert credits(last_touch(table, OPTIONS)) == {"c": (1.0, 10.0), "a": (3.0, 5.0)}


def test_last_non_direct_skips_direct_unless_only_direct() -> None:
    table = PathTable.from_paths(
        [["email", "direct", "direct"], ["direct", "direct"], ["direct", "push", "direct"]],
        [1, 1, 1],
        [10.0, 20.0, 40.0],
    )
    got = credits(last_non_direct(table, OPTIONS))
    assert got == {"email": (1.0, 10.0), "direct": (1.0, 20.0), "push": (1.0, 40.0)}


def test_last_non_direct_with_another_direct_name() -> None:
    table = PathTable.from_paths([["email", "(direct)"]], [1], [10.0])
    got = credits(last_non_direct(table, ModelOptions(direct_channel="(direct)")))
    assert got == {"email": (1.0, 10.0)}
    assert credits(last_non_direct(table, OPTIONS)) == {"(direct)": (1.0, 10.0)}


def test_null_and_empty_rows_credit_nothing() -> None:
    table = PathTable.from_paths([["a", "b"], [], ["b"]], [0, 4, 1], [0.0, 9.0, 2.0], [5, 0, 0])
    for name in HEURISTICS:
        result = run_model(name, table, OPTIONS)
        assert list(result.channels) == ["b"], name
        assert result.total_conversions() == 1.0


def test_value_without_conversions_is_still_credited() -> None:
    table = PathTable.from_paths([["a"]], [0], [7.5])
    assert credits(linear(table, OPTIONS)) == {"a": (0.0, 7.5)}


def test_registry_order_and_resolution() -> None:
    assert list(MODELS) == [
        "first_touch",
        "last_touch",
        "last_non_direct",
        "linear",
        "position_based",
        "time_decay",
        "markov",
        "shapley",
    ]
    assert resolve_models("all") == list(MODELS)
    assert resolve_models("linear, first_touch,linear") == ["first_touch", "linear"]
    with pytest.raises(UnknownModel, match="'lineer'.*known models: first_touch"):
        resolve_models("lineer,first_touch")


CHANNELS = ["email", "push", "sms", "direct", "search"]


@st.composite
def tables(draw: st.DrawFn) -> PathTable:
    n = draw(st.integers(1, 30))
    paths = draw(st.lists(st.lists(st.sampled_from(CHANNELS), max_size=7), min_size=n, max_size=n))
    conv = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    value = draw(st.lists(st.floats(0, 1000, allow_nan=False), min_size=n, max_size=n))
    nulls = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    ages = [[draw(st.floats(0, 60, allow_nan=False)) for _ in p] for p in paths]
    return PathTable.from_paths(paths, conv, value, nulls, ages)


@settings(max_examples=150, deadline=None)
@given(tables())
def test_every_heuristic_conserves_conversions_and_value(table: PathTable) -> None:
    with_touches = table.lengths > 0
    expected_conv = table.conversions[with_touches].sum()
    expected_value = table.value[with_touches].sum()
    for name in [*HEURISTICS, "time_decay"]:
        result = run_model(name, table, OPTIONS)
        assert math.isclose(result.total_conversions(), expected_conv, abs_tol=1e-9), name
        assert math.isclose(result.total_value(), expected_value, rel_tol=1e-9, abs_tol=1e-6), name
        for credit in result.channels.values():
            assert credit.conversions >= 0 and credit.value >= 0


@settings(max_examples=60, deadline=None)
@given(tables())
def test_renaming_channels_renames_credits(table: PathTable) -> None:
    renamed = PathTable(
        tuple(f"x-{name}" for name in table.channels),
        table.offsets,
        table.codes,
        table.conversions,
        table.value,
        table.nulls,
        table.ages_days,
    )
    options = ModelOptions(direct_channel="direct")
    renamed_options = ModelOptions(direct_channel="x-direct")
    for name in [*HEURISTICS, "time_decay"]:
        before = credits(run_model(name, table, options))
        after = credits(run_model(name, renamed, renamed_options))
        assert after == {f"x-{ch}": c for ch, c in before.items()}, name


@settings(max_examples=60, deadline=None)
@given(tables())
def test_rows_are_additive(table: PathTable) -> None:
    """Splitting a table in two and summing the credits gives the whole table's credits."""
    half = table.n_paths // 2
    keep = np.arange(table.n_paths) < half

    for name in [*HEURISTICS, "time_decay"]:
        whole = credits(run_model(name, table, OPTIONS))
        parts: dict[str, list[float]] = {}
        for part in (select_rows(table, keep), select_rows(table, ~keep)):
            for ch, (c, v) in credits(run_model(name, part, OPTIONS)).items():
                slot = parts.setdefault(ch, [0.0, 0.0])
                slot[0] += c
                slot[1] += v
        assert set(whole) == set(parts), name
        for ch, (c, v) in whole.items():
            assert math.isclose(c, parts[ch][0], rel_tol=1e-9, abs_tol=1e-9)
            assert math.isclose(v, parts[ch][1], rel_tol=1e-9, abs_tol=1e-6)


def test_unknown_model_in_run_model() -> None:
    table = PathTable.from_paths([["a"]], [1])
    with pytest.raises(UnknownModel, match="nope"):
        run_model("nope", table, OPTIONS)
