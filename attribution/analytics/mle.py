"""Maximum-likelihood search shared by the CLV models (BG/NBD, Gamma-Gamma)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

# Parameters are searched in log space within [1e-8, 1e8]: an unidentified model (too little
# history) stops at an edge instead of running off to 1e-300, and the report flags it.
LOG_BOUNDS = (math.log(1e-8), math.log(1e8))


# Nelder-Mead evaluations allowed after the first gradient search. On a well-identified model
# it converges in a few hundred; on a flat ridge (a short log) it would crawl for 100,000+
# evaluations (8 s on 1,660 customers) without changing the verdict.
SIMPLEX_EVALUATIONS = 5_000


# OpenBLAS splits a dot product of more than 10,000 elements across its threads, and the
# split changes the rounding: the same likelihood summed on a 2-core and a 1-core machine
# differs in its last bits, which sends the simplex elsewhere along a flat ridge (at 60,000
# customers, BG/NBD's a and b came out 3% apart). Its idle threads also spin between the
# thousands of calls a fit makes, taking a core from the worker's agent (5 ms per evaluation
# against 0.8 ms on one thread, 55,000 customers). Blocks this long are summed on one
# thread, in order, whatever the core count (another CPU's BLAS kernel may still round its
# blocks differently: the same machine type gives the same fit).
DOT_BLOCK = 8_192


def single_threaded_dot(weights: NDArray[Any], values: NDArray[np.float64]) -> float:
    """``np.dot(weights, values)`` block by block on one thread: the same on any core count.

    Up to ``DOT_BLOCK`` elements it is exactly ``float(np.dot(weights, values))``.
    """
    if len(values) <= DOT_BLOCK:
        return float(np.dot(weights, values))
    total = 0.0
    for start in range(0, len(values), DOT_BLOCK):
        stop = start + DOT_BLOCK
        total += float(np.dot(weights[start:stop], values[start:stop]))
    return total


def fit_log_parameters(
    negative_log_likelihood: Callable[[NDArray[np.float64]], float], count: int
) -> tuple[NDArray[np.float64], float]:
    """(parameters, maximum log-likelihood): L-BFGS-B, Nelder-Mead from there, L-BFGS-B again."""
    bounds = [LOG_BOUNDS] * count
    gradient = {"method": "L-BFGS-B", "bounds": bounds, "options": {"gtol": 1e-10}}
    # The gradient search runs straight up a ridge to its bound; the simplex then escapes the
    # saddles and kinks that stop it, and a last gradient search polishes the simplex's optimum.
    first = minimize(negative_log_likelihood, np.zeros(count), **gradient)
    simplex = minimize(
        negative_log_likelihood,
        first.x,
        method="Nelder-Mead",
        bounds=bounds,
        options={"maxfev": SIMPLEX_EVALUATIONS, "xatol": 1e-10, "fatol": 1e-10},
    )
    polished = minimize(negative_log_likelihood, simplex.x, **gradient)
    best = min((first, simplex, polished), key=lambda result: float(result.fun))
    return np.exp(best.x), -float(best.fun)
