"""Terminal tables of the analytics report: every section of its JSON, nothing cut.

Undefined figures print as "-" (:mod:`attribution.report_figures` says which), lifts say
whether they are percentage points or relative, and the retention rate is only given over a
log long enough for a customer to lapse.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group

from attribution.analytics.calibration import calibration_rows
from attribution.report_figures import campaign_economics, campaign_rates, retention_shown
from crm_attribution.render_fit import Sheet, num, pct, points

DEFAULT_RFM_WINDOW_DAYS = 365.0


def _span(pair: list[float] | None, digits: int = 2) -> str:
    if not pair:
        return "-"
    low, high = pair
    return num(low, digits) if low == high else f"{num(low, digits)} to {num(high, digits)}"


def overview_sheet(report: dict[str, Any]) -> Sheet:
    """Report time, revenue and what attribution saw."""
    share = report.get("revenue_share") or {}
    totals = report.get("attribution") or {}
    sheet = Sheet(f"Report as of {report.get('as_of')}", ["measure", "value"])
    sheet.add_row("total revenue", num(share.get("total_revenue")))
    sheet.add_row("revenue of journeys without a touch", num(share.get("unattributed_revenue")))
    sheet.add_row("conversions", num(totals.get("conversions")))
    sheet.add_row("converted value", num(totals.get("value")))
    sheet.add_row("journeys without a conversion", num(totals.get("null")))
    sheet.add_row("conversions without a touch", num(totals.get("unattributed_conversions")))
    sheet.add_row("invalid records skipped", num(report.get("invalid_records")))
    sheet.add_row("CRM channels", ", ".join(share.get("crm_channels") or []) or "-")
    return sheet


def rfm_sheets(report: dict[str, Any]) -> list[Sheet]:
    """Segments, grades, score ranges and the movement between two snapshots."""
    rfm = report["rfm"]
    active = rfm.get("active_customers") or 0
    segments = Sheet(
        f"RFM segments ({num(active)} active customers)", ["segment", "customers", "share"]
    )
    for name, n in rfm["segments"].items():
        segments.add_row(name, num(n), pct(n / active if active else None))
    grades = Sheet("RFM grades (A best)", ["grade", "customers", "share"])
    for grade, n in rfm["grades"].items():
        grades.add_row(grade, num(n), pct(n / active if active else None))
    cuts = rfm.get("cut_points") or {}
    ranges = Sheet(
        "RFM score ranges (5 best)", ["score", "recency (days)", "frequency", "monetary"]
    )
    for score in "54321":
        ranges.add_row(
            score,
            _span(cuts.get("recency_days", {}).get(score), 1),
            _span(cuts.get("frequency", {}).get(score), 0),
            _span(cuts.get("monetary", {}).get(score)),
        )
    sheets = [segments, grades, ranges]
    moved = rfm.get("movement")
    if moved:
        span = f"{moved['from']} to {moved['to']}"
        sheets.append(_matrix(f"RFM grade movement {span} (rows: from)", moved["grades"]))
        sheets.append(_matrix(f"RFM segment movement {span} (rows: from)", moved["segments"]))
    return sheets


def _matrix(title: str, counts: dict[str, dict[str, int]]) -> Sheet:
    targets = sorted({t for row in counts.values() for t in row}, key=lambda t: (t != "(none)", t))
    sheet = Sheet(title, ["from", *(f"to {t}" for t in targets)])
    for source, row in counts.items():
        sheet.add_row(source, *(num(row.get(t, 0)) for t in targets))
    return sheet


def retention_sheet(report: dict[str, Any], rfm_window_days: float) -> Sheet | None:
    """Customers active at both ends of the comparison period, and the rate when meaningful."""
    kept = report.get("retention")
    if not kept:
        return None
    sheet = Sheet(
        f"Retention {kept['from']} to {kept['to']} (active: a purchase in the RFM window)",
        ["measure", "value"],
    )
    sheet.add_row("active at start", num(kept["customers_at_start"]))
    sheet.add_row("active at end", num(kept["customers_at_end"]))
    sheet.add_row("new customers", num(kept["new_customers"]))
    if retention_shown(report, rfm_window_days):
        sheet.add_row("retention rate", pct(kept["retention_rate"]))
    else:
        sheet.add_row("retention rate", "-")
        sheet.notes.append(
            f"retention rate: the log is shorter than the {num(rfm_window_days, 0)}-day RFM "
            "window, so no customer can lapse; the rate would be 100% by construction"
        )
    return sheet


def clv_sheets(report: dict[str, Any]) -> list[Sheet]:
    """Lifetime value per segment (historical and forecast) and the model fit."""
    clv = report["clv"]
    horizon = num(clv.get("horizon_weeks"), 0)
    segments = Sheet(
        "Lifetime value per RFM segment",
        [
            "segment",
            "customers",
            "historical revenue",
            "historical mean",
            f"forecast {horizon} wk revenue",
            f"forecast {horizon} wk mean",
        ],
    )
    for name, row in clv.get("segments", {}).items():
        segments.add_row(
            name,
            num(row.get("customers")),
            num(row.get("historical_revenue")),
            num(row.get("historical_mean")),
            num(row.get("forecast_revenue")),
            num(row.get("forecast_mean")),
        )
    segments.notes.append(f"forecast: {clv.get('forecast_status')}")
    fit = Sheet("Lifetime value model", ["parameter", "value"])
    fit.add_row("customers", num(clv.get("customers")))
    fit.add_row("repeat customers", num(clv.get("repeat_customers")))
    for model in ("bgnbd", "gamma_gamma"):
        for name, value in (clv.get(model) or {}).items():
            fit.add_row(f"{model} {name}", num(value, 6))
    sheets = [segments, fit]
    per_customer = clv.get("per_customer")
    if per_customer:
        # `report --customers`: every customer, the largest forecast first.
        customers = Sheet(
            f"Lifetime value per customer ({horizon} weeks ahead)",
            ["customer", "historical", "forecast", "expected purchases", "P(alive)",
             "expected spend"],
        )  # fmt: skip
        rows = sorted(per_customer.items(), key=lambda kv: (-(kv[1].get("forecast") or 0), kv[0]))
        for customer, row in rows:
            alive = row.get("probability_alive")
            customers.add_row(
                customer,
                num(row.get("historical")),
                num(row.get("forecast")),
                num(row.get("expected_purchases"), 3),
                "-" if alive is None else pct(alive),
                num(row.get("expected_spend")),
            )
        sheets.append(customers)
    return sheets


def revenue_sheets(report: dict[str, Any]) -> list[Sheet]:
    """Revenue share per channel and model, all time and per month."""
    shares = report["revenue_share"]
    models = list(shares["models"])
    channels = sorted({ch for m in shares["models"].values() for ch in m["channels"]})
    share = Sheet(
        f"Revenue share of {num(shares['total_revenue'])} total revenue", ["channel", *models]
    )
    value = Sheet("Revenue credited per channel", ["channel", *models])
    for ch in channels:
        cells = [shares["models"][m]["channels"].get(ch, {}) for m in models]
        share.add_row(ch, *(pct(c.get("share")) for c in cells))
        value.add_row(ch, *(num(c.get("value")) for c in cells))
    share.add_row("CRM share", *(pct(shares["crm_share"].get(m)) for m in models))
    share.add_row(
        "attributed share", *(pct(shares["models"][m].get("attributed_share")) for m in models)
    )
    value.add_row("total", *(num(shares["models"][m].get("attributed_revenue")) for m in models))
    periods = shares.get("periods") or {}
    monthly = Sheet(
        f"CRM share of revenue per {shares.get('period_granularity', 'month')}",
        ["period", "revenue", *(f"CRM {m}" for m in models), *(f"attributed {m}" for m in models)],
    )
    by_channel = Sheet(
        "Revenue share per channel and period", ["period", "channel", *models], keys=2
    )
    for period, row in periods.items():
        monthly.add_row(
            period,
            num(row["total_revenue"]),
            *(pct(row["crm_share"].get(m)) for m in models),
            *(pct(row["attributed_share"].get(m)) for m in models),
        )
        period_channels = sorted({ch for m in row["channels"].values() for ch in m})
        for ch in period_channels:
            by_channel.add_row(
                period, ch, *(pct(row["channels"].get(m, {}).get(ch)) for m in models)
            )
    return [share, value, monthly, by_channel]


def assisted_sheet(report: dict[str, Any]) -> Sheet:
    """Assisted and last-touch conversions per channel."""
    sheet = Sheet(
        "Assisted conversions", ["channel", "assisted", "last touch", "assisted : last touch"]
    )
    for channel, row in sorted(report.get("assisted", {}).items()):
        sheet.add_row(channel, num(row["assisted"]), num(row["last_touch"]), num(row["ratio"]))
    return sheet


HOLDOUT_COLUMNS = [
    "experiment",
    "period",
    "treated",
    "control",
    "conv. treated",
    "conv. control",
    "lift (abs.)",
    "lift 95% low",
    "lift 95% high",
    "lift (rel.)",
    "MDE lift (abs.)",
    "incremental revenue",
    "revenue 95% low",
    "revenue 95% high",
    "MDE revenue",
    "power",
]


def holdout_sheet(report: dict[str, Any]) -> Sheet:
    """Holdout lift overall, per campaign and per period, with intervals and power."""
    holdout = report["holdout"]
    sheet = Sheet(
        f"Holdout (membership by {holdout.get('membership')}; abs. lifts in percentage points)",
        HOLDOUT_COLUMNS,
        keys=2,
    )
    rows: list[tuple[str, str, dict[str, Any] | None]] = [
        ("(overall)", "all", holdout.get("overall"))
    ]
    rows += [(name, "all", row) for name, row in (holdout.get("campaigns") or {}).items()]
    for name, periods in (holdout.get("periods") or {}).items():
        rows += [(name, period, row) for period, row in periods.items()]
    for name, period, row in rows:
        if row is None:
            continue
        lift_ci = row.get("conversion_lift_ci") or [None, None]
        revenue_ci = row.get("incremental_revenue_ci") or [None, None]
        sheet.add_row(
            name,
            period,
            num(row["n_treated"]),
            num(row["n_control"]),
            pct(row.get("conversion_rate_treated")),
            pct(row.get("conversion_rate_control")),
            points(row.get("conversion_lift")),
            points(lift_ci[0]),
            points(lift_ci[1]),
            pct(row.get("conversion_lift_relative")),
            points(row.get("min_detectable_conversion_lift")),
            num(row.get("incremental_revenue")),
            num(revenue_ci[0]),
            num(revenue_ci[1]),
            num(row.get("min_detectable_incremental_revenue")),
            "underpowered" if row.get("underpowered") else "ok",
        )
        if row.get("warning"):
            sheet.notes.append(f"{name} {period}: {row['warning']}")
    return sheet


def campaign_sheets(report: dict[str, Any]) -> list[Sheet]:
    """Campaign funnels, then each model's campaign economics."""
    campaigns = report.get("campaigns") or {}
    funnel = Sheet(
        "Campaigns: cost and funnel",
        [
            "campaign",
            "cost",
            "reached",
            "sent",
            "delivered",
            "opens",
            "clicks",
            "leads",
            "open rate",
            "CTR",
            "CTOR",
        ],
    )
    economics = Sheet(
        "Campaign economics per attribution model",
        [
            "campaign",
            "model",
            "revenue",
            "ROI",
            "revenue:cost",
            "CAC",
            "CPL",
            "CPO",
            "conv. rate",
            "orders",
            "new customers",
        ],
        keys=2,
    )
    for name, row in campaigns.items():
        f = row.get("funnel") or {}
        rates = campaign_rates(row)
        funnel.add_row(
            name,
            num(row.get("cost")) if row.get("cost") else "-",
            *(num(f.get(k)) for k in ("reached", "sent", "delivered", "opens", "clicks", "leads")),
            pct(rates["open_rate"]),
            pct(rates["ctr"]),
            pct(rates["ctor"]),
        )
        for model in row.get("models") or {}:
            e = campaign_economics(row, model)
            economics.add_row(
                name,
                model,
                num(e.get("attributed_revenue")),
                pct(e.get("roi")),
                e.get("revenue_cost_ratio_text") or "-",
                num(e.get("cac")),
                num(e.get("cpl")),
                num(e.get("cpo")),
                pct(e.get("conversion_rate")),
                num(e.get("orders")),
                num(e.get("new_customers")),
            )
    funnel.notes.append(
        "open rate and CTOR are '-' for campaigns without open tracking (no open recorded); "
        "cost figures are '-' for campaigns without a recorded cost"
    )
    return [funnel, economics]


