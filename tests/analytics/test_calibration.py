"""Incrementality-calibrated credit, on a log small enough to compute by hand."""

from __future__ import annotations

import pytest

from attribution.analytics.holdout import GroupState, Moments
from attribution.analytics.holdout_stats import holdout_result
from attribution.report_build import ReportParameters, build_report
from tests.analytics._events import assign, purchase, touch

PARAMS = ReportParameters(models=("last_touch", "linear"))


def overall_log() -> list:
    """Treated t1-t4, control c1-c2 (overall holdout), all assigned on day 0, in January."""
    return [
        *(assign(c, "treatment") for c in ("t1", "t2", "t3", "t4")),
        *(assign(c, "control") for c in ("c1", "c2")),
        touch("t1", 1, "email"), touch("t1", 2, "display"), purchase("t1", 3, 100.0),
        touch("t2", 1, "push"), purchase("t2", 2, 50.0),
        touch("t3", 1, "display"), purchase("t3", 2, 80.0),
        touch("c1", 1, "display"), purchase("c1", 2, 30.0),
    ]  # fmt: skip


def test_factor_and_calibrated_credit_of_the_overall_holdout() -> None:
    report = build_report(overall_log(), PARAMS).report
    row = report["calibration"]["experiments"]["(overall)"]["periods"]["all"]
    # Holdout: treated spend 230 over 4, control 30 over 2: (57.5 - 15) * 4 = 170.
    assert row["incremental_revenue"] == pytest.approx(170.0)
    expected_ci = holdout_result(
        GroupState(4, {"all": Moments(230 * 10**6, (100**2 + 50**2 + 80**2) * 10**12, 3)}),
        GroupState(2, {"all": Moments(30 * 10**6, 30**2 * 10**12, 1)}),
    ).incremental_revenue_ci
    assert row["incremental_revenue_ci"] == pytest.approx(list(expected_ci))
    last = row["models"]["last_touch"]
    # Last touch credits CRM (email, push) in the treated group: t2's 50 only (t1 ends on display).
    assert last["credited_revenue"] == pytest.approx(50.0)
    assert last["incrementality_factor"] == pytest.approx(170.0 / 50.0)
    assert last["incrementality_factor_ci"] == pytest.approx([x / 50.0 for x in expected_ci])
    assert last["channels"] == {"push": {"credited": 50.0, "calibrated": pytest.approx(170.0)}}
    linear = row["models"]["linear"]
    # Linear: t1's email gets half of 100, t2's push all of 50: 100 credited.
    assert linear["credited_revenue"] == pytest.approx(100.0)
    assert linear["incrementality_factor"] == pytest.approx(1.7)
    assert linear["channels"]["email"]["calibrated"] == pytest.approx(50.0 * 1.7)
    assert linear["calibrated_revenue"] == pytest.approx(170.0)
    # Two control customers: the holdout is underpowered, and says so.
    assert row["underpowered"] and "control group" in (row["warning"] or "")
    assert report["calibration"]["crm_channels"] == ["email", "push", "sms", "whatsapp"]


def test_a_campaign_holdout_counts_its_campaign_from_the_assignment_on() -> None:
    events = [
        *(assign(c, "treatment", 5, campaign="spring") for c in ("a", "b", "d")),
        assign("e", "control", 5, campaign="spring"),
        assign("f", "control", 5, campaign="spring"),
        touch("a", 1, "email", campaign="spring"), purchase("a", 2, 40.0),  # before assignment
        touch("a", 6, "email", campaign="spring"), purchase("a", 7, 60.0),
        touch("b", 6, "sms", campaign="other"), purchase("b", 7, 20.0),  # not the campaign
        touch("d", 6, "sms", campaign="spring"), touch("d", 7, "push"), purchase("d", 8, 10.0),
        purchase("e", 7, 5.0),
    ]  # fmt: skip
    report = build_report(events, PARAMS).report
    spring = report["calibration"]["experiments"]["spring"]
    assert spring["scope"] == "campaign spring"
    row = spring["periods"]["all"]
    # Treated a, b, d spend 60 + 20 + 10 from day 5; control 5 over 2: (30 - 2.5) * 3 = 82.5.
    assert row["incremental_revenue"] == pytest.approx(82.5)
    linear = row["models"]["linear"]
    # The campaign's own touches: a's 60 (one touch), d's sms half of 10.
    assert linear["credited_revenue"] == pytest.approx(65.0)
    assert linear["channels"]["email"]["credited"] == pytest.approx(60.0)
    assert linear["incrementality_factor"] == pytest.approx(82.5 / 65.0)
    last = row["models"]["last_touch"]
    assert last["credited_revenue"] == pytest.approx(60.0)  # d's purchase closes on push


def test_periods_and_missing_credit() -> None:
    events = [
        *overall_log(),
        purchase("t4", 40, 25.0),  # February, no touch: nothing credited
    ]
    report = build_report(events, PARAMS).report
    periods = report["calibration"]["experiments"]["(overall)"]["periods"]
    assert set(periods) == {"all", "2024-01", "2024-02"}
    february = periods["2024-02"]
    assert february["models"]["linear"]["credited_revenue"] == 0.0
    assert february["models"]["linear"]["incrementality_factor"] is None
    assert february["warning"] is not None
    january = periods["2024-01"]["models"]["linear"]
    assert january["credited_revenue"] == pytest.approx(100.0)
