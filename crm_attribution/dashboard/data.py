"""The dashboard's data: every view's figures, built from the commands' and the API's JSON.

:func:`dashboard_data` takes the objects analysts already get (``attribute --format json``
or ``GET /attribution``; ``report --format json`` or ``GET /analytics``; ``GET /markov``;
a paths summary) and returns one JSON-ready object the page draws. Nothing is recomputed
here but the few figures the views need on top (change against last touch, the RFM grid);
undefined figures are ``None`` by the same rules as the terminal tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from attribution.report_figures import (
    campaign_economics,
    campaign_rates,
    retention_shown,
)

BASELINE_MODEL = "last_touch"
SCORES = ("1", "2", "3", "4", "5")


def model_comparison(attribution: Mapping[str, Any]) -> dict[str, Any]:
    """Credit per channel under each model, and each model's change against last touch."""
    models = attribution.get("models") or {}
    channels = sorted({ch for m in models.values() for ch in m.get("channels", {})})
    conversions: dict[str, dict[str, float]] = {}
    value: dict[str, dict[str, float]] = {}
    # With `attribute --ci`: each credit's interval, [low, high] (None where there is none).
    intervals: dict[str, dict[str, dict[str, list[float] | None]]] | None = None
    if attribution.get("confidence"):
        intervals = {"conversions": {}, "value": {}}
    for model, result in models.items():
        credits = result.get("channels", {})
        conversions[model] = {ch: credits.get(ch, {}).get("conversions", 0.0) for ch in channels}
        value[model] = {ch: credits.get(ch, {}).get("value", 0.0) for ch in channels}
        if intervals is not None:
            for name in ("conversions", "value"):
                intervals[name][model] = {
                    ch: ((credits.get(ch, {}).get("ci") or {}).get(name)) for ch in channels
                }
    change: dict[str, dict[str, float | None]] | None = None
    if BASELINE_MODEL in models:
        base = conversions[BASELINE_MODEL]
        change = {
            model: {ch: (row[ch] - base[ch]) / base[ch] if base[ch] else None for ch in channels}
            for model, row in conversions.items()
        }
    return {
        "models": list(models),
        "channels": channels,
        "conversions": conversions,
        "value": value,
        "baseline": BASELINE_MODEL if change is not None else None,
        "change_vs_baseline": change,
        "totals": dict(attribution.get("totals") or {}),
        "intervals": intervals,
        "confidence": attribution.get("confidence"),
    }


def state_label(state: str) -> str:
    """A Markov state as people read it: ``email > push`` for the key ``["email","push"]``."""
    from attribution.models.markov_counts import state_channels

    channels = state_channels(state)
    return " > ".join(channels) if channels else state


def markov_view(markov: Mapping[str, Any]) -> dict[str, Any]:
    """Removal effects per channel and the transition edges (``GET /markov``'s shape)."""
    channels = markov.get("channels") or {}
    return {
        "conversion_probability": markov.get("conversion_probability"),
        "channels": sorted(channels),
        "removal_effect": {ch: c.get("removal_effect") for ch, c in channels.items()},
        "removal_effect_value": {ch: c.get("removal_effect_value") for ch, c in channels.items()},
        "edges": [
            {
                "from": state_label(str(e.get("from"))),
                "to": state_label(str(e.get("to"))),
                "probability": e.get("probability"),
                "count": e.get("count"),
            }
            for e in markov.get("transition_matrix") or []
        ],
    }


