"""The notebook API, cell by cell: run it as a script, or paste the cells into Jupyter.

    python docs/examples/notebook.py [events.jsonl]

Without an argument it generates a small synthetic CRM log first. Every step prints what a
notebook cell would show.
"""

# %% An event log: a file, or any pandas / Polars DataFrame or Arrow table of events.
import sys
import tempfile
from pathlib import Path

import pandas as pd
import polars as pl

import attribution

if len(sys.argv) > 1:
    log = Path(sys.argv[1])
else:
    from crm_attribution.generator import GeneratorConfig, generate

    log = Path(tempfile.mkdtemp()) / "events.jsonl"
    config = GeneratorConfig(customers=300, days=60)
    log.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")

# %% Attribution under every model: a short summary, then a tidy DataFrame.
credits = attribution.attribute(log)
print(credits)
table = credits.to_pandas()
print(table.pivot(index="channel", columns="model", values="value").round(2))

# %% The same from a DataFrame, a few models, a shorter lookback.
events = pd.read_json(log, lines=True, dtype=False)
short = attribution.attribute(events, models=["last_touch", "linear", "markov"], lookback_days=7)
print(short.to_polars().filter(pl.col("model") == "markov").sort("value", descending=True))

# %% The customer analytics report: RFM, lifetime value, holdout, campaigns.
report = attribution.report(log, compare_days=14)
print(report)
print(report.to_pandas("segments")[["segment", "customers", "historical_mean", "forecast_mean"]])
print(report.to_polars("holdout").select("experiment", "period", "incremental_revenue"))
campaigns = report.to_pandas("campaigns")
print(
    campaigns[campaigns.model == "last_touch"].nlargest(5, "attributed_revenue")[
        ["campaign", "cost", "attributed_revenue", "roi", "cac"]
    ]
)

# %% Everything is also plain JSON, as the command line prints it.
print(sorted(report.to_json()))
