"""The lifetimes package's per-customer CDNOW numbers, for the report's CLV per customer.

Run once (lifetimes 0.11.3 installs beside the venv: ``pip install --target /tmp/lt
lifetimes==0.11.3 autograd dill --no-deps``, then ``PYTHONPATH=/tmp/lt``):

    PYTHONPATH=/tmp/lt .venv/bin/python tests/data/lifetimes/make.py /path/to/shared/data

It fits BG/NBD (``BetaGeoFitter``, no penalty) on the published 39-week CDNOW summary
(shared/data/cdnow_customers_summary.csv) and Gamma-Gamma (``GammaGammaFitter``) on the
lifetimes data set with monetary values, and writes ``answers.json``: the fitted parameters
and, for a few customers, the expected purchases in the next 39 and 52 weeks
(``conditional_expected_number_of_purchases_up_to_time``), the probability of being alive
(``conditional_probability_alive``) and the expected spend per purchase
(``conditional_expected_average_profit``). tests/analytics/test_clv_customers.py reads it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# Customer 1 is Fader, Hardie and Lee's worked example (x = 2, t_x = 30.43, T = 38.86).
CUSTOMERS = (1, 2, 3, 18, 100, 500, 1516, 2000, 2357)


def main(shared: Path) -> None:
    """Write answers.json beside this file."""
    import lifetimes
    import pandas as pd
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    summary = pd.read_csv(shared / "cdnow_customers_summary.csv").set_index("ID")
    bgf = lifetimes.BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    money = load_cdnow_summary_data_with_monetary_value()
    repeat = money[money["frequency"] > 0]
    ggf = lifetimes.GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["frequency"], repeat["monetary_value"])

    def one(value: object) -> float:
        return float(np.asarray(value).ravel()[0])

    customers = {}
    for customer in CUSTOMERS:
        x, t_x, big_t = (float(summary.loc[customer, k]) for k in ("frequency", "recency", "T"))
        m = float(money.loc[customer, "monetary_value"])
        customers[str(customer)] = {
            "frequency": x,
            "recency": t_x,
            "T": big_t,
            "monetary": m,
            "expected_purchases_39": one(
                bgf.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, big_t)
            ),
            "expected_purchases_52": one(
                bgf.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, big_t)
            ),
            "probability_alive": one(bgf.conditional_probability_alive(x, t_x, big_t)),
            "expected_spend": one(ggf.conditional_expected_average_profit(x, m)),
        }
    answers = {
        "lifetimes": lifetimes.__version__,
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
        "customers": customers,
    }
    (HERE / "answers.json").write_text(json.dumps(answers, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
