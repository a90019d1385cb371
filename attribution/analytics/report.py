"""The customer analytics report: one JSON object from the analytics inputs, the credits and
the converted journeys, computed with group-bys over columns.

The batch command builds the inputs from a whole event table
(:func:`attribution.analytics.inputs.inputs_from_events`) and the journeys with the journey
kernel; a stream passes its merged :class:`AnalyticsState` and its converted journeys, which
are turned into the same tables. Either way one implementation computes every section.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from attribution.analytics._common import ALL_TIME, MICROS, Granularity, ratio
from attribution.analytics.bgnbd import expected_purchases, fit_bgnbd_arrays, probability_alive
from attribution.analytics.calibration import calibration_section
from attribution.analytics.campaigns import campaign_report, retention_rate
from attribution.analytics.clv import forecast_clv_arrays
from attribution.analytics.clv_summary import summary_frame
from attribution.analytics.converted import (
    ConvertedTable,
    allocate,
    assists,
    converted_from_journey_table,
    converted_from_journeys,
    first_purchase_credit,
    touch_weights,
)
from attribution.analytics.funnel import funnel_rates
from attribution.analytics.gamma_gamma import expected_average_spend, fit_gamma_gamma_arrays
from attribution.analytics.holdout import (
    GroupState,
    HoldoutAggregate,
    Moments,
    aggregate_of_tables,
)
from attribution.analytics.holdout_stats import HoldoutResult, holdout_report
from attribution.analytics.inputs import AnalyticsInputs, inputs_from_state, period_labels
from attribution.analytics.movement import NONE, movement_of_frames
from attribution.analytics.revenue_share import revenue_share, revenue_share_by_period
from attribution.analytics.rfm import DEFAULT_WINDOW_DAYS, snapshot_frame
from attribution.analytics.rfm_segments import GRADES, SEGMENTS
from attribution.analytics.state import AnalyticsState, fold_events
from attribution.analytics.touch_credit import CreditLike, credit_value
from attribution.events import MS_PER_DAY
from attribution.models.options import ModelOptions

__all__ = [
    "AnalyticsState",
    "DatedSnapshot",
    "ReportOptions",
    "analytics_report",
    "fold_events",
    "previous_snapshot",
]

# Fewer repeat buyers than this leave BG/NBD and Gamma-Gamma unidentified: the report says so.
MIN_REPEAT_CUSTOMERS = 5
# A fitted parameter outside this range means the likelihood ran off to a boundary of the
# parameter space (e.g. no dropout or no spend heterogeneity in a short log): not identified.
PLAUSIBLE_PARAMETERS = (1e-6, 1e6)
DEFAULT_CLV_HORIZON_WEEKS = 52.0
DEFAULT_COMPARE_DAYS = 30.0
REVENUE_PERIOD: Granularity = "month"
# Each customer's forecast, in ``clv.per_customer`` (name -> column of the forecast frame):
# revenue over the horizon, BG/NBD's expected purchases over it and probability of being alive
# (not yet dropped out) at the report time, Gamma-Gamma's expected spend per purchase.
CUSTOMER_FORECAST_FIELDS = {
    "forecast": "value",
    "expected_purchases": "expected_purchases",
    "probability_alive": "probability_alive",
    "expected_spend": "expected_spend",
}


@dataclass(frozen=True)
class ReportOptions:
    """Settings the report needs (see :meth:`from_settings`)."""

    crm_channels: tuple[str, ...] = ()
    rfm_window_days: float = DEFAULT_WINDOW_DAYS
    model_options: ModelOptions = field(default_factory=ModelOptions)
    clv_horizon_weeks: float = DEFAULT_CLV_HORIZON_WEEKS

    @classmethod
    def from_settings(
        cls, settings: Any, model_options: ModelOptions | None = None
    ) -> ReportOptions:
        """Options from :class:`crm_attribution.settings.typed.Settings` (or alike)."""
        a = settings.attribution
        return cls(
            crm_channels=tuple(a.crm_channels),
            rfm_window_days=settings.analytics.rfm_window_days,
            model_options=model_options
            or ModelOptions(direct_channel=a.direct_channel, half_life_days=a.half_life_days),
            clv_horizon_weeks=getattr(
                settings.analytics, "clv_horizon_weeks", DEFAULT_CLV_HORIZON_WEEKS
            ),
        )


@dataclass(frozen=True)
class DatedSnapshot:
    """A scored RFM snapshot (:func:`attribution.analytics.rfm.snapshot_frame`) and its time."""

    as_of_ms: int
    frame: pl.DataFrame


Inputs = AnalyticsInputs | AnalyticsState


def _inputs(state: Inputs) -> AnalyticsInputs:
    return state if isinstance(state, AnalyticsInputs) else inputs_from_state(state)


def previous_snapshot(
    state: Inputs,
    as_of_ms: int,
    compare_days: float = DEFAULT_COMPARE_DAYS,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> DatedSnapshot:
    """The snapshot ``compare_days`` before ``as_of_ms`` (what the batch report compares to)."""
    if compare_days <= 0:
        raise ValueError(f"compare_days {compare_days} must be positive")
    then = as_of_ms - round(compare_days * MS_PER_DAY)
    return DatedSnapshot(then, snapshot_frame(_inputs(state).purchases, then, window_days))


Credits = Mapping[str, Mapping[str, CreditLike]]


def _converted(journeys: Any) -> ConvertedTable:
    from attribution.journey_table import JourneyTable
    from attribution.journeys import ConvertedJourney

    if isinstance(journeys, ConvertedTable):
        return journeys
    if isinstance(journeys, JourneyTable):
        return converted_from_journey_table(journeys)
    return converted_from_journeys([j for j in journeys if isinstance(j, ConvertedJourney)])


def analytics_report(
    state: Inputs,
    attribution: Any,
    journeys: Any,
    options: ReportOptions,
    as_of_ms: int | None = None,
    customer_scores: bool = False,
    previous_snapshot: DatedSnapshot | None = None,
    clv: dict[str, Any] | Future[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The report as one JSON-ready object (sorted keys, None for undefined numbers).

    ``state`` is the analytics inputs (or a stream's state); ``attribution`` an
    ``AttributionReport`` or a mapping model -> channel -> credit; ``journeys`` the journeys it
    was computed from (a journey table, a converted table, or journey objects); ``as_of_ms``
    defaults to the newest event time of the state. ``clv``: the section as
    :func:`clv_section` made it, or its future when it is being computed on another thread
    (waited for once every other section is done).
    """
    inputs = _inputs(state)
    as_of = inputs.newest_ms if as_of_ms is None else as_of_ms
    if as_of is None:
        raise ValueError("the analytics state holds no event and no as_of time was given")
    credits = _credits(attribution)
    done = _converted(journeys)
    snapshot = snapshot_frame(inputs.purchases, as_of, options.rfm_window_days)
    weights = _model_weights(credits, done, options.model_options)
    holdout = holdout_results(inputs)
    report = {
        "as_of": _iso(as_of),
        "rfm": _rfm_section(snapshot, previous_snapshot, as_of, customer_scores),
        "revenue_share": _revenue_section(inputs, credits, done, weights, options.crm_channels),
        "assisted": {
            channel: {"assisted": a, "last_touch": b, "ratio": ratio(a, b)}
            for channel, (a, b) in assists(done).items()
        },
        "retention": _retention_section(inputs, snapshot, previous_snapshot, as_of),
        "holdout": _holdout_section(inputs, holdout),
        "calibration": calibration_section(inputs, holdout, done, weights, options.crm_channels),
        "campaigns": _campaign_section(inputs, credits, done, weights),
    }
    if clv is None:
        clv = _clv_section(inputs, snapshot, as_of, options.clv_horizon_weeks, customer_scores)
    report["clv"] = clv.result() if isinstance(clv, Future) else clv
    return _clean(report)


