"""The dashboard's data object: figures on top of the JSON, and undefined ones as None."""

from __future__ import annotations

import pytest

from crm_attribution.dashboard.data import dashboard_data, model_comparison, rfm_grid, state_label


def test_change_against_last_touch() -> None:
    attribution = {
        "totals": {"conversions": 3},
        "models": {
            "last_touch": {"channels": {"email": {"conversions": 2.0, "value": 20.0}}},
            "linear": {
                "channels": {
                    "email": {"conversions": 1.5, "value": 15.0},
                    "sms": {"conversions": 1.5, "value": 15.0},
                }
            },
        },
    }
    view = model_comparison(attribution)
    assert view["channels"] == ["email", "sms"]
    assert view["change_vs_baseline"]["linear"] == {"email": -0.25, "sms": None}
    assert view["conversions"]["last_touch"]["sms"] == 0.0
    without = model_comparison({"models": {"linear": attribution["models"]["linear"]}})
    assert without["change_vs_baseline"] is None


def test_rfm_grid_counts_recency_by_frequency() -> None:
    grid = rfm_grid({"a": {"r": 5, "f": 1}, "b": {"r": 5, "f": 1}, "c": {"r": 1, "f": 4}})
    assert grid["5"]["1"] == 2 and grid["1"]["4"] == 1
    assert sum(sum(row.values()) for row in grid.values()) == 3


def test_markov_states_read_as_paths() -> None:
    assert state_label('["email","push"]') == "email > push"
    assert state_label("(start)") == "(start)"


def test_views_without_input_are_none() -> None:
    data = dashboard_data()
    assert data["models"] is None and data["rfm"] is None and data["markov"] is None
    assert data["generated_at"].endswith("Z")


def test_model_comparison_carries_the_intervals() -> None:
    from crm_attribution.dashboard.data import model_comparison

    attribution = {
        "confidence": {"level": 0.95, "resamples": 10, "seed": 0, "method": "m", "customers": 3},
        "models": {
            "linear": {"channels": {"a": {"conversions": 2.0, "value": 5.0,
                                          "ci": {"conversions": [1.0, 3.0], "value": [2.0, 8.0]}}}},
        },
    }  # fmt: skip
    view = model_comparison(attribution)
    assert view["intervals"]["value"]["linear"]["a"] == [2.0, 8.0]
    assert view["intervals"]["conversions"]["linear"]["a"] == [1.0, 3.0]
    assert model_comparison({"models": attribution["models"]})["intervals"] is None


def test_holdout_view_carries_the_calibration_rows() -> None:
    from attribution.report_build import ReportParameters, build_report
    from crm_attribution.dashboard.data import holdout_view
    from tests.analytics.test_calibration import overall_log

    report = build_report(overall_log(), ReportParameters(models=("linear",))).report
    rows = holdout_view(report)["calibration"]
    overall = [r for r in rows if r["period"] == "all"]
    assert len(overall) == 1 and overall[0]["model"] == "linear"
    assert overall[0]["incrementality_factor"] == pytest.approx(1.7)
    assert overall[0]["underpowered"] is True