def rfm_grid(customers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Customers per recency score (rows) and frequency score (columns), 5 x 5."""
    grid = {r: dict.fromkeys(SCORES, 0) for r in SCORES}
    for entry in customers.values():
        grid[str(entry["r"])][str(entry["f"])] += 1
    return grid


def rfm_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Segments, grades, the R x F grid (when the report has customers) and movement."""
    rfm = report["rfm"]
    customers = rfm.get("customers")
    return {
        "active_customers": rfm.get("active_customers"),
        "segments": dict(rfm.get("segments") or {}),
        "grades": dict(rfm.get("grades") or {}),
        "grid": rfm_grid(customers) if customers else None,
        "movement": rfm.get("movement"),
    }


def clv_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Historical and forecast lifetime value per segment."""
    clv = report["clv"]
    return {
        "horizon_weeks": clv.get("horizon_weeks"),
        "forecast_status": clv.get("forecast_status"),
        "segments": {
            name: {
                k: row.get(k)
                for k in (
                    "customers",
                    "historical_revenue",
                    "historical_mean",
                    "forecast_revenue",
                    "forecast_mean",
                )
            }
            for name, row in (clv.get("segments") or {}).items()
        },
    }


HOLDOUT_FIELDS = (
    "n_treated",
    "n_control",
    "conversion_rate_treated",
    "conversion_rate_control",
    "conversion_lift",
    "conversion_lift_ci",
    "conversion_lift_relative",
    "min_detectable_conversion_lift",
    "incremental_revenue",
    "incremental_revenue_ci",
    "min_detectable_incremental_revenue",
    "underpowered",
    "warning",
)


def holdout_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Holdout rows: overall, per campaign, per period."""
    holdout = report["holdout"]
    rows = []
    candidates: list[tuple[str, str, Any]] = [("(overall)", "all", holdout.get("overall"))]
    candidates += [(n, "all", r) for n, r in (holdout.get("campaigns") or {}).items()]
    for name, periods in (holdout.get("periods") or {}).items():
        candidates += [(name, period, r) for period, r in periods.items()]
    for name, period, row in candidates:
        if row is not None:
            rows.append(
                {"experiment": name, "period": period, **{k: row.get(k) for k in HOLDOUT_FIELDS}}
            )
    from attribution.analytics.calibration import calibration_rows

    return {
        "membership": holdout.get("membership"),
        "rows": rows,
        "calibration": calibration_rows(dict(report)),
    }


def campaigns_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Cost, funnel and every model's economics per campaign, undefined figures None."""
    campaigns = report.get("campaigns") or {}
    models = sorted({m for c in campaigns.values() for m in c.get("models") or {}})
    rows = {}
    for name, campaign in campaigns.items():
        rows[name] = {
            "cost": campaign.get("cost") or None,
            "funnel": dict(campaign.get("funnel") or {}),
            **campaign_rates(campaign),
            "models": {
                model: campaign_economics(campaign, model) for model in campaign.get("models") or {}
            },
        }
    return {"models": models, "campaigns": rows}


def share_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """CRM share of revenue per model, all time and per period."""
    share = report["revenue_share"]
    return {
        "total_revenue": share.get("total_revenue"),
        "crm_channels": share.get("crm_channels"),
        "crm_share": dict(share.get("crm_share") or {}),
        "granularity": share.get("period_granularity"),
        "periods": {
            period: {"total_revenue": row["total_revenue"], "crm_share": dict(row["crm_share"])}
            for period, row in (share.get("periods") or {}).items()
        },
    }


def dashboard_data(
    attribution: Mapping[str, Any] | None = None,
    report: Mapping[str, Any] | None = None,
    markov: Mapping[str, Any] | None = None,
    paths: Mapping[str, Any] | None = None,
    rfm_window_days: float = 365.0,
) -> dict[str, Any]:
    """One JSON object with every view the page draws (a view is None without its input)."""
    retention = None
    if report is not None and report.get("retention"):
        retention = dict(report["retention"])
        if not retention_shown(dict(report), rfm_window_days):
            retention["retention_rate"] = None
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "as_of": None if report is None else report.get("as_of"),
        "models": None if attribution is None else model_comparison(attribution),
        "paths": None if paths is None else dict(paths),
        "markov": None if markov is None else markov_view(markov),
        "rfm": None if report is None else rfm_view(report),
        "retention": retention,
        "clv": None if report is None else clv_view(report),
        "holdout": None if report is None else holdout_view(report),
        "campaigns": None if report is None else campaigns_view(report),
        "share": None if report is None else share_view(report),
    }


def markov_from_result(result: Any) -> dict[str, Any]:
    """``GET /markov``'s shape from a batch Markov :class:`~attribution.results.ModelResult`."""
    return {
        "conversion_probability": result.conversion_probability,
        "channels": result.to_json()["channels"],
        "transition_matrix": result.extras.get("transition_matrix", []),
    }
