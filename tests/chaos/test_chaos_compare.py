"""The chaos harness's comparison: it must name every differing figure, never fail itself."""

from __future__ import annotations

from tests.chaos.chaos import count_differences, differences, leaf_differences


def test_a_differing_flag_is_named_with_its_path_and_values() -> None:
    # CI, 2026-12-07: a differing boolean raised IndexError while the failure was reported.
    stream = {"holdout": {"overall": {"underpowered": True}}, "rows": [1, 2.0]}
    batch = {"holdout": {"overall": {"underpowered": False}}, "rows": [1, 2.5]}
    assert differences(True, False) == "(top): True != False"
    assert leaf_differences(stream, batch) == [
        ".holdout.overall.underpowered: True != False",
        ".rows[1]: 2.0 != 2.5",
    ]
    assert count_differences(stream, batch) == 2


def test_missing_and_extra_keys_and_short_lists_count_once_each() -> None:
    stream = {"a": 1, "extra": 0, "list": [1]}
    batch = {"a": 1, "gone": 2, "list": [1, 2]}
    assert leaf_differences(stream, batch) == [
        ".extra: extra key",
        ".gone: missing",
        ".list: not a list of 2",
    ]
    assert leaf_differences(None, batch) == ["(top): not an object"]
    assert differences(batch, batch) is None and leaf_differences(batch, batch) == []
