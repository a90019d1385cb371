"""What every dashboard table cell must say, worked out from the JSON the commands print.

Written apart from the page's own data code, so that a wrong figure in either shows up.
"""

from __future__ import annotations

import json
from typing import Any


def money(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}"


def count(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def pts(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f} pts"


def fixed4(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def label(state: str) -> str:
    return " > ".join(json.loads(state)) if state.startswith("[") else state


def models_cells(attribution: dict[str, Any]) -> dict[str, str]:
    out = {}
    models = attribution["models"]
    for model, result in models.items():
        for ch, credit in result["channels"].items():
            out[f"models-value|{ch}|{model}"] = money(credit["value"])
            out[f"models-conversions|{ch}|{model}"] = money(credit["conversions"])
            base = models["last_touch"]["channels"].get(ch, {}).get("conversions", 0.0)
            if model != "last_touch":
                change = (credit["conversions"] - base) / base if base else None
                out[f"models-change|{ch}|{model}"] = pct(change)
    return out


def paths_cells(paths: dict[str, Any]) -> dict[str, str]:
    out = {}
    for row in paths["top_paths"]:
        key = " > ".join(row["path"])
        out[f"paths-top|{key}|journeys"] = count(row["journeys"])
        out[f"paths-top|{key}|conversions"] = money(row["conversions"])
        out[f"paths-top|{key}|value"] = money(row["value"])
    for row in paths["lengths"]:
        out[f"paths-length|{row['touches']}|conversions"] = money(row["conversions"])
        out[f"paths-length|{row['touches']}|value"] = money(row["value"])
    for row in paths["time_lag"] or []:
        out[f"paths-lag|{row['lag']}|conversions"] = money(row["conversions"])
    return out


def markov_cells(markov: dict[str, Any]) -> dict[str, str]:
    out = {}
    for ch, c in markov["channels"].items():
        out[f"markov-effects|{ch}|removal_effect"] = fixed4(c["removal_effect"])
        out[f"markov-effects|{ch}|removal_effect_value"] = fixed4(c["removal_effect_value"])
    for edge in markov["transition_matrix"]:
        key = f"{label(edge['from'])} → {label(edge['to'])}"
        out[f"markov-edges|{key}|probability"] = fixed4(edge["probability"])
        out[f"markov-edges|{key}|count"] = count(edge["count"])
    return out


def report_cells(report: dict[str, Any], rfm_window_days: float = 365.0) -> dict[str, str]:
    out = {}
    rfm = report["rfm"]
    grid: dict[tuple[int, int], int] = {}
    for entry in rfm["customers"].values():
        grid[(entry["r"], entry["f"])] = grid.get((entry["r"], entry["f"]), 0) + 1
    for r in range(1, 6):
        for f in range(1, 6):
            out[f"rfm-grid|R{r}|F{f}"] = count(grid.get((r, f), 0))
    for name, n in rfm["segments"].items():
        out[f"rfm-segments|{name}|customers"] = count(n)
    for grade, n in rfm["grades"].items():
        out[f"rfm-grades|{grade}|customers"] = count(n)
    for source, row in rfm["movement"]["grades"].items():
        for target, n in row.items():
            out[f"rfm-movement|{source}|{target}"] = count(n)
    kept = report["retention"]
    out["retention|active at start|value"] = count(kept["customers_at_start"])
    out["retention|new customers|value"] = count(kept["new_customers"])
    months = sorted(report["revenue_share"]["periods"])
    first = f"{months[0]}-01T00:00:00+00:00"
    from datetime import datetime

    span = datetime.fromisoformat(kept["to"].replace("Z", "+00:00")) - datetime.fromisoformat(first)
    shown = span.total_seconds() / 86400 > rfm_window_days
    out["retention|retention rate|value"] = pct(kept["retention_rate"]) if shown else "-"
    for name, row in report["clv"]["segments"].items():
        out[f"clv|{name}|customers"] = count(row["customers"])
        out[f"clv|{name}|historical_revenue"] = money(row["historical_revenue"])
        out[f"clv|{name}|forecast_mean"] = money(row["forecast_mean"])
    holdout = report["holdout"]
    rows = [("(overall)", "all", holdout["overall"])]
    rows += [(n, "all", r) for n, r in holdout["campaigns"].items()]
    rows += [(n, p, r) for n, ps in holdout["periods"].items() for p, r in ps.items()]
    for name, period, row in rows:
        key = f"holdout|{name} {period}"
        out[f"{key}|n_control"] = count(row["n_control"])
        out[f"{key}|conversion_lift"] = pts(row["conversion_lift"])
        out[f"{key}|conversion_lift_relative"] = pct(row["conversion_lift_relative"])
        out[f"{key}|min_detectable_conversion_lift"] = pts(row["min_detectable_conversion_lift"])
        out[f"{key}|incremental_revenue"] = money(row["incremental_revenue"])
        out[f"{key}|ci_low"] = money(row["incremental_revenue_ci"][0])
        out[f"{key}|ci_high"] = money(row["incremental_revenue_ci"][1])
        out[f"{key}|power"] = "underpowered" if row["underpowered"] else "ok"
    for name, c in report["campaigns"].items():
        opens = c["funnel"]["opens"]
        out[f"campaign-funnel|{name}|cost"] = money(c["cost"] or None)
        out[f"campaign-funnel|{name}|delivered"] = count(c["funnel"]["delivered"])
        out[f"campaign-funnel|{name}|open_rate"] = pct(c["open_rate"] if opens else None)
        out[f"campaign-funnel|{name}|ctr"] = pct(c["ctr"])
        out[f"campaign-funnel|{name}|ctor"] = pct(c["ctor"] if opens else None)
        for model, e in c["models"].items():
            key = f"campaign-economics|{name} / {model}"
            out[f"{key}|attributed_revenue"] = money(e["attributed_revenue"])
            out[f"{key}|conversion_rate"] = pct(e["conversion_rate"])
            for figure in ("cac", "cpl", "cpo"):
                out[f"{key}|{figure}"] = money(e[figure] if c["cost"] else None)
            out[f"{key}|roi"] = pct(e["roi"] if c["cost"] else None)
    share = report["revenue_share"]
    for period, row in share["periods"].items():
        out[f"share|{period}|revenue"] = money(row["total_revenue"])
        for model, value in row["crm_share"].items():
            out[f"share|{period}|{model}"] = pct(value)
    out["share|all time|revenue"] = money(share["total_revenue"])
    for model, value in share["crm_share"].items():
        out[f"share|all time|{model}"] = pct(value)
    return out


def mismatches(shown: dict[str, str], expected: dict[str, str]) -> list[str]:
    """Expected cells that the page lacks or shows differently."""
    return [
        f"{key}: page {shown.get(key)!r}, JSON {value!r}"
        for key, value in expected.items()
        if shown.get(key) != value
    ]
