"""Incrementality-calibrated credit: the holdout's incremental revenue beside each model's
credited CRM revenue, per experiment and period.

An attribution model shares out revenue that was going to happen in part anyway; a holdout
measures what the CRM program added. For one experiment (the overall holdout, or a campaign's)
and one period:

* ``incremental_revenue`` and its 95% Welch interval come from the holdout (holdout_stats.py);
* ``credited_revenue`` of a model is the value it credits, in the same experiment's treatment
  group (customers in it, purchases from their assignment on, as the holdout counts them), to
  the touches the experiment is about: every CRM channel for the overall holdout, the
  campaign's own touches for a campaign's holdout, by the period of the purchase;
* ``incrementality_factor = incremental_revenue / credited_revenue`` (its interval: the
  holdout interval over the same credited revenue, which is taken as known), and the
  ``calibrated`` credit of each channel is its credited revenue times the factor: they add up
  to the incremental revenue, shared as the model shares the credit.

A factor of 0.4 says that 40% of what the model credits to CRM would not have happened without
it. An underpowered holdout (too few control customers to detect the observed lift) is flagged
with the holdout's own warning: its factor's interval is wide, and may include 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from attribution.analytics._common import ALL_TIME, ratio
from attribution.analytics.converted import ConvertedTable, TouchWeights
from attribution.analytics.holdout import hash_group
from attribution.analytics.holdout_stats import HoldoutResult
from attribution.analytics.inputs import AnalyticsInputs, period_labels

OVERALL = "(overall)"


def _treated(inputs: AnalyticsInputs) -> pl.DataFrame:
    """Treatment-group members: customer_id, experiment (None: overall), since (ms or null)."""
    if inputs.hashing is not None:
        customers = inputs.seen.to_list()
        treated = [
            c
            for c in customers
            if hash_group(c, inputs.hashing.salt, inputs.hashing.control_share) == "treatment"
        ]
        return pl.DataFrame(
            {
                "customer_id": pl.Series(treated, dtype=pl.String),
                "experiment": pl.Series([None] * len(treated), dtype=pl.String),
                "since": pl.Series([None] * len(treated), dtype=pl.Int64),
            }
        )
    return inputs.assignments.filter(pl.col("group") == "treatment").select(
        "customer_id", "experiment", since="ts_ms"
    )


def _touches(done: ConvertedTable, granularity: Any, time_zone: str) -> pl.DataFrame:
    """One row per touch of a converted journey: customer, channel, campaign, period, ts."""
    journey = done.journey_of_touch()
    customers = np.array(done.customers, dtype=object)
    channels = np.array(done.channels, dtype=object)
    campaigns = np.array([*done.campaigns, None], dtype=object)
    frame = pl.DataFrame(
        {
            "touch": pl.Series(np.arange(len(journey)), dtype=pl.Int64),
            "customer_id": pl.Series(customers[done.customer[journey]].tolist(), dtype=pl.String),
            "channel": pl.Series(channels[done.channel].tolist(), dtype=pl.String),
            "campaign": pl.Series(campaigns[done.campaign].tolist(), dtype=pl.String),
            "ts_ms": pl.Series(done.ts_ms[journey], dtype=pl.Int64),
            "value": pl.Series(done.value[journey], dtype=pl.Float64),
        }
    )
    labels = [pl.lit(ALL_TIME).alias("period")]
    if granularity != "all":
        labels = [period_labels(pl.col("ts_ms"), granularity, time_zone).alias("period")]
    return frame.with_columns(*labels)


Credited = dict[tuple[str, str], dict[str, float]]


def _credited(counted: pl.DataFrame, weights: Mapping[str, TouchWeights]) -> Credited:
    """(period, model) -> channel -> credited value; ``all`` for all periods."""
    rows = counted["touch"].to_numpy()
    value = counted["value"].to_numpy()
    credits = counted.select("period", "channel").with_columns(
        **{f"m_{i}": pl.Series(w.value[rows] * value) for i, w in enumerate(weights.values())}
    )
    names = list(weights)
    out: Credited = {}
    sums = [pl.col(f"m_{i}").sum() for i in range(len(names))]
    by_period = credits.group_by("period", "channel").agg(sums)
    all_time = credits.group_by("channel").agg(sums).with_columns(period=pl.lit(ALL_TIME))
    for frame in (by_period, all_time.select(by_period.columns)):
        for row in frame.iter_rows(named=True):
            for i, model in enumerate(names):
                key = (str(row["period"]), model)
                channels = out.setdefault(key, {})
                if row[f"m_{i}"]:  # a channel the model gives nothing is left out
                    channels[str(row["channel"])] = float(row[f"m_{i}"])
    return out


def calibration_section(
    inputs: AnalyticsInputs,
    holdout: Sequence[HoldoutResult],
    done: ConvertedTable,
    weights: Mapping[str, TouchWeights],
    crm_channels: Sequence[str],
) -> dict[str, Any]:
    """The ``calibration`` section of the report (see the module doc)."""
    touches = _touches(done, inputs.granularity, inputs.time_zone)
    treated = _treated(inputs)
    crm = sorted(crm_channels)
    credited_of: dict[str | None, Credited] = {}
    experiments: dict[str, Any] = {}
    for result in holdout:
        name = result.experiment
        label = OVERALL if name is None else name
        if name not in credited_of:
            if name is None:
                scope = touches.filter(pl.col("channel").is_in(crm))
                members = treated.filter(pl.col("experiment").is_null())
            else:
                scope = touches.filter(pl.col("campaign") == name)
                members = treated.filter(pl.col("experiment") == name)
            counted = scope.join(members, on="customer_id", how="inner").filter(
                pl.col("since").is_null() | (pl.col("ts_ms") >= pl.col("since"))
            )
            credited_of[name] = _credited(counted, weights)
        models: dict[str, Any] = {}
        for model in weights:
            per_channel = credited_of[name].get((result.period, model), {})
            credited = math.fsum(per_channel.values())
            factor = (
                None
                if result.incremental_revenue is None or credited <= 0
                else ratio(result.incremental_revenue, credited)
            )
            ci = result.incremental_revenue_ci
            models[model] = {
                "credited_revenue": credited,
                "incrementality_factor": factor,
                "incrementality_factor_ci": None
                if factor is None or ci is None
                else [ci[0] / credited, ci[1] / credited],
                "calibrated_revenue": None if factor is None else credited * factor,
                "channels": {
                    ch: {
                        "credited": amount,
                        "calibrated": None if factor is None else amount * factor,
                    }
                    for ch, amount in sorted(per_channel.items())
                },
            }
        warning = result.warning
        if warning is None and all(m["credited_revenue"] <= 0 for m in models.values()):
            warning = (
                f"experiment {label}, period {result.period}: no credited revenue to calibrate"
            )
        scope_name = "CRM channels" if name is None else f"campaign {name}"
        experiment = experiments.setdefault(label, {"scope": scope_name, "periods": {}})
        experiment["periods"][result.period] = {
            "incremental_revenue": result.incremental_revenue,
            "incremental_revenue_ci": None
            if result.incremental_revenue_ci is None
            else list(result.incremental_revenue_ci),
            "underpowered": result.underpowered,
            "warning": warning,
            "models": models,
        }
    return {
        "crm_channels": crm,
        "period_granularity": inputs.granularity,
        "experiments": experiments,
    }


def calibration_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per experiment, period and model of the report's ``calibration`` section."""
    rows = []
    experiments = (report.get("calibration") or {}).get("experiments") or {}
    for experiment, entry in experiments.items():
        periods = entry.get("periods") or {}
        for period in sorted(periods, key=lambda p: (p != "all", p)):
            row = periods[period]
            for model, m in (row.get("models") or {}).items():
                rows.append(
                    {
                        "experiment": experiment,
                        "period": period,
                        "model": model,
                        "incremental_revenue": row.get("incremental_revenue"),
                        "incremental_revenue_ci": row.get("incremental_revenue_ci"),
                        "credited_revenue": m.get("credited_revenue"),
                        "incrementality_factor": m.get("incrementality_factor"),
                        "incrementality_factor_ci": m.get("incrementality_factor_ci"),
                        "calibrated_revenue": m.get("calibrated_revenue"),
                        "underpowered": row.get("underpowered"),
                        "warning": row.get("warning"),
                    }
                )
    return rows
