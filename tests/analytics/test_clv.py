"""Lifetime value: summary step, BG/NBD and Gamma-Gamma fits on CDNOW, historical CLTV."""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from attribution.analytics.bgnbd import expected_purchases, fit_bgnbd, probability_alive
from attribution.analytics.clv import clv_by_segment, forecast_clv, historical_clv
from attribution.analytics.clv_summary import CustomerSummary, summarize, summarize_ledger
from attribution.analytics.gamma_gamma import expected_average_spend, fit_gamma_gamma
from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.rfm import rfm_snapshot
from tests.analytics._events import ms, purchase


def _data_dir() -> Path:
    """The shared test data: $CRM_TEST_DATA_DIR, else a shared/data beside the checkout."""
    here = Path(__file__).resolve()
    configured = os.environ.get("CRM_TEST_DATA_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [here.parents[2] / ".." / "shared" / "data"]
    candidates += [p / "shared" / "data" for p in here.parents]
    for candidate in candidates:
        if (candidate / "CDNOW_sample.txt").is_file():
            return candidate.resolve()
    raise AssertionError(
        f"CDNOW test data not found; looked in: {', '.join(map(str, candidates))}. "
        "Check out the repository beside shared/data, or set CRM_TEST_DATA_DIR to that folder."
    )


def _epoch_ms(day: datetime) -> int:
    return int(day.timestamp() * 1000)


@cache
def _published_summary() -> dict[str, CustomerSummary]:
    with open(_data_dir() / "cdnow_customers_summary.csv", newline="") as handle:
        return {
            row["ID"]: CustomerSummary(
                int(row["frequency"]), float(row["recency"]), float(row["T"]), 0.0
            )
            for row in csv.DictReader(handle)
        }


@cache
def _derived_summary() -> dict[str, CustomerSummary]:
    rows = []
    with open(_data_dir() / "CDNOW_sample.txt") as handle:
        for line in handle:
            _, sample_id, date, _cds, value = line.split()
            day = datetime.strptime(date, "%Y%m%d").replace(tzinfo=UTC)
            rows.append((str(int(sample_id)), _epoch_ms(day), float(value)))
    # Calibration: 39 weeks from 1997-01-01 inclusive, the last observed day is 1997-09-30.
    return summarize(rows, _epoch_ms(datetime(1997, 9, 30, 12, tzinfo=UTC)), unit="weeks")


def _check_published_fit(summaries: list[CustomerSummary]) -> None:
    params = fit_bgnbd(summaries)
    assert params.r == pytest.approx(0.243, abs=0.002)
    assert params.alpha == pytest.approx(4.414, abs=0.002)
    assert params.a == pytest.approx(0.793, abs=0.002)
    assert params.b == pytest.approx(2.426, abs=0.002)
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_bgnbd_fit_on_published_summary() -> None:
    summaries = list(_published_summary().values())
    assert len(summaries) == 2357
    _check_published_fit(summaries)


def test_expected_purchases_matches_fader_hardie_lee() -> None:
    params = fit_bgnbd(list(_published_summary().values()))
    assert float(expected_purchases(params, 39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=1e-3)
    # With no repeat purchase the customer is alive for sure under BG/NBD.
    assert float(probability_alive(params, 0, 0.0, 38.86)) == 1.0
    alive = probability_alive(params, [2, 2], [30.43, 5.0], [38.86, 38.86])
    assert 0 < alive[1] < alive[0] < 1


def test_summary_from_transactions_reproduces_published_summary() -> None:
    published = _published_summary()
    derived = _derived_summary()
    assert set(derived) == set(published)
    for customer, want in published.items():
        got = derived[customer]
        assert got.frequency == want.frequency, customer
        assert got.recency == pytest.approx(want.recency, abs=1e-2), customer
        assert pytest.approx(want.T, abs=1e-2) == got.T, customer
    _check_published_fit(list(derived.values()))


def test_gamma_gamma_on_repeat_buyers() -> None:
    params = fit_gamma_gamma(_derived_summary().values())
    assert params.p == pytest.approx(6.25, abs=0.02)
    assert params.q == pytest.approx(3.74, abs=0.02)
    assert params.gamma == pytest.approx(15.44, abs=0.02)
    # Shrinkage: the expected spend lies between the customer's mean and the population mean.
    population = params.p * params.gamma / (params.q - 1)
    spend = float(expected_average_spend(params, 3, 100.0))
    assert population < spend < 100.0


def test_summary_collapses_same_day_purchases_and_uses_repeat_mean() -> None:
    ledger = PurchaseLedger().add_all(
        [
            purchase("a", 0.1, 10.0),
            purchase("a", 0.5, 5.0),  # first day: one transaction
            purchase("a", 7.2, 20.0),
            purchase("a", 7.9, 10.0),  # day 7: one of 30
            purchase("a", 14.0, 60.0),
            purchase("b", 3.0, 8.0),
        ]
    )
    summary = summarize_ledger(ledger, ms(21.5), unit="days")
    assert summary["a"] == CustomerSummary(frequency=2, recency=14.0, T=21.0, monetary=45.0)
    assert summary["b"] == CustomerSummary(frequency=0, recency=0.0, T=18.0, monetary=0.0)
    weeks = summarize_ledger(ledger, ms(21.5), unit="weeks")
    assert pytest.approx(3.0) == weeks["a"].T
    with pytest.raises(ValueError, match="time unit"):
        summarize_ledger(ledger, ms(21.5), unit="months")  # type: ignore[arg-type]


def test_forecast_clv_undiscounted_equals_spend_times_purchases() -> None:
    summaries = _derived_summary()
    bg = fit_bgnbd(summaries.values())
    gg = fit_gamma_gamma(summaries.values())
    some = {c: summaries[c] for c in ["1", "2", "3", "100"]}
    plain = forecast_clv(bg, gg, some, horizon=52)
    split = forecast_clv(bg, gg, some, horizon=52, steps=12)
    discounted = forecast_clv(bg, gg, some, horizon=52, steps=12, discount_rate=0.01)
    for customer, s in some.items():
        purchases = float(expected_purchases(bg, 52, s.frequency, s.recency, s.T))
        spend = float(expected_average_spend(gg, s.frequency, s.monetary))
        assert plain[customer] == pytest.approx(purchases * spend, rel=1e-12)
        assert split[customer] == pytest.approx(plain[customer], rel=1e-9)
        assert 0 < discounted[customer] < plain[customer]
    with pytest.raises(ValueError, match="horizon"):
        forecast_clv(bg, gg, some, horizon=0)


def test_historical_clv_per_customer_and_segment() -> None:
    ledger = PurchaseLedger().add_all(
        [
            purchase("a", 1, 10.0),
            purchase("a", 5, 30.0),
            purchase("b", 2, 5.0),
            purchase("c", 50, 7.0),
        ]
    )
    clv = historical_clv(ledger, as_of_ms=ms(10))
    assert clv == {"a": 40.0, "b": 5.0}
    snapshot = rfm_snapshot(ledger, ms(10))
    by_segment = clv_by_segment(clv, snapshot)
    assert sum(v.customers for v in by_segment.values()) == 2
    assert np.isclose(sum(v.revenue for v in by_segment.values()), 45.0)
    assert by_segment[snapshot["a"].segment].mean == 40.0


def test_gamma_gamma_rows_are_the_log_likelihood_bit_for_bit() -> None:
    """The fit's per-row terms, computed once per distinct frequency, are
    :func:`log_likelihood`'s values exactly (the fit, and so the report, stays the same)."""
    from attribution.analytics.gamma_gamma import _RowLikelihood, log_likelihood

    rng = np.random.default_rng(5)
    x = rng.integers(1, 40, 5_001).astype(np.float64)
    m = rng.lognormal(3.0, 1.0, 5_001)
    rows = _RowLikelihood(x, m)
    for theta in ([0.0, 0.0, 0.0], [1.3, -0.4, 2.2], [-3.0, 4.0, 7.5], [8.0, 0.1, -6.0]):
        p, q, gamma = np.exp(np.array(theta))
        assert np.array_equal(rows(p, q, gamma), log_likelihood(p, q, gamma, x, m))


def test_bgnbd_rows_are_the_log_likelihood_bit_for_bit() -> None:
    """The fit's per-row terms, computed on grids of distinct x, t_x and T and gathered, are
    :func:`log_likelihood`'s values exactly, one-time buyers (a4 = -inf) included."""
    from attribution.analytics.bgnbd import _RowLikelihood, log_likelihood

    rng = np.random.default_rng(7)
    x = rng.integers(0, 17, 20_000).astype(np.float64)
    big_t = rng.integers(0, 180, 20_000) / 7.0
    t_x = np.where(x > 0, np.minimum(big_t, rng.integers(0, 180, 20_000) / 7.0), 0.0)
    rows = np.unique(np.stack([x, t_x, big_t], axis=1), axis=0)
    x, t_x, big_t = rows[:, 0], rows[:, 1], rows[:, 2]
    assert (x == 0).any() and (x > 0).any()
    # Sorted (the fit's rows: one-time buyers first) and shuffled (any order of rows).
    shuffled = rng.permutation(len(x))
    for order in (np.arange(len(x)), shuffled):
        xs, t_xs, big_ts = x[order], t_x[order], big_t[order]
        likelihood = _RowLikelihood(xs, t_xs, big_ts)
        assert (likelihood.repeat_from is None) == (order is shuffled)
        for theta in ([0.0, 0.0, 0.0, 0.0], [-1.4, 1.5, -0.2, 0.9], [-7.0, 7.0, 4.0, -5.0]):
            r, alpha, a, b = np.exp(np.array(theta))
            expected = log_likelihood(r, alpha, a, b, xs, t_xs, big_ts)
            got = likelihood(r, alpha, a, b)
            assert np.array_equal(got.view(np.int64), expected.view(np.int64))
