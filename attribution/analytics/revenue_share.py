"""Channel revenue share: credited revenue over total company revenue, per model and period.

The denominator is every purchase's amount, unattributed ones included, so the shares of a
model add up to the attributed fraction of revenue, never more. ``crm_share`` is the sum of
the shares of the CRM channels passed in.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from attribution.analytics._common import (
    ALL_TIME,
    Granularity,
    day_of,
    day_to_period,
    from_micros,
    ratio,
    to_micros,
)
from attribution.analytics.ledger import PurchaseLedger, PurchaseRecord
from attribution.analytics.touch_credit import CreditLike, credit_value
from attribution.events import Purchase


@dataclass
class DailyRevenue:
    """Company revenue per UTC day in micro-units: additive, so partitions merge by sum."""

    days: dict[int, int] = field(default_factory=dict)

    def add(self, ts_ms: int, amount: float, sign: int = 1) -> None:
        """Add (or remove, sign -1) one purchase amount."""
        day = day_of(ts_ms)
        self.days[day] = self.days.get(day, 0) + sign * to_micros(amount)

    def merge(self, other: DailyRevenue) -> None:
        """Add another partition's revenue."""
        for day, micros in other.days.items():
            self.days[day] = self.days.get(day, 0) + micros

    def by_period(self, granularity: Granularity) -> dict[str, float]:
        """Revenue per period label (``all`` always included)."""
        totals: dict[str, int] = {ALL_TIME: sum(self.days.values())}
        if granularity != "all":
            for day, micros in self.days.items():
                label = day_to_period(day, granularity)
                totals[label] = totals.get(label, 0) + micros
        return {label: from_micros(v) for label, v in sorted(totals.items())}

    def to_json(self) -> dict[str, Any]:
        """JSON object: day number (as text) -> micro-units."""
        return {"days": {str(d): v for d, v in sorted(self.days.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DailyRevenue:
        """Inverse of :meth:`to_json`."""
        return cls({int(d): int(v) for d, v in data["days"].items()})

    @classmethod
    def from_ledger(cls, ledger: PurchaseLedger) -> DailyRevenue:
        """Revenue of every purchase a ledger holds."""
        out = cls()
        for _, state in ledger:
            for record in state.purchases.values():
                out.add(record.ts_ms, record.amount)
        return out


def record_purchase(ledger: PurchaseLedger, revenue: DailyRevenue, event: Purchase) -> None:
    """Add a purchase to the ledger and keep the daily revenue equal to the ledger's sum."""
    state = ledger.customers.get(event.customer_id)
    old: PurchaseRecord | None = state.purchases.get(event.event_id) if state else None
    if ledger.add(event):
        if old is not None:
            revenue.add(old.ts_ms, old.amount, sign=-1)
        revenue.add(event.ts_ms, event.amount)


@dataclass(frozen=True)
class RevenueShare:
    """Shares of one model in one period."""

    total_revenue: float
    channels: dict[str, float | None]
    crm_share: float | None
    attributed_share: float | None


def revenue_share(
    credits: Mapping[str, Mapping[str, CreditLike]],
    total_revenue: float,
    crm_channels: Collection[str] = (),
) -> dict[str, RevenueShare]:
    """model -> shares of total company revenue credited to each channel."""
    out = {}
    for model, channels in sorted(credits.items()):
        values = {name: credit_value(c) for name, c in sorted(channels.items())}
        out[model] = RevenueShare(
            total_revenue,
            {name: ratio(v, total_revenue) for name, v in values.items()},
            ratio(math.fsum(v for n, v in values.items() if n in crm_channels), total_revenue),
            ratio(math.fsum(values.values()), total_revenue),
        )
    return out


def revenue_share_by_period(
    credits_by_period: Mapping[str, Mapping[str, Mapping[str, CreditLike]]],
    revenue_by_period: Mapping[str, float],
    crm_channels: Collection[str] = (),
) -> dict[str, dict[str, RevenueShare]]:
    """period -> model -> shares; periods with revenue but no credit get empty shares."""
    return {
        period: revenue_share(credits_by_period.get(period, {}), total, crm_channels)
        for period, total in sorted(revenue_by_period.items())
    }
