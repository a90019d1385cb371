"""BG/NBD purchase model (Fader, Hardie & Lee 2005), fitted by maximum likelihood."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln, hyp2f1

from attribution.analytics.clv_summary import CustomerSummary
from attribution.analytics.mle import fit_log_parameters, single_threaded_dot


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters and the log-likelihood at the optimum."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


def _arrays(
    summaries: Iterable[CustomerSummary],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    rows = list(summaries)
    x = np.array([s.frequency for s in rows], dtype=np.float64)
    t_x = np.array([s.recency for s in rows], dtype=np.float64)
    big_t = np.array([s.T for s in rows], dtype=np.float64)
    return x, t_x, big_t


def log_likelihood(
    r: float, alpha: float, a: float, b: float, x: ArrayLike, t_x: ArrayLike, big_t: ArrayLike
) -> NDArray[np.float64]:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6)."""
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    big_t = np.asarray(big_t, dtype=np.float64)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + big_t)
    repeat = x > 0
    # log(a / (b + x - 1)) is only needed (and only defined) for repeat buyers.
    safe = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(safe) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


class _RowLikelihood:
    """:func:`log_likelihood` of fixed rows, each term evaluated once per distinct value of
    what it depends on, then gathered.

    ``a1 + a2`` depends on x alone (a few dozen values), ``a3`` on (x, T) and ``a4`` on
    (x, t_x): grids of a few thousand cells, where the rows number tens of thousands; only
    ``logaddexp`` needs a row each, and only for repeat buyers (for the others ``a4`` is
    ``-inf``, where ``logaddexp(a3, -inf)`` is ``a3 + log1p(0)``, i.e. ``a3 + 0.0``). Every
    row gets bit for bit the value :func:`log_likelihood` gives it: the same operations on
    the same numbers, only not repeated for equal ones (a BG/NBD fit evaluates it about 5,000
    times).
    """

    def __init__(
        self, x: NDArray[np.float64], t_x: NDArray[np.float64], big_t: NDArray[np.float64]
    ) -> None:
        self.ux, ix = np.unique(x, return_inverse=True)
        self.ut, it = np.unique(t_x, return_inverse=True)
        self.uT, iT = np.unique(big_t, return_inverse=True)
        self.ix = ix
        repeat = x > 0
        self.repeat = np.flatnonzero(repeat)
        self.once = np.flatnonzero(~repeat)
        # Cells of the (x, T) and (x, t_x) grids, flattened, for each row.
        cell_T = ix * len(self.uT) + iT
        self.cell_T_repeat = cell_T[self.repeat]
        self.cell_T_once = cell_T[self.once]
        self.cell_t_repeat = (ix * len(self.ut) + it)[self.repeat]
        # Rows sorted by x (np.unique's rows, as the fit passes them) have the one-time buyers
        # first: then each part is written into its own slice, without two scatters.
        once_first = bool(np.all(~repeat[: len(self.once)]))
        self.repeat_from = len(self.once) if once_first else None

    def __call__(self, r: float, alpha: float, a: float, b: float) -> NDArray[np.float64]:
        ux = self.ux
        a1 = gammaln(r + ux) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + ux) - betaln(a, b)
        a3 = (-(r + ux))[:, None] * np.log(alpha + self.uT)[None, :]
        # log(a / (b + x - 1)) is only needed (and only defined) for repeat buyers.
        safe = np.where(ux > 0, b + ux - 1, 1.0)
        a4 = (np.log(a) - np.log(safe))[:, None] - (r + ux)[:, None] * np.log(alpha + self.ut)[
            None, :
        ]
        a3, a4 = a3.ravel(), a4.ravel()
        mixed = np.empty(len(self.ix), dtype=np.float64)
        if self.repeat_from is not None:
            split = self.repeat_from
            np.add(a3.take(self.cell_T_once), 0.0, out=mixed[:split])
            np.logaddexp(
                a3.take(self.cell_T_repeat), a4.take(self.cell_t_repeat), out=mixed[split:]
            )
        else:
            mixed[self.repeat] = np.logaddexp(a3[self.cell_T_repeat], a4[self.cell_t_repeat])
            mixed[self.once] = a3[self.cell_T_once] + 0.0
        return np.add((a1 + a2).take(self.ix), mixed, out=mixed)


def fit_bgnbd(summaries: Iterable[CustomerSummary]) -> BgNbdParams:
    """Maximum-likelihood BG/NBD fit over log-parameters (Nelder-Mead, then L-BFGS-B)."""
    return fit_bgnbd_arrays(*_arrays(summaries))


def fit_bgnbd_arrays(x: ArrayLike, t_x: ArrayLike, big_t: ArrayLike) -> BgNbdParams:
    """:func:`fit_bgnbd` over arrays of frequency, recency and age."""
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    big_t = np.asarray(big_t, dtype=np.float64)
    if x.size == 0:
        raise ValueError("BG/NBD needs at least one customer summary")
    # Identical (x, t_x, T) rows share a likelihood term: fit on unique rows with weights.
    rows, weights = np.unique(np.stack([x, t_x, big_t], axis=1), axis=0, return_counts=True)
    likelihood = _RowLikelihood(rows[:, 0], rows[:, 1], rows[:, 2])

    def objective(theta: NDArray[np.float64]) -> float:
        r, alpha, a, b = np.exp(theta)
        value = -single_threaded_dot(weights, likelihood(r, alpha, a, b))
        return value if np.isfinite(value) else 1e300

    params, log_likelihood_max = fit_log_parameters(objective, 4)
    r, alpha, a, b = (float(v) for v in params)
    return BgNbdParams(r, alpha, a, b, log_likelihood_max)


def expected_purchases(
    params: BgNbdParams, t: float, x: ArrayLike, t_x: ArrayLike, big_t: ArrayLike
) -> NDArray[np.float64]:
    """Expected purchases in the next ``t`` given (x, t_x, T) (FHL 2005, eq. 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    big_t = np.asarray(big_t, dtype=np.float64)
    z = t / (alpha + big_t + t)
    head = (a + b + x - 1) / (a - 1)
    body = 1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    return np.asarray(head * body * probability_alive(params, x, t_x, big_t), dtype=np.float64)


def probability_alive(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, big_t: ArrayLike
) -> NDArray[np.float64]:
    """Probability that a customer with history (x, t_x, T) has not dropped out."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    big_t = np.asarray(big_t, dtype=np.float64)
    safe = np.where(x > 0, b + x - 1, 1.0)
    odds = np.where(x > 0, a / safe * ((alpha + big_t) / (alpha + t_x)) ** (r + x), 0.0)
    return np.asarray(1.0 / (1.0 + odds), dtype=np.float64)
