"""Incremental revenue and conversion lift of a holdout, with Welch intervals and power.

For one experiment and period, with per-customer revenue (0 for members who did not buy):

* incremental revenue = (revenue_t / n_t - revenue_c / n_c) * n_t;
* its interval: the Welch interval of the difference in mean revenue per customer,
  ``d +- t(0.975, df) * se`` with ``se**2 = s_t**2/n_t + s_c**2/n_c`` and the
  Welch-Satterthwaite df, scaled by n_t;
* conversion lift = rate_t - rate_c (relative: divided by rate_c), Wald interval;
* minimum detectable lift (80% power, two-sided alpha 0.05) of revenue per customer:
  ``(z_0.975 + z_0.8) * s_pooled * sqrt(1/n_t + 1/n_c)``, with the pooled variance of both
  groups (a tiny control group's own variance is too noisy to plan with); for conversion the
  same with the pooled rate ``p * (1 - p)`` as the variance;
* ``underpowered`` when a group has fewer than 2 members or the observed revenue lift is
  smaller than the minimum detectable one: the control group is too small to tell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

# scipy.special's quantile functions are what scipy.stats.norm/t.ppf call; importing
# scipy.stats itself costs about 0.6 s, a tenth of a whole `report`.
from scipy.special import ndtri, stdtrit

from attribution.analytics._common import ALL_TIME, MICROS, from_micros, ratio
from attribution.analytics.holdout import GroupState, HoldoutAggregate, Moments

CONFIDENCE = 0.95
POWER = 0.8


@dataclass(frozen=True)
class HoldoutResult:
    """Lift of one experiment over one period."""

    experiment: str | None
    period: str
    n_treated: int
    n_control: int
    revenue_treated: float
    revenue_control: float
    incremental_revenue: float | None
    incremental_revenue_ci: tuple[float, float] | None
    welch_df: float | None
    conversion_rate_treated: float | None
    conversion_rate_control: float | None
    conversion_lift: float | None
    conversion_lift_relative: float | None
    conversion_lift_ci: tuple[float, float] | None
    min_detectable_lift: float | None  # revenue per treated customer
    min_detectable_incremental_revenue: float | None
    min_detectable_conversion_lift: float | None
    underpowered: bool
    warning: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON object."""
        out = asdict(self)
        for key in ("incremental_revenue_ci", "conversion_lift_ci"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out


def _variance(n: int, moments: Moments) -> float | None:
    """Sample variance of per-customer revenue (members without purchase are 0), exact."""
    if n < 2:
        return None
    exact = Fraction(n * moments.revenue_sq - moments.revenue**2, n * (n - 1))
    return float(exact / (MICROS * MICROS))


def holdout_result(
    treated: GroupState, control: GroupState, experiment: str | None = None, period: str = ALL_TIME
) -> HoldoutResult:
    """Incremental revenue, conversion lift, intervals and power for one period."""
    n_t, n_c = treated.members, control.members
    m_t = treated.periods.get(period, Moments())
    m_c = control.periods.get(period, Moments())
    rev_t, rev_c = from_micros(m_t.revenue), from_micros(m_c.revenue)
    mean_t, mean_c = ratio(rev_t, n_t), ratio(rev_c, n_c)
    diff = None if mean_t is None or mean_c is None else mean_t - mean_c
    incremental = None if diff is None else diff * n_t

    var_t, var_c = _variance(n_t, m_t), _variance(n_c, m_c)
    z_alpha = float(ndtri(1 - (1 - CONFIDENCE) / 2))
    z_power = float(ndtri(POWER))
    ci = df = mde = None
    if diff is not None and var_t is not None and var_c is not None:
        a, b = var_t / n_t, var_c / n_c
        se = math.sqrt(a + b)
        if se == 0:
            ci = (diff * n_t, diff * n_t)
        else:
            df = (a + b) ** 2 / (a * a / (n_t - 1) + b * b / (n_c - 1))
            half = float(stdtrit(df, 1 - (1 - CONFIDENCE) / 2)) * se
            ci = ((diff - half) * n_t, (diff + half) * n_t)
        pooled_var = ((n_t - 1) * var_t + (n_c - 1) * var_c) / (n_t + n_c - 2)
        mde = (z_alpha + z_power) * math.sqrt(pooled_var * (1 / n_t + 1 / n_c))

    rate_t, rate_c = ratio(m_t.buyers, n_t), ratio(m_c.buyers, n_c)
    lift = lift_rel = lift_ci = mde_conv = None
    if rate_t is not None and rate_c is not None:
        lift = rate_t - rate_c
        lift_rel = ratio(lift, rate_c)
        se_rate = math.sqrt(rate_t * (1 - rate_t) / n_t + rate_c * (1 - rate_c) / n_c)
        lift_ci = (lift - z_alpha * se_rate, lift + z_alpha * se_rate)
        pooled = (m_t.buyers + m_c.buyers) / (n_t + n_c)
        mde_conv = (z_alpha + z_power) * math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))

    warning = None
    if n_t < 2 or n_c < 2:
        warning = (
            f"experiment {experiment or '(overall)'}: {n_treated_text(n_t, n_c)}; "
            "each group needs at least 2 customers to estimate the variance"
        )
    elif mde is not None and diff is not None and abs(diff) < mde:
        warning = (
            f"experiment {experiment or '(overall)'}, period {period}: the control group "
            f"({n_c} customers) is too small to detect the observed lift of {diff:.2f} per "
            f"customer; the minimum detectable lift at {POWER:.0%} power is {mde:.2f}"
        )
    return HoldoutResult(
        experiment, period, n_t, n_c, rev_t, rev_c, incremental, ci, df,
        rate_t, rate_c, lift, lift_rel, lift_ci,
        mde, None if mde is None else mde * n_t, mde_conv,
        warning is not None, warning,
    )  # fmt: skip


def n_treated_text(n_t: int, n_c: int) -> str:
    """Human description of the group sizes."""
    return f"{n_t} treated and {n_c} control customers"


def holdout_report(aggregate: HoldoutAggregate) -> list[HoldoutResult]:
    """Results for every experiment and period present (overall experiment and period first)."""
    results = []
    for experiment in aggregate.experiments():
        treated = aggregate.groups.get((experiment, "treatment"), GroupState())
        control = aggregate.groups.get((experiment, "control"), GroupState())
        periods = set(treated.periods) | set(control.periods) | {ALL_TIME}
        for period in sorted(periods, key=lambda p: (p != ALL_TIME, p)):
            results.append(holdout_result(treated, control, experiment, period))
    return results
