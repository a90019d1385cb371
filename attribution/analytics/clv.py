"""Customer lifetime value: historical (revenue to date) and forecast (BG/NBD x Gamma-Gamma)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from attribution.analytics.bgnbd import BgNbdParams, expected_purchases
from attribution.analytics.clv_summary import CustomerSummary
from attribution.analytics.gamma_gamma import GammaGammaParams, expected_average_spend
from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.movement import NONE
from attribution.analytics.rfm import Snapshot


@dataclass(frozen=True)
class SegmentValue:
    """Historical value of one segment's customers."""

    customers: int
    revenue: float
    mean: float


def historical_clv(ledger: PurchaseLedger, as_of_ms: int | None = None) -> dict[str, float]:
    """Revenue to date (up to ``as_of_ms`` inclusive) of every customer with a purchase."""
    out: dict[str, float] = {}
    for customer, state in ledger:
        if any(as_of_ms is None or r.ts_ms <= as_of_ms for r in state.purchases.values()):
            out[customer] = state.revenue(until_ms=as_of_ms)
    return out


def clv_by_segment(clv: Mapping[str, float], snapshot: Snapshot) -> dict[str, SegmentValue]:
    """Total and mean value per RFM segment; customers absent from the snapshot: ``(none)``."""
    groups: dict[str, list[float]] = {}
    for customer, value in clv.items():
        entry = snapshot.get(customer)
        groups.setdefault(entry.segment if entry else NONE, []).append(value)
    return {
        segment: SegmentValue(len(values), math.fsum(values), math.fsum(values) / len(values))
        for segment, values in sorted(groups.items())
    }


def forecast_clv(
    bgnbd: BgNbdParams,
    spend: GammaGammaParams,
    summaries: Mapping[str, CustomerSummary],
    horizon: float,
    steps: int = 1,
    discount_rate: float = 0.0,
    margin: float = 1.0,
) -> dict[str, float]:
    """Expected value of each customer over ``horizon`` (in the summaries' time unit).

    The horizon is cut into ``steps`` equal periods; the purchases expected in period k are
    valued at the Gamma-Gamma expected spend and discounted by ``(1 + discount_rate) ** k``.
    With no discount this is ``margin * spend * E[purchases in horizon]``.
    """
    customers = sorted(summaries)
    total = forecast_clv_arrays(
        bgnbd,
        spend,
        np.array([summaries[c].frequency for c in customers], dtype=np.float64),
        np.array([summaries[c].recency for c in customers], dtype=np.float64),
        np.array([summaries[c].T for c in customers], dtype=np.float64),
        np.array([summaries[c].monetary for c in customers], dtype=np.float64),
        horizon,
        steps,
        discount_rate,
        margin,
    )
    return {c: float(v) for c, v in zip(customers, total, strict=True)}


def forecast_clv_arrays(
    bgnbd: BgNbdParams,
    spend: GammaGammaParams,
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    big_t: NDArray[np.float64],
    m: NDArray[np.float64],
    horizon: float,
    steps: int = 1,
    discount_rate: float = 0.0,
    margin: float = 1.0,
) -> NDArray[np.float64]:
    """:func:`forecast_clv` over arrays of frequency, recency, age and repeat spend."""
    if horizon <= 0 or steps < 1:
        raise ValueError(f"CLV horizon {horizon} must be positive and steps {steps} at least 1")
    if discount_rate <= -1:
        raise ValueError(f"CLV discount_rate {discount_rate} must be greater than -1")
    # Customers without repeat purchases carry no spend observation: the population mean
    # spend p*gamma/(q-1) is the Gamma-Gamma expectation for x = 0.
    avg_spend = expected_average_spend(spend, x, np.where(x > 0, m, 0.0))
    value = np.zeros(len(x))
    previous = np.zeros(len(x))
    for k in range(1, steps + 1):
        cumulative = expected_purchases(bgnbd, horizon * k / steps, x, t_x, big_t)
        value += (cumulative - previous) / (1.0 + discount_rate) ** k
        previous = cumulative
    return np.asarray(margin * avg_spend * value, dtype=np.float64)
