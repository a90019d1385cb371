"""Per-row credits: each row's share adds up to the batch model's result on the same table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.models.options import ModelOptions
from attribution.models.registry import run_model
from attribution.models.row_credits import ADDITIVE_MODELS, row_credits
from attribution.paths import PathTable

CHANNELS = ["a", "b", "direct", "d"]
OPTIONS = ModelOptions(1, None, "direct", 7.0)


@st.composite
def tables(draw: st.DrawFn) -> PathTable:
    rows = draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(CHANNELS), min_size=0, max_size=6),
                st.integers(0, 3),
                st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 2)),
                st.lists(st.floats(0, 60, allow_nan=False), min_size=6, max_size=6),
            ),
            min_size=1,
            max_size=20,
        )
    )
    return PathTable.from_paths(
        [r[0] for r in rows],
        [float(r[1]) for r in rows],
        [r[2] if r[1] else 0.0 for r in rows],
        [0.0] * len(rows),
        [sorted(r[3][: len(r[0])], reverse=True) for r in rows],
    )


@settings(max_examples=150, deadline=None)
@given(tables())
def test_rows_add_up_to_the_model_result(table: PathTable) -> None:
    for model in sorted(ADDITIVE_MODELS):
        per_row = row_credits(model, table, OPTIONS)
        assert len(per_row) == table.n_paths
        summed: dict[str, list[float]] = {}
        for credit in per_row:
            for channel, (conv, value) in credit.items():
                total = summed.setdefault(channel, [0.0, 0.0])
                total[0] += conv
                total[1] += value
        whole = run_model(model, table, OPTIONS).channels
        assert set(summed) == set(whole), model
        for channel, (conv, value) in summed.items():
            assert conv == pytest.approx(whole[channel].conversions, rel=1e-12, abs=1e-9), model
            assert value == pytest.approx(whole[channel].value, rel=1e-12, abs=1e-9), model


@settings(max_examples=60, deadline=None)
@given(tables())
def test_a_row_alone_gets_exactly_its_credit_in_the_batch(table: PathTable) -> None:
    for model in sorted(ADDITIVE_MODELS):
        per_row = row_credits(model, table, OPTIONS)
        for i in range(table.n_paths):
            alone = PathTable.from_paths(
                [table.path(i)],
                [table.conversions[i]],
                [table.value[i]],
                [0.0],
                [list(table.ages_days[table.offsets[i] : table.offsets[i + 1]])]
                if table.ages_days is not None
                else None,
            )
            single = run_model(model, alone, OPTIONS).channels
            assert per_row[i] == {
                ch: pytest.approx((c.conversions, c.value), rel=1e-12, abs=1e-12)
                for ch, c in single.items()
            }, (model, i)


def test_published_examples_per_row() -> None:
    table = PathTable.from_paths(
        [["a", "b", "c", "d"], ["direct"], ["a", "direct"], ["b", "b", "a"]],
        [1.0, 1.0, 1.0, 1.0],
        [50.0, 10.0, 20.0, 30.0],
        ages_days=[[9.0, 6.0, 0.0, 0.0], [0.0], [1.0, 0.0], [3.0, 2.0, 1.0]],
    )
    rows = {model: row_credits(model, table, OPTIONS) for model in ADDITIVE_MODELS}
    assert rows["first_touch"][0] == {"a": (1.0, 50.0)}
    assert rows["last_non_direct"][1] == {"direct": (1.0, 10.0)}
    assert rows["last_non_direct"][2] == {"a": (1.0, 20.0)}
    assert rows["position_based"][2] == {"a": (0.5, 10.0), "direct": (0.5, 10.0)}
    # The time-decay example of the issue: $50 over touches 9, 6, 0 and 0 days old.
    decay = rows["time_decay"][0]
    assert [round(decay[ch][1], 2) for ch in "abcd"] == [6.92, 9.32, 16.88, 16.88]
    linear = rows["linear"][3]
    assert linear == {"b": (pytest.approx(2 / 3), 20.0), "a": (pytest.approx(1 / 3), 10.0)}
    # Shapley splits a journey over its distinct channels, repeats counted once.
    assert rows["shapley"][3] == {"b": (0.5, 15.0), "a": (0.5, 15.0)}


def test_markov_has_no_per_row_credit() -> None:
    table = PathTable.from_paths([["a"]], [1.0])
    with pytest.raises(ValueError, match="not additive"):
        row_credits("markov", table, OPTIONS)
