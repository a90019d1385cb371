"""The CLV fits' shared search: the same answer whatever the machine's BLAS threads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attribution.analytics.mle import DOT_BLOCK, single_threaded_dot

REPO = Path(__file__).resolve().parents[2]

# More distinct (x, t_x, T) rows than OpenBLAS's 10,000-element limit for a one-thread dot.
FIT_ON_MANY_ROWS = """
import numpy as np
from attribution.analytics.bgnbd import fit_bgnbd_arrays
rng = np.random.default_rng(7)
n = 14_000
big_t = rng.uniform(1.0, 26.0, n)
x = rng.poisson(rng.gamma(1.5, 0.08, n) * big_t).astype(np.float64)
t_x = np.where(x > 0, big_t * rng.uniform(0.0, 1.0, n), 0.0)
with np.errstate(all="ignore"):
    fit = fit_bgnbd_arrays(x, t_x, big_t)
print(repr((fit.r, fit.alpha, fit.a, fit.b, fit.log_likelihood)))
"""


def _fit_with_blas_threads(threads: int) -> str:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", FIT_ON_MANY_ROWS], env=env, capture_output=True, text=True,
        timeout=300, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_the_bgnbd_fit_of_many_rows_is_the_same_on_one_or_two_blas_threads() -> None:
    # np.dot over all rows rounded differently on two threads than on one (a 2-core and a
    # 1-core machine), and the simplex then stopped elsewhere along a flat direction.
    assert _fit_with_blas_threads(1) == _fit_with_blas_threads(2)


@pytest.mark.parametrize("length", [0, 1, 17, DOT_BLOCK, DOT_BLOCK + 1, 3 * DOT_BLOCK + 5])
def test_single_threaded_dot_is_the_dot_product(length: int) -> None:
    rng = np.random.default_rng(length)
    weights = rng.integers(1, 9, length)
    values = rng.standard_normal(length) * 1e3
    got = single_threaded_dot(weights, values)
    assert got == pytest.approx(float(np.dot(weights, values)), rel=1e-12, abs=1e-9)
    if length <= DOT_BLOCK:
        # Short sums, every saved answer's included, are bit for bit what np.dot gives.
        assert got == float(np.dot(weights, values))
