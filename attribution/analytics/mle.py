"""Maximum-likelihood search shared by the CLV models (BG/NBD, Gamma-Gamma)."""

from __future__ import annotations

import math
from collections.abc import Callable

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