def clv_section(
    state: Inputs, options: ReportOptions, as_of_ms: int, customer_values: bool = False
) -> dict[str, Any]:
    """The lifetime-value section alone: it needs no journeys, so it can run beside them."""
    inputs = _inputs(state)
    snapshot = snapshot_frame(inputs.purchases, as_of_ms, options.rfm_window_days)
    return _clv_section(inputs, snapshot, as_of_ms, options.clv_horizon_weeks, customer_values)


def _credits(attribution: Any) -> Credits:
    results = getattr(attribution, "results", None)
    if results is not None:
        return {model: result.channels for model, result in results.items()}
    return dict(attribution)


def _model_weights(credits: Credits, done: ConvertedTable, options: ModelOptions) -> dict[str, Any]:
    out = {}
    for model, channels in credits.items():
        weights = touch_weights(model, done, options, channels)
        if weights is not None:
            out[model] = weights
    return out


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _counts(frame: pl.DataFrame, column: str, names: Sequence[str]) -> dict[str, int]:
    counted = dict(frame.group_by(column).len().iter_rows())
    return {name: int(counted.get(name, 0)) for name in names}


def _rfm_section(
    snapshot: pl.DataFrame, previous: DatedSnapshot | None, as_of: int, customer_scores: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "active_customers": snapshot.height,
        "segments": _counts(snapshot, "segment", SEGMENTS),
        "grades": _counts(snapshot, "grade", GRADES),
        "cut_points": _cut_points(snapshot),
        "movement": None,
    }
    if previous is not None:
        moved = movement_of_frames(previous.frame, snapshot).to_json()
        out["movement"] = {"from": _iso(previous.as_of_ms), "to": _iso(as_of), **moved}
    if customer_scores:
        columns = ("recency_days", "frequency", "monetary", "r", "f", "m", "code", "segment",
                   "grade")  # fmt: skip
        out["customers"] = {
            row["customer_id"]: {name: row[name] for name in columns}
            for row in snapshot.iter_rows(named=True)
        }
    return out


