"""Which figures of a report are defined, read the same way by tables, dashboard and SQL.

The report JSON keeps the engine's arithmetic (a campaign without cost has a CAC of 0.0, a
channel without open tracking an open rate of 0.0); here those become ``None``, shown as "-".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

COST_FIGURES = ("cac", "cpl", "cpo", "roi", "revenue_cost_ratio", "revenue_cost_ratio_text")


def campaign_rates(campaign: dict[str, Any]) -> dict[str, float | None]:
    """Open rate, CTR and CTOR of a campaign; open figures undefined without any open."""
    opens = (campaign.get("funnel") or {}).get("opens") or 0
    return {
        "open_rate": campaign.get("open_rate") if opens > 0 else None,
        "ctr": campaign.get("ctr"),
        "ctor": campaign.get("ctor") if opens > 0 else None,
    }


def campaign_economics(campaign: dict[str, Any], model: str) -> dict[str, Any]:
    """One model's economics of a campaign; cost ratios undefined without a recorded cost."""
    row = dict((campaign.get("models") or {}).get(model) or {})
    if not campaign.get("cost"):
        for name in COST_FIGURES:
            row[name] = None
    return row


def _month_start(month: str) -> datetime | None:
    try:
        return datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def retention_shown(report: dict[str, Any], rfm_window_days: float) -> bool:
    """Whether the retention rate can fall below 100% over the log the report was made of.

    A customer active at the start of the period stays active (a purchase within the RFM
    window) unless the log holds purchases older than ``end - window``: over a shorter log
    the rate is 100% by construction. The first month with revenue bounds the log's start.
    """
    kept = report.get("retention")
    if not kept:
        return False
    months = [m for m in ((report.get("revenue_share") or {}).get("periods") or {})]
    starts = [s for s in (_month_start(m) for m in months) if s is not None]
    if not starts:
        return False
    span_days = (_parse(kept["to"]) - min(starts)).total_seconds() / 86400.0
    return span_days > rfm_window_days
