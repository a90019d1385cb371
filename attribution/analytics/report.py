"""The customer analytics report: one mergeable state folded from events, one JSON object out.

:func:`fold_events` feeds events one at a time through the library's own states
(:class:`AnalyticsState`); :func:`analytics_report` turns a state, the attribution credits and
the journeys into the report. The batch command folds a whole log; a stream keeps the
per-customer parts in customer-partitioned tables and merges the rest (see the state's doc).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from attribution.analytics._common import ALL_TIME, MICROS, Granularity
from attribution.analytics.assists import AssistCounts, assist_report
from attribution.analytics.bgnbd import fit_bgnbd
from attribution.analytics.campaign_credit import (
    campaign_credits,
    converted,
    model_weights,
    new_customers,
)
from attribution.analytics.campaigns import CampaignCosts, campaign_report, retention_rate
from attribution.analytics.clv import clv_by_segment, forecast_clv, historical_clv
from attribution.analytics.clv_summary import summarize_ledger
from attribution.analytics.funnel import REACHED, FunnelCounts, FunnelTracker, funnel_rates
from attribution.analytics.gamma_gamma import fit_gamma_gamma
from attribution.analytics.holdout import (
    CustomerHoldout,
    GroupState,
    HashMembership,
    HoldoutAggregate,
    HoldoutTracker,
    Moments,
)
from attribution.analytics.holdout_stats import HoldoutResult, holdout_report
from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.movement import movement
from attribution.analytics.revenue_share import (
    DailyRevenue,
    record_purchase,
    revenue_share,
    revenue_share_by_period,
)
from attribution.analytics.rfm import (
    DEFAULT_WINDOW_DAYS,
    Snapshot,
    rfm_snapshot,
    snapshot_to_json,
)
from attribution.analytics.rfm_segments import GRADES, SEGMENTS
from attribution.analytics.touch_credit import (
    Credit,
    CreditLike,
    allocate,
    by_channel,
    credit_value,
)
from attribution.events import MS_PER_DAY, AnyEvent, Purchase
from attribution.journeys import Journey
from attribution.models.options import ModelOptions

# Fewer repeat buyers than this leave BG/NBD and Gamma-Gamma unidentified: the report says so.
MIN_REPEAT_CUSTOMERS = 5
# A fitted parameter outside this range means the likelihood ran off to a boundary of the
# parameter space (e.g. no dropout or no spend heterogeneity in a short log): not identified.
PLAUSIBLE_PARAMETERS = (1e-6, 1e6)
DEFAULT_CLV_HORIZON_WEEKS = 52.0
DEFAULT_COMPARE_DAYS = 30.0


@dataclass
class AnalyticsState:
    """Every mergeable state behind the report.

    Per customer (a stream keeps these in customer-partitioned tables; partitions hold
    disjoint customers): ``ledger.customers``, ``holdout.customers``, ``funnel.customers``.
    Sums over customers (partitions merge by addition): ``revenue`` (per UTC day),
    ``holdout.aggregate``, ``funnel.totals``. By event id (merge by union): ``costs``.
    ``newest_ms`` (the default ``as_of``) merges by max. :meth:`merge` is also exact when
    both sides hold the same customer (redelivery, overlapping copies).
    """

    ledger: PurchaseLedger = field(default_factory=PurchaseLedger)
    revenue: DailyRevenue = field(default_factory=DailyRevenue)
    holdout: HoldoutTracker = field(default_factory=HoldoutTracker)
    funnel: FunnelTracker = field(default_factory=FunnelTracker)
    costs: CampaignCosts = field(default_factory=CampaignCosts)
    newest_ms: int | None = None

    def apply(self, event: AnyEvent) -> None:
        """Fold one event into every state."""
        if isinstance(event, Purchase):
            record_purchase(self.ledger, self.revenue, event)
        self.holdout.apply(event)
        self.funnel.apply(event)
        self.costs.apply(event)
        self.newest_ms = event.ts_ms if self.newest_ms is None else max(self.newest_ms, event.ts_ms)

    def merge(self, other: AnalyticsState) -> None:
        """Add another partition's state (exact for shared customers too)."""
        if (self.holdout.granularity, self.holdout.hashing) != (
            other.holdout.granularity,
            other.holdout.hashing,
        ):
            raise ValueError(
                "cannot merge analytics states with different holdout settings: "
                f"{self.holdout.granularity}/{self.holdout.hashing} vs "
                f"{other.holdout.granularity}/{other.holdout.hashing}"
            )
        # The revenue sums equal the ledger's, so shared purchases must be taken out once.
        shared = self.ledger.customers.keys() & other.ledger.customers.keys()
        revenue = DailyRevenue()
        revenue.merge(self.revenue)
        revenue.merge(other.revenue)
        for customer in shared:
            for state in (self.ledger.customers[customer], other.ledger.customers[customer]):
                for record in state.purchases.values():
                    revenue.add(record.ts_ms, record.amount, sign=-1)
        self.ledger.merge(other.ledger)
        for customer in shared:
            for record in self.ledger.customers[customer].purchases.values():
                revenue.add(record.ts_ms, record.amount)
        self.revenue = revenue
        _merge_holdout(self.holdout, other.holdout)
        _merge_funnel(self.funnel, other.funnel)
        self.costs.merge(other.costs)
        if other.newest_ms is not None:
            self.newest_ms = (
                other.newest_ms if self.newest_ms is None else max(self.newest_ms, other.newest_ms)
            )

    def to_json(self) -> dict[str, Any]:
        """JSON object of the whole state (deterministic key and list order)."""
        hashing = self.holdout.hashing
        return {
            "ledger": self.ledger.to_json(),
            "revenue": self.revenue.to_json(),
            "holdout": {
                "granularity": self.holdout.granularity,
                "hashing": None if hashing is None else [hashing.salt, hashing.control_share],
                "customers": {c: _sorted_assignments(s.to_json()) for c, s in sorted(self.holdout)},
                "aggregate": {
                    "groups": sorted(
                        self.holdout.aggregate.to_json()["groups"],
                        key=lambda g: (g[0] is not None, g[0] or "", g[1]),
                    )
                },
            },
            "funnel": {
                "customers": {
                    c: self.funnel.customer_to_json(c) for c in sorted(self.funnel.customers)
                },
                "totals": self.funnel.totals.to_json(),
            },
            "costs": self.costs.to_json(),
            "newest_ms": self.newest_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnalyticsState:
        """Inverse of :meth:`to_json`."""
        h = data["holdout"]
        hashing = None if h["hashing"] is None else HashMembership(*h["hashing"])
        holdout = HoldoutTracker(
            h["granularity"],
            hashing,
            {c: CustomerHoldout.from_json(s) for c, s in h["customers"].items()},
            HoldoutAggregate.from_json(h["aggregate"]),
        )
        funnel = FunnelTracker(
            {
                c: {campaign: set(names) for campaign, names in s.items()}
                for c, s in data["funnel"]["customers"].items()
            },
            FunnelCounts.from_json(data["funnel"]["totals"]),
        )
        newest = data["newest_ms"]
        return cls(
            PurchaseLedger.from_json(data["ledger"]),
            DailyRevenue.from_json(data["revenue"]),
            holdout,
            funnel,
            CampaignCosts.from_json(data["costs"]),
            None if newest is None else int(newest),
        )


def _sorted_assignments(data: dict[str, Any]) -> dict[str, Any]:
    data["assignments"] = sorted(data["assignments"], key=lambda a: (a[0] is not None, a[0] or ""))
    return data


def _merge_holdout(mine: HoldoutTracker, other: HoldoutTracker) -> None:
    """Add the other tracker's sums, recomputing the contribution of shared customers."""
    shared = mine.customers.keys() & other.customers.keys()
    for customer in shared:
        mine.aggregate.add(mine.contribution(customer), sign=-1)
        mine.aggregate.add(other.contribution(customer), sign=-1)
    mine.aggregate.merge(other.aggregate)
    for customer, state in other.customers.items():
        known = mine.customers.get(customer)
        if known is None:
            mine.customers[customer] = CustomerHoldout.from_json(state.to_json())
            continue
        # The same rules as CustomerHoldout.apply: latest assignment, smallest purchase record.
        for experiment, assigned in state.assignments.items():
            old = known.assignments.get(experiment)
            if old is None or old[:2] < assigned[:2]:
                known.assignments[experiment] = assigned
        for event_id, record in state.purchases.items():
            current = known.purchases.get(event_id)
            if current is None or record < current:
                known.purchases[event_id] = record
        known.seen = known.seen or state.seen
    for customer in shared:
        mine.aggregate.add(mine.contribution(customer))


def _merge_funnel(mine: FunnelTracker, other: FunnelTracker) -> None:
    """Add the other tracker's counts, counting a customer shared by both once."""
    mine.totals.merge(other.totals)
    for customer, campaigns in other.customers.items():
        known = mine.customers.setdefault(customer, {})
        for campaign, names in campaigns.items():
            already = known.get(campaign)
            if already is None:
                known[campaign] = set(names)
                continue
            mine.totals.bump(campaign, REACHED, -1)
            for name in names & already:
                mine.totals.bump(campaign, name, -1)
            already |= names


def fold_events(
    events: Iterable[AnyEvent],
    hashing: HashMembership | None = None,
    holdout_granularity: Granularity = "month",
) -> AnalyticsState:
    """Fold events (any order, repeats allowed) into a fresh :class:`AnalyticsState`."""
    state = AnalyticsState(holdout=HoldoutTracker(holdout_granularity, hashing))
    for event in events:
        state.apply(event)
    return state


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
        """Options from :class:`config.settings.Settings` (or anything shaped like it)."""
        a = settings.attribution
        return cls(
            crm_channels=tuple(a.crm_channels),
            rfm_window_days=settings.analytics.rfm_window_days,
            model_options=model_options
            or ModelOptions(direct_channel=a.direct_channel, half_life_days=a.half_life_days),
        )


@dataclass(frozen=True)
class DatedSnapshot:
    """An RFM snapshot and the time it was taken at."""

    as_of_ms: int
    snapshot: Snapshot


def previous_snapshot(
    state: AnalyticsState,
    as_of_ms: int,
    compare_days: float = DEFAULT_COMPARE_DAYS,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> DatedSnapshot:
    """The snapshot ``compare_days`` before ``as_of_ms`` (what the batch report compares to)."""
    if compare_days <= 0:
        raise ValueError(f"compare_days {compare_days} must be positive")
    then = as_of_ms - round(compare_days * MS_PER_DAY)
    return DatedSnapshot(then, rfm_snapshot(state.ledger, then, window_days))


Credits = Mapping[str, Mapping[str, CreditLike]]


def analytics_report(
    state: AnalyticsState,
    attribution: Any,
    journeys: Sequence[Journey],
    options: ReportOptions,
    as_of_ms: int | None = None,
    customer_scores: bool = False,
    previous_snapshot: DatedSnapshot | None = None,
) -> dict[str, Any]:
    """The report as one JSON-ready object (sorted keys, None for undefined numbers).

    ``attribution`` is an ``AttributionReport`` or a mapping model -> channel -> credit;
    ``journeys`` are the journeys it was computed from; ``as_of_ms`` defaults to the newest
    event time of the state.
    """
    as_of = state.newest_ms if as_of_ms is None else as_of_ms
    if as_of is None:
        raise ValueError("the analytics state holds no event and no as_of time was given")
    credits = _credits(attribution)
    done = converted(journeys)
    snapshot = rfm_snapshot(state.ledger, as_of, options.rfm_window_days)
    report = {
        "as_of": _iso(as_of),
        "rfm": _rfm_section(snapshot, previous_snapshot, as_of, customer_scores),
        "clv": _clv_section(
            state.ledger, snapshot, as_of, options.clv_horizon_weeks, customer_scores
        ),
        "revenue_share": _revenue_section(
            state, credits, done, options.crm_channels, options.model_options
        ),
        "assisted": {
            channel: {
                "assisted": row.assisted,
                "last_touch": row.last_touch,
                "ratio": row.assisted_to_last_touch,
            }
            for channel, row in assist_report(AssistCounts().add_all(done)).items()
        },
        "retention": _retention_section(state.ledger, snapshot, previous_snapshot, as_of),
        "holdout": _holdout_section(state.holdout),
        "campaigns": _campaign_section(state, credits, done, options.model_options),
    }
    return _clean(report)


def _credits(attribution: Any) -> Credits:
    results = getattr(attribution, "results", None)
    if results is not None:
        return {model: result.channels for model, result in results.items()}
    return dict(attribution)


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _rfm_section(
    snapshot: Snapshot, previous: DatedSnapshot | None, as_of: int, customer_scores: bool
) -> dict[str, Any]:
    segments = dict.fromkeys(SEGMENTS, 0)
    grades = dict.fromkeys(GRADES, 0)
    for entry in snapshot.values():
        segments[entry.segment] += 1
        grades[entry.grade] += 1
    out: dict[str, Any] = {
        "active_customers": len(snapshot),
        "segments": segments,
        "grades": grades,
        "cut_points": _cut_points(snapshot),
        "movement": None,
    }
    if previous is not None:
        moved = movement(previous.snapshot, snapshot).to_json()
        out["movement"] = {"from": _iso(previous.as_of_ms), "to": _iso(as_of), **moved}
    if customer_scores:
        out["customers"] = snapshot_to_json(snapshot)
    return out


def _retention_section(
    ledger: PurchaseLedger, snapshot: Snapshot, previous: DatedSnapshot | None, as_of: int
) -> dict[str, Any] | None:
    """Customer retention rate between the previous snapshot and now.

    Customers at start and at end are the active customers of the two RFM snapshots (a
    purchase within the rolling window); new customers made their first purchase ever in
    between. Rate = (at end - new) / at start.
    """
    if previous is None:
        return None
    start = previous.as_of_ms
    new = sum(
        1
        for _, state in ledger
        if state.purchases and start < min(r.ts_ms for r in state.purchases.values()) <= as_of
    )
    at_start, at_end = len(previous.snapshot), len(snapshot)
    return {
        "from": _iso(start),
        "to": _iso(as_of),
        "customers_at_start": at_start,
        "customers_at_end": at_end,
        "new_customers": new,
        "retention_rate": retention_rate(at_start, at_end, new),
    }


def _cut_points(snapshot: Snapshot) -> dict[str, dict[str, list[float]]]:
    """Per dimension and score: the [lowest, highest] value of the customers with that score."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, score_of, value_of in (
        ("recency_days", lambda e: e.r, lambda e: e.recency_days),
        ("frequency", lambda e: e.f, lambda e: float(e.frequency)),
        ("monetary", lambda e: e.m, lambda e: e.monetary),
    ):
        ranges: dict[str, list[float]] = {}
        for entry in snapshot.values():
            key, value = str(score_of(entry)), value_of(entry)
            low_high = ranges.setdefault(key, [value, value])
            low_high[0], low_high[1] = min(low_high[0], value), max(low_high[1], value)
        out[name] = ranges
    return out


def _clv_section(
    ledger: PurchaseLedger,
    snapshot: Snapshot,
    as_of: int,
    horizon_weeks: float,
    customer_values: bool = False,
) -> dict[str, Any]:
    """CLV per segment; with ``customer_values``, each customer's historical and forecast CLV."""
    out = _clv_fit(ledger, snapshot, as_of, horizon_weeks)
    forecast = out.pop("_forecast")
    if customer_values:
        out["per_customer"] = {
            customer: {"historical": value, "forecast": forecast.get(customer)}
            for customer, value in sorted(historical_clv(ledger, as_of).items())
        }
    return out


def _clv_fit(
    ledger: PurchaseLedger, snapshot: Snapshot, as_of: int, horizon_weeks: float
) -> dict[str, Any]:
    historical = clv_by_segment(historical_clv(ledger, as_of), snapshot)
    summaries = summarize_ledger(ledger, as_of, unit="weeks")
    repeat = sum(1 for s in summaries.values() if s.frequency > 0 and s.monetary > 0)
    segments: dict[str, dict[str, Any]] = {
        name: {
            "customers": v.customers,
            "historical_revenue": v.revenue,
            "historical_mean": v.mean,
            "forecast_revenue": None,
            "forecast_mean": None,
        }
        for name, v in historical.items()
    }
    out: dict[str, Any] = {
        "customers": len(summaries),
        "repeat_customers": repeat,
        "horizon_weeks": horizon_weeks,
        "time_unit": "weeks",
        "bgnbd": None,
        "gamma_gamma": None,
        "forecast_status": "fitted",
        "segments": segments,
        "_forecast": {},
    }
    if repeat < MIN_REPEAT_CUSTOMERS:
        out["forecast_status"] = (
            f"not fitted: {repeat} repeat customers with spend, at least "
            f"{MIN_REPEAT_CUSTOMERS} are needed to fit BG/NBD and Gamma-Gamma"
        )
        return out
    with np.errstate(all="ignore"):
        try:
            bgnbd = fit_bgnbd(summaries.values())
            spend = fit_gamma_gamma(summaries.values())
            forecast = forecast_clv(bgnbd, spend, summaries, horizon_weeks)
        except (ValueError, FloatingPointError, ArithmeticError) as error:
            out["forecast_status"] = f"not fitted: {error}"
            return out
    out["bgnbd"] = {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b,
                    "log_likelihood": bgnbd.log_likelihood}  # fmt: skip
    out["gamma_gamma"] = {"p": spend.p, "q": spend.q, "gamma": spend.gamma,
                          "log_likelihood": spend.log_likelihood}  # fmt: skip
    problem = _implausible(out["bgnbd"], "BG/NBD") or _implausible(
        out["gamma_gamma"], "Gamma-Gamma"
    )
    if problem is None and spend.q <= 1:
        problem = f"Gamma-Gamma q = {spend.q:.4g} <= 1 has no finite mean spend"
    if problem is None and not all(math.isfinite(v) and v >= 0 for v in forecast.values()):
        problem = "the fitted parameters give no finite forecast"
    if problem is not None:
        out["forecast_status"] = f"not identified: {problem}; no forecast"
        return out
    out["_forecast"] = forecast
    for name, v in clv_by_segment(forecast, snapshot).items():
        row = segments.setdefault(
            name, {"customers": v.customers, "historical_revenue": 0.0, "historical_mean": 0.0}
        )
        row["forecast_revenue"], row["forecast_mean"] = v.revenue, v.mean
    return out


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


REVENUE_PERIOD: Granularity = "month"


def _period_credits(
    credits: Credits, done: Sequence[Any], options: ModelOptions
) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """period -> model -> channel -> (conversions, value), by purchase month.

    Each journey's credit is spread by the model's per-touch weights (campaign_credit.py): the
    rule-based models and Shapley add up to their all-time channel credits; Markov splits each
    journey by the removal effects, so its months add up to the same total value but not
    channel by channel.
    """
    out: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for model, channels in credits.items():
        weights = model_weights(model, options, channels)
        if weights is None:
            continue
        by_conv = allocate(done, weights.conversions, by_channel, REVENUE_PERIOD)
        by_value = (
            by_conv
            if weights.value is weights.conversions
            else allocate(done, weights.value, by_channel, REVENUE_PERIOD)
        )
        for period in sorted(set(by_conv) | set(by_value)):
            if period == ALL_TIME:
                continue
            conv, value = by_conv.get(period, {}), by_value.get(period, {})
            out.setdefault(period, {})[model] = {
                ch: (conv.get(ch, Credit()).conversions, value.get(ch, Credit()).value)
                for ch in sorted(set(conv) | set(value))
            }
    return out


def _revenue_periods(
    state: AnalyticsState,
    credits: Credits,
    done: Sequence[Any],
    crm_channels: Sequence[str],
    options: ModelOptions,
) -> dict[str, Any]:
    revenue = {p: v for p, v in state.revenue.by_period(REVENUE_PERIOD).items() if p != ALL_TIME}
    shares = revenue_share_by_period(_period_credits(credits, done, options), revenue, crm_channels)
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
    state: AnalyticsState,
    credits: Credits,
    done: Sequence[Any],
    crm_channels: Sequence[str],
    options: ModelOptions,
) -> dict[str, Any]:
    total = sum(state.revenue.days.values()) / MICROS
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
    return {
        "total_revenue": total,
        "unattributed_revenue": math.fsum(j.value for j in done if j.unattributed),
        "crm_channels": sorted(crm_channels),
        "crm_share": {model: m["crm_share"] for model, m in models.items()},
        "models": models,
        "period_granularity": REVENUE_PERIOD,
        "periods": _revenue_periods(state, credits, done, crm_channels, options),
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


def _holdout_section(tracker: HoldoutTracker) -> dict[str, Any]:
    results = holdout_report(_pruned(tracker.aggregate))
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
        "membership": "hash" if tracker.hashing is not None else "assignments",
        "period_granularity": tracker.granularity,
        "overall": overall,
        "campaigns": campaigns,
        "periods": periods,
    }


def _campaign_section(
    state: AnalyticsState, credits: Credits, done: Sequence[Any], options: ModelOptions
) -> dict[str, Any]:
    by_model: dict[str, Any] = {}
    acquired: dict[str, Any] = {}
    for model, channels in credits.items():
        weights = model_weights(model, options, channels)
        if weights is not None:
            by_model[model] = campaign_credits(done, weights)
            acquired[model] = new_customers(done, weights)
    costs = state.costs.by_campaign()
    funnel = state.funnel.totals
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
