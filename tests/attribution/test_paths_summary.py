"""Top paths, path lengths and time lags of a path table."""

from __future__ import annotations

import pytest

from attribution.paths import PathTable
from attribution.paths_summary import (
    LAG_BOUNDS_DAYS,
    lag_distribution,
    length_distribution,
    paths_summary,
    top_paths,
)


def table(with_ages: bool = True) -> PathTable:
    paths = [("email",), ("email", "push"), ("email",), ("sms", "email", "push"), ("push",), ()]
    conversions = [1, 1, 1, 1, 0, 1]
    value = [10.0, 20.0, 30.0, 5.0, 0.0, 7.0]
    nulls = [0, 0, 0, 0, 1, 0]
    ages = [(0.5,), (10.0, 1.0), (2.5,), (40.0, 3.0, 0.1), (0.0,), ()]
    return PathTable.from_paths(paths, conversions, value, nulls, ages if with_ages else None)


def test_top_paths_group_identical_paths_by_conversions() -> None:
    rows = top_paths(table())
    assert [r.path for r in rows] == [
        ("email",),
        ("email", "push"),
        ("sms", "email", "push"),
        ("push",),
    ]
    email = rows[0]
    assert (email.journeys, email.conversions, email.value) == (2, 2.0, 40.0)
    assert rows[-1].nulls == 1.0 and rows[-1].conversions == 0.0
    assert len(top_paths(table(), limit=2)) == 2


def test_lengths_count_converting_paths_only() -> None:
    lengths = {row["touches"]: row for row in length_distribution(table())}
    assert set(lengths) == {"1", "2", "3"}
    assert lengths["1"]["conversions"] == 2.0 and lengths["1"]["value"] == 40.0
    long = PathTable.from_paths([("a",) * 40], [1.0], [3.0])
    assert length_distribution(long) == [{"touches": "31+", "conversions": 1.0, "value": 3.0}]


def test_time_lag_is_the_first_touch_age() -> None:
    lags = {row["lag"]: row["conversions"] for row in lag_distribution(table()) or []}
    assert len(lags) == len(LAG_BOUNDS_DAYS) + 1
    assert lags["0-1 days"] == 1.0  # email at 0.5 days
    assert lags["2-3 days"] == 1.0  # email at 2.5 days
    assert lags["7-14 days"] == 1.0  # email > push, first touch 10 days before
    assert lags["30+ days"] == 1.0  # sms > email > push, first touch 40 days before
    assert sum(lags.values()) == 4.0  # the null path and the touchless conversion are out


def test_path_files_have_no_time_lag() -> None:
    assert lag_distribution(table(with_ages=False)) is None
    summary = paths_summary(table(with_ages=False))
    assert summary["time_lag"] is None
    assert sum(r["conversions"] for r in summary["lengths"]) == pytest.approx(4.0)
