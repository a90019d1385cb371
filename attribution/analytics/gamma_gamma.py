"""Gamma-Gamma spend model (Fader & Hardie 2013 note), fitted by maximum likelihood."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

from attribution.analytics.clv_summary import CustomerSummary
from attribution.analytics.mle import fit_log_parameters


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters (p, q, gamma) and the log-likelihood."""

    p: float
    q: float
    gamma: float
    log_likelihood: float


def log_likelihood(
    p: float, q: float, gamma: float, x: ArrayLike, m: ArrayLike
) -> NDArray[np.float64]:
    """Per-customer log-likelihood of mean spend ``m`` over ``x`` repeat transactions."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x),
        dtype=np.float64,
    )


def fit_gamma_gamma(summaries: Iterable[CustomerSummary]) -> GammaGammaParams:
    """Fit on repeat buyers (frequency > 0, monetary > 0) over log-parameters."""
    rows = list(summaries)
    return fit_gamma_gamma_arrays(
        np.array([s.frequency for s in rows], dtype=np.float64),
        np.array([s.monetary for s in rows], dtype=np.float64),
    )


class _RowLikelihood:
    """:func:`log_likelihood` of fixed rows (x > 0, m > 0), every term that depends only on x
    evaluated once per distinct x (a few dozen frequencies for tens of thousands of rows) and
    gathered, ``m * x`` once.

    Every row gets bit for bit the value :func:`log_likelihood` gives it: the same operations
    on the same numbers in the same order, only not repeated for equal ones.
    """

    def __init__(self, x: NDArray[np.float64], m: NDArray[np.float64]) -> None:
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.log_m = np.log(m)
        self.log_ux = np.log(self.ux)
        self.mx = m * x

    def __call__(self, p: float, q: float, gamma: float) -> NDArray[np.float64]:
        ux, ix = self.ux, self.ix
        pux = p * ux
        puxq = pux + q
        # log_likelihood's terms left to right: its first four depend on x alone, so does
        # px * log(x); the last three are per row.
        head = gammaln(puxq) - gammaln(pux) - gammaln(q) + q * np.log(gamma)
        return np.asarray(
            head[ix]
            + (pux - 1)[ix] * self.log_m
            + (pux * self.log_ux)[ix]
            - puxq[ix] * np.log(gamma + self.mx),
            dtype=np.float64,
        )


def fit_gamma_gamma_arrays(frequency: ArrayLike, monetary: ArrayLike) -> GammaGammaParams:
    """:func:`fit_gamma_gamma` over arrays (customers without repeat spend are left out)."""
    frequency = np.asarray(frequency, dtype=np.float64)
    monetary = np.asarray(monetary, dtype=np.float64)
    repeat = (frequency > 0) & (monetary > 0)
    if not repeat.any():
        raise ValueError("Gamma-Gamma needs at least one repeat buyer with positive spend")
    rows = _RowLikelihood(frequency[repeat], monetary[repeat])

    def objective(theta: NDArray[np.float64]) -> float:
        p, q, gamma = np.exp(theta)
        value = -float(np.sum(rows(p, q, gamma)))
        return value if np.isfinite(value) else 1e300

    params, log_likelihood_max = fit_log_parameters(objective, 3)
    p, q, gamma = (float(v) for v in params)
    return GammaGammaParams(p, q, gamma, log_likelihood_max)


def expected_average_spend(
    params: GammaGammaParams, x: ArrayLike, m: ArrayLike
) -> NDArray[np.float64]:
    """Conditional expected spend per transaction: p (gamma + m x) / (p x + q - 1)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    p, q, gamma = params.p, params.q, params.gamma
    return np.asarray(p * (gamma + m * x) / (p * x + q - 1), dtype=np.float64)
