"""Lifetime value per customer in the report: expected purchases over the horizon, the
probability of being alive, the expected spend and the forecast, against the lifetimes
package's numbers on CDNOW (tests/data/lifetimes/make.py) and Fader, Hardie and Lee's
published example (1.226 purchases in 39 weeks for x = 2, t_x = 30.43, T = 38.86)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from attribution.analytics.report import ReportOptions, analytics_report
from attribution.analytics.state import fold_events
from attribution.events import AnyEvent, Purchase
from attribution.warehouse import snapshot_rows
from tests.analytics.test_clv import _data_dir

LIFETIMES = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "lifetimes" / "answers.json").read_text()
)
AS_OF = int(datetime(1997, 9, 30, 12, tzinfo=UTC).timestamp() * 1000)


@cache
def cdnow_events() -> tuple[AnyEvent, ...]:
    """The CDNOW sample's calibration purchases (39 weeks) as purchase events."""
    events: list[AnyEvent] = []
    with open(_data_dir() / "CDNOW_sample.txt") as handle:
        for i, line in enumerate(handle):
            _, customer, date, _cds, value = line.split()
            day = datetime.strptime(date, "%Y%m%d").replace(tzinfo=UTC)
            if day <= datetime(1997, 9, 30, tzinfo=UTC):
                events.append(Purchase(event_id=f"p{i}", ts=day, customer_id=str(int(customer)),
                                       order_id=f"o{i}", amount=float(value)))  # fmt: skip
    return tuple(events)


@cache
def clv_of(horizon_weeks: float) -> dict[str, Any]:
    options = ReportOptions(clv_horizon_weeks=horizon_weeks)
    report = analytics_report(
        fold_events(cdnow_events()), {}, [], options, as_of_ms=AS_OF, customer_scores=True
    )
    clv: dict[str, Any] = report["clv"]
    return clv


@pytest.mark.parametrize("horizon", [39, 52])
def test_expected_purchases_and_alive_per_customer_are_lifetimes(horizon: int) -> None:
    per_customer = clv_of(horizon)["per_customer"]
    assert len(per_customer) == 2357
    for customer, want in LIFETIMES["customers"].items():
        got = per_customer[customer]
        # The report's summary is derived from the dated purchases (recency to the day, as
        # the published summary rounds it), and its own fit: agreement to 0.5%.
        assert got["expected_purchases"] == pytest.approx(
            want[f"expected_purchases_{horizon}"], rel=5e-3
        ), customer
        assert got["probability_alive"] == pytest.approx(want["probability_alive"], abs=3e-3)
        if want["frequency"] == 0:
            assert got["probability_alive"] == 1.0  # BG/NBD: no repeat, no chance to drop out


def test_the_published_worked_example() -> None:
    assert clv_of(39)["per_customer"]["1"]["expected_purchases"] == pytest.approx(1.226, abs=2e-3)


def test_expected_spend_and_forecast_per_customer() -> None:
    clv = clv_of(52)
    per_customer = clv["per_customer"]
    for customer, want in LIFETIMES["customers"].items():
        got = per_customer[customer]
        assert got["expected_spend"] == pytest.approx(want["expected_spend"], rel=5e-3), customer
        # The forecast is the expected spend times the expected purchases (no discounting).
        assert got["forecast"] == pytest.approx(
            got["expected_spend"] * got["expected_purchases"], rel=1e-12
        )
    # Per customer it adds up to the segments' forecast revenue.
    total = sum(v["forecast"] for v in per_customer.values())
    segments = sum(s["forecast_revenue"] for s in clv["segments"].values())
    assert total == pytest.approx(segments, rel=1e-12)


def test_the_warehouse_table_carries_the_new_columns() -> None:
    report = {"as_of": "1997-09-30T12:00:00Z", "clv": clv_of(52)}
    rows = {r["customer_id"]: r for r in _clv_rows(report)}
    assert rows["1"]["probability_alive"] == clv_of(52)["per_customer"]["1"]["probability_alive"]
    assert set(rows["1"]) >= {"expected_purchases", "probability_alive", "expected_spend"}


def _clv_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    full = {
        "as_of": report["as_of"],
        "rfm": {"segments": {}, "customers": {}, "movement": None},
        "clv": report["clv"],
        "holdout": {"overall": None, "campaigns": {}, "periods": {}},
        "campaigns": {},
    }
    rows: list[dict[str, Any]] = snapshot_rows(full)["clv_customers"]
    return rows


def test_without_a_fit_the_customer_fields_are_null() -> None:
    events = [e for e in cdnow_events() if e.customer_id in ("1", "2")]  # type: ignore[union-attr]
    report = analytics_report(
        fold_events(events), {}, [], ReportOptions(), as_of_ms=AS_OF, customer_scores=True
    )
    assert report["clv"]["forecast_status"].startswith("not fitted")
    for row in report["clv"]["per_customer"].values():
        assert row["historical"] > 0
        assert row["expected_purchases"] is None and row["probability_alive"] is None