def _cut_points(snapshot: pl.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Per dimension and score: the [lowest, highest] value of the customers with that score."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, score in (("recency_days", "r"), ("frequency", "f"), ("monetary", "m")):
        ranges = snapshot.group_by(score).agg(
            low=pl.col(name).min().cast(pl.Float64), high=pl.col(name).max().cast(pl.Float64)
        )
        out[name] = {str(s): [float(low), float(high)] for s, low, high in ranges.iter_rows()}
    return out


def _retention_section(
    inputs: AnalyticsInputs, snapshot: pl.DataFrame, previous: DatedSnapshot | None, as_of: int
) -> dict[str, Any] | None:
    """Customer retention rate between the previous snapshot and now.

    Customers at start and at end are the active customers of the two RFM snapshots (a
    purchase within the rolling window); new customers made their first purchase ever in
    between. Rate = (at end - new) / at start.
    """
    if previous is None:
        return None
    start = previous.as_of_ms
    first = inputs.purchases.group_by("customer_id").agg(pl.col("ts_ms").min())["ts_ms"]
    new = int(((first > start) & (first <= as_of)).sum())
    at_start, at_end = previous.frame.height, snapshot.height
    return {
        "from": _iso(start),
        "to": _iso(as_of),
        "customers_at_start": at_start,
        "customers_at_end": at_end,
        "new_customers": new,
        "retention_rate": retention_rate(at_start, at_end, new),
    }


def _by_segment(values: pl.DataFrame, snapshot: pl.DataFrame) -> pl.DataFrame:
    """customers, revenue (sum of ``micros`` / 1e6) and mean per RFM segment ((none) outside)."""
    joined = values.join(snapshot.select("customer_id", "segment"), on="customer_id", how="left")
    return (
        joined.with_columns(pl.col("segment").fill_null(NONE))
        .group_by("segment")
        .agg(customers=pl.len(), micros=pl.col("micros").sum(), value=pl.col("value").sum())
        .sort("segment")
    )


def _clv_section(
    inputs: AnalyticsInputs,
    snapshot: pl.DataFrame,
    as_of: int,
    horizon_weeks: float,
    customer_values: bool = False,
) -> dict[str, Any]:
    """CLV per segment; with ``customer_values``, each customer's historical and forecast CLV."""
    historical = (
        inputs.purchases.filter(pl.col("ts_ms") <= as_of)
        .group_by("customer_id")
        .agg(pl.col("micros").sum())
        .sort("customer_id")
    )
    # numpy divides exactly; Polars would multiply by the reciprocal (see rfm.rfm_frame).
    historical = historical.with_columns(
        value=pl.Series(historical["micros"].to_numpy() / MICROS, dtype=pl.Float64)
    )
    out, forecast = _clv_fit(inputs, historical, snapshot, as_of, horizon_weeks)
    if customer_values:
        predicted: dict[str, dict[str, float]] = {}
        if forecast is not None:
            predicted = {row.pop("customer_id"): row for row in forecast.iter_rows(named=True)}
        none: dict[str, float | None] = dict.fromkeys(CUSTOMER_FORECAST_FIELDS.values())
        out["per_customer"] = {
            customer: {
                "historical": value,
                **{
                    name: predicted.get(customer, none)[column]
                    for name, column in CUSTOMER_FORECAST_FIELDS.items()
                },
            }
            for customer, value in historical.select("customer_id", "value").iter_rows()
        }
    return out


def _clv_fit(
    inputs: AnalyticsInputs,
    historical: pl.DataFrame,
    snapshot: pl.DataFrame,
    as_of: int,
    horizon_weeks: float,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    segments: dict[str, dict[str, Any]] = {
        name: {
            "customers": int(n),
            "historical_revenue": micros / MICROS,
            "historical_mean": micros / MICROS / n,
            "forecast_revenue": None,
            "forecast_mean": None,
        }
        for name, n, micros, _ in _by_segment(historical, snapshot).iter_rows()
    }
    summaries = summary_frame(inputs.purchases, as_of, unit="weeks", time_zone=inputs.time_zone)
    x = summaries["frequency"].to_numpy().astype(np.float64)
    monetary = summaries["monetary"].to_numpy()
    repeat = int(((x > 0) & (monetary > 0)).sum())
    out: dict[str, Any] = {
        "customers": summaries.height,
        "repeat_customers": repeat,
        "horizon_weeks": horizon_weeks,
        "time_unit": "weeks",
        "bgnbd": None,
        "gamma_gamma": None,
        "forecast_status": "fitted",
        "segments": segments,
    }
    if repeat < MIN_REPEAT_CUSTOMERS:
        out["forecast_status"] = (
            f"not fitted: {repeat} repeat customers with spend, at least "
            f"{MIN_REPEAT_CUSTOMERS} are needed to fit BG/NBD and Gamma-Gamma"
        )
        return out, None
    t_x = summaries["recency"].to_numpy()
    big_t = summaries["T"].to_numpy()
    with np.errstate(all="ignore"):
        try:
            bgnbd = fit_bgnbd_arrays(x, t_x, big_t)
            spend = fit_gamma_gamma_arrays(x, monetary)
            values = forecast_clv_arrays(bgnbd, spend, x, t_x, big_t, monetary, horizon_weeks)
        except (ValueError, FloatingPointError, ArithmeticError) as error:
            out["forecast_status"] = f"not fitted: {error}"
            return out, None
    out["bgnbd"] = {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b,
                    "log_likelihood": bgnbd.log_likelihood}  # fmt: skip
    out["gamma_gamma"] = {"p": spend.p, "q": spend.q, "gamma": spend.gamma,
                          "log_likelihood": spend.log_likelihood}  # fmt: skip
    problem = _implausible(out["bgnbd"], "BG/NBD") or _implausible(
        out["gamma_gamma"], "Gamma-Gamma"
    )
    if problem is None and spend.q <= 1:
        problem = f"Gamma-Gamma q = {spend.q:.4g} <= 1 has no finite mean spend"
    if problem is None and not bool(np.all(np.isfinite(values) & (values >= 0))):
        problem = "the fitted parameters give no finite forecast"
    if problem is not None:
        out["forecast_status"] = f"not identified: {problem}; no forecast"
        return out, None
    forecast = summaries.select("customer_id").with_columns(
        value=pl.Series(values),
        expected_purchases=pl.Series(expected_purchases(bgnbd, horizon_weeks, x, t_x, big_t)),
        probability_alive=pl.Series(probability_alive(bgnbd, x, t_x, big_t)),
        expected_spend=pl.Series(expected_average_spend(spend, x, np.where(x > 0, monetary, 0.0))),
    )
    per_segment = _by_segment(forecast.with_columns(micros=pl.lit(0)), snapshot)
    for name, n, _, value in per_segment.iter_rows():
        row = segments.setdefault(
            name, {"customers": int(n), "historical_revenue": 0.0, "historical_mean": 0.0}
        )
        row["forecast_revenue"], row["forecast_mean"] = float(value), float(value) / n
    return out, forecast


def _implausible(params: Mapping[str, float], model: str) -> str | None:
    """Why a fit is not usable (a parameter at a boundary, a non-finite likelihood), or None."""
    low, high = PLAUSIBLE_PARAMETERS
    for name, value in params.items():
        if not math.isfinite(value):
            return f"{model} {name} is not finite"
        if name != "log_likelihood" and not low <= value <= high:
            return (
                f"{model} {name} = {value:.4g} ran to a boundary of the parameter space "
                "(the log holds too little history to identify the model)"
            )
    return None


def _period_credits(
    credits: Credits, done: ConvertedTable, weights: Mapping[str, Any], time_zone: str = "UTC"
) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """period -> model -> channel -> (conversions, value), by purchase month.

    Each journey's credit is spread by the model's per-touch weights (converted.py): the
    rule-based models and Shapley add up to their all-time channel credits; Markov splits each
    journey by its channel credits, so its months add up to the same total value but not
    channel by channel.
    """
    out: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for model in credits:
        if model not in weights:
            continue
        w = weights[model]
        by_conv = allocate(done, w.conversions, "channel", REVENUE_PERIOD, time_zone)
        by_value = (
            by_conv if w.value is w.conversions
            else allocate(done, w.value, "channel", REVENUE_PERIOD, time_zone)
        )  # fmt: skip
        for period in sorted(set(by_conv) | set(by_value)):
            if period == ALL_TIME:
                continue
            conv, value = by_conv.get(period, {}), by_value.get(period, {})
            out.setdefault(period, {})[model] = {
                ch: (conv.get(ch, (0.0, 0.0))[0], value.get(ch, (0.0, 0.0))[1])
                for ch in sorted(set(conv) | set(value))
            }
    return out


def _revenue_by_period(inputs: AnalyticsInputs, granularity: Granularity) -> dict[str, float]:
    grouped = (
        inputs.purchases.select(
            period_labels(pl.col("ts_ms"), granularity, inputs.time_zone).alias("p"), "micros"
        )
        .group_by("p")
        .agg(pl.col("micros").sum())
        .sort("p")
    )
    return {str(p): int(micros) / MICROS for p, micros in grouped.iter_rows()}


def _revenue_periods(
    inputs: AnalyticsInputs,
    credits: Credits,
    done: ConvertedTable,
    weights: Mapping[str, Any],
    crm_channels: Sequence[str],
) -> dict[str, Any]:
    revenue = _revenue_by_period(inputs, REVENUE_PERIOD)
    by_period = _period_credits(credits, done, weights, inputs.time_zone)
    shares = revenue_share_by_period(by_period, revenue, crm_channels)
    return {
        period: {
            "total_revenue": revenue[period],
            "crm_share": {model: share.crm_share for model, share in models.items()},
            "attributed_share": {model: share.attributed_share for model, share in models.items()},
            "channels": {model: dict(share.channels) for model, share in models.items()},
        }
        for period, models in shares.items()
    }


def _revenue_section(
    inputs: AnalyticsInputs,
    credits: Credits,
    done: ConvertedTable,
    weights: Mapping[str, Any],
    crm_channels: Sequence[str],
) -> dict[str, Any]:
    total = int(inputs.purchases["micros"].sum()) / MICROS
    shares = revenue_share(credits, total, crm_channels)
    models = {}
    for model, share in shares.items():
        values = {ch: credit_value(c) for ch, c in credits[model].items()}
        models[model] = {
            "channels": {
                ch: {"value": values[ch], "share": share.channels[ch]} for ch in sorted(values)
            },
            "attributed_revenue": math.fsum(values.values()),
            "attributed_share": share.attributed_share,
            "crm_share": share.crm_share,
        }
    unattributed = done.value[done.lengths == 0]
    return {
        "total_revenue": total,
        "unattributed_revenue": math.fsum(unattributed.tolist()),
        "crm_channels": sorted(crm_channels),
        "crm_share": {model: m["crm_share"] for model, m in models.items()},
        "models": models,
        "period_granularity": REVENUE_PERIOD,
        "periods": _revenue_periods(inputs, credits, done, weights, crm_channels),
    }


def _holdout_json(result: HoldoutResult) -> dict[str, Any]:
    out = result.to_json()
    out["ci95"] = out["incremental_revenue_ci"]
    return out


def _pruned(aggregate: HoldoutAggregate) -> HoldoutAggregate:
    """Drop the empty sums a swapped-out contribution leaves, which depend on event order."""
    out = HoldoutAggregate()
    for key, state in aggregate.groups.items():
        periods = {p: m for p, m in state.periods.items() if m != Moments()}
        if state.members or periods:
            out.groups[key] = GroupState(state.members, periods)
    return out


def holdout_results(inputs: AnalyticsInputs) -> list[HoldoutResult]:
    """Lift of every experiment and period of the holdout (the overall one first)."""
    aggregate = aggregate_of_tables(
        inputs.assignments, inputs.seen, inputs.holdout_purchases, inputs.granularity,
        inputs.hashing, inputs.time_zone,
    )  # fmt: skip
    return holdout_report(_pruned(aggregate))


def _holdout_section(inputs: AnalyticsInputs, results: list[HoldoutResult]) -> dict[str, Any]:
    overall = None
    campaigns: dict[str, Any] = {}
    periods: dict[str, dict[str, Any]] = {}
    for result in results:
        label = result.experiment if result.experiment is not None else "(overall)"
        if result.period == ALL_TIME:
            if result.experiment is None:
                overall = _holdout_json(result)
            else:
                campaigns[result.experiment] = _holdout_json(result)
        else:
            periods.setdefault(label, {})[result.period] = _holdout_json(result)
    return {
        "membership": "hash" if inputs.hashing is not None else "assignments",
        "period_granularity": inputs.granularity,
        "overall": overall,
        "campaigns": campaigns,
        "periods": periods,
    }


def _campaign_section(
    inputs: AnalyticsInputs, credits: Credits, done: ConvertedTable, weights: Mapping[str, Any]
) -> dict[str, Any]:
    by_model: dict[str, Any] = {}
    acquired: dict[str, Any] = {}
    for model in credits:
        if model not in weights:
            continue
        w = weights[model]
        conv = allocate(done, w.conversions, "campaign").get(ALL_TIME, {})
        value = conv if w.value is w.conversions else allocate(done, w.value, "campaign").get(
            ALL_TIME, {}
        )  # fmt: skip
        by_model[model] = {
            name: (conv.get(name, (0.0, 0.0))[0], value.get(name, (0.0, 0.0))[1])
            for name in sorted(set(conv) | set(value))
        }
        acquired[model] = first_purchase_credit(done, w.conversions)
    spent = inputs.costs.group_by("campaign").agg(pl.col("micros").sum()).sort("campaign")
    costs = {str(c): int(m) / MICROS for c, m in spent.iter_rows()}
    funnel = inputs.funnel
    economics = campaign_report(costs, by_model, acquired, funnel)
    names = set(costs) | set(funnel.counts) | {c for rows in economics.values() for c in rows}
    out: dict[str, Any] = {}
    for campaign in sorted(names):
        rates = funnel_rates(funnel, campaign)
        models = {
            model: {
                k: v
                for k, v in rows[campaign].to_json().items()
                if k not in ("campaign", "cost", "leads", "reached")
            }
            for model, rows in economics.items()
            if campaign in rows
        }
        for row in models.values():
            row["attributed_revenue"] = row.pop("revenue")
        out[campaign] = {
            "cost": costs.get(campaign, 0.0),
            "attributed_revenue": {m: row["attributed_revenue"] for m, row in models.items()},
            "funnel": {
                "reached": rates.reached,
                "sent": rates.sent,
                "delivered": rates.delivered,
                "opens": rates.opens,
                "clicks": rates.clicks,
                "leads": rates.leads,
            },
            "open_rate": rates.open_rate,
            "ctr": rates.ctr,
            "ctor": rates.ctor,
            "models": models,
        }
    return out


def _clean(value: Any) -> Any:
    """Sorted keys, lists for tuples, None for NaN and infinities, plain Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return value