def calibration_sheet(report: dict[str, Any]) -> Sheet | None:
    """Incremental revenue beside each model's credited CRM revenue, and their ratio."""
    rows = calibration_rows(report)
    if not rows:
        return None
    sheet = Sheet(
        "Incrementality calibration: holdout vs credited CRM revenue",
        ["experiment / period / model", "incremental revenue [95%]", "credited", "factor [95%]",
         "calibrated", "power"],
    )  # fmt: skip
    for r in rows:
        ci, fci = r["incremental_revenue_ci"], r["incrementality_factor_ci"]
        sheet.add_row(
            f"{r['experiment']} / {r['period']} / {r['model']}",
            num(r["incremental_revenue"]) + (f" [{num(ci[0])}, {num(ci[1])}]" if ci else ""),
            num(r["credited_revenue"]),
            num(r["incrementality_factor"], 3)
            + (f" [{num(fci[0], 3)}, {num(fci[1], 3)}]" if fci else ""),
            num(r["calibrated_revenue"]),
            "underpowered" if r["underpowered"] else "ok",
        )
    sheet.notes.append(
        "factor = incremental revenue / credited CRM revenue (treatment group; overall: CRM "
        "channels, campaign: its own touches); calibrated = credited x factor"
    )
    warnings = sorted({r["warning"] for r in rows if r["warning"]})
    sheet.notes.extend(warnings[:5])
    if len(warnings) > 5:
        sheet.notes.append(f"... and {len(warnings) - 5} more warnings")
    return sheet


def report_sheets(
    report: dict[str, Any], rfm_window_days: float = DEFAULT_RFM_WINDOW_DAYS
) -> list[Sheet]:
    """Every section of the report, in reading order."""
    sheets = [overview_sheet(report), *rfm_sheets(report)]
    retention = retention_sheet(report, rfm_window_days)
    if retention is not None:
        sheets.append(retention)
    sheets += clv_sheets(report)
    sheets += revenue_sheets(report)
    sheets.append(assisted_sheet(report))
    sheets.append(holdout_sheet(report))
    calibration = calibration_sheet(report)
    if calibration is not None:
        sheets.append(calibration)
    sheets += campaign_sheets(report)
    return sheets


def report_tables(
    report: dict[str, Any], rfm_window_days: float = DEFAULT_RFM_WINDOW_DAYS
) -> Group:
    """The report as one renderable."""
    return Group(*report_sheets(report, rfm_window_days))
