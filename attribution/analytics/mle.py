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


def fit_log_parameters(
    negative_log_likelihood: Callable[[NDArray[np.float64]], float], count: int
) -> tuple[NDArray[np.float64], float]:
    """(parameters, maximum log-likelihood): Nelder-Mead, then L-BFGS-B from its optimum."""
    bounds = [LOG_BOUNDS] * count
    coarse = minimize(
        negative_log_likelihood,
        np.zeros(count),
        method="Nelder-Mead",
        bounds=bounds,
        options={"maxiter": 20_000, "xatol": 1e-10, "fatol": 1e-10},
    )
    fine = minimize(
        negative_log_likelihood,
        coarse.x,
        method="L-BFGS-B",
        bounds=bounds,
        options={"gtol": 1e-10},
    )
    best = fine if fine.fun <= coarse.fun else coarse
    return np.exp(best.x), -float(best.fun)
