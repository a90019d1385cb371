"""Campaign economics: cost, attributed revenue, ROI, revenue:cost, CAC, CPL, CPO, conversion.

* cost: sum of the campaign's cost events (all channels);
* attributed revenue and orders: the credit a model gives to each touch goes to that
  touch's campaign (:mod:`attribution.analytics.touch_credit`);
* ROI = (revenue - cost) / cost; revenue:cost = revenue / cost, shown as ``"50:1"``;
* CAC = cost / new customers (customers whose first purchase the model credits to the
  campaign); CPL = cost / leads (unique customers with a ``lead``); CPO = cost / orders;
* conversion rate = orders / unique customers reached;
* retention rate = (customers at end - new customers) / customers at start.

Every ratio with a zero denominator is None, never inf or NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from attribution.analytics._common import from_micros, ratio, to_micros
from attribution.analytics.funnel import FunnelCounts, funnel_rates
from attribution.analytics.touch_credit import CreditLike, credit_conversions, credit_value
from attribution.events import AnyEvent, Cost


@dataclass
class CampaignCosts:
    """Cost events by event_id (redelivery-safe, mergeable by union)."""

    events: dict[str, tuple[int, str, str, int]] = field(default_factory=dict)

    def apply(self, event: AnyEvent) -> None:
        """Record a cost event; other events are ignored."""
        if isinstance(event, Cost):
            record = (event.ts_ms, event.campaign, event.channel, to_micros(event.amount))
            known = self.events.get(event.event_id)
            if known is None or record < known:
                self.events[event.event_id] = record

    def apply_all(self, events: Iterable[AnyEvent]) -> CampaignCosts:
        """Record every cost event; returns self."""
        for event in events:
            self.apply(event)
        return self

    def merge(self, other: CampaignCosts) -> None:
        """Union with another partition."""
        for event_id, record in other.events.items():
            known = self.events.get(event_id)
            if known is None or record < known:
                self.events[event_id] = record

    def by_campaign(
        self, since_ms: int | None = None, until_ms: int | None = None
    ) -> dict[str, float]:
        """Cost per campaign for costs with since <= ts < until (bounds optional)."""
        totals: dict[str, int] = {}
        for ts_ms, campaign, _, micros in self.events.values():
            if (since_ms is None or ts_ms >= since_ms) and (until_ms is None or ts_ms < until_ms):
                totals[campaign] = totals.get(campaign, 0) + micros
        return {c: from_micros(v) for c, v in sorted(totals.items())}

    def to_json(self) -> dict[str, Any]:
        """JSON object: event_id -> [ts_ms, campaign, channel, micros]."""
        return {"events": {k: list(v) for k, v in sorted(self.events.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignCosts:
        """Inverse of :meth:`to_json`."""
        return cls(
            {k: (int(a), str(b), str(c), int(d)) for k, (a, b, c, d) in data["events"].items()}
        )


def format_ratio(value: float | None) -> str | None:
    """Revenue:cost as text, e.g. 50.0 -> ``"50:1"``, 2.5 -> ``"2.5:1"``."""
    if value is None:
        return None
    return f"{value:.2f}".rstrip("0").rstrip(".") + ":1"


def retention_rate(
    customers_at_start: int, customers_at_end: int, new_customers: int
) -> float | None:
    """(customers at end - new customers) / customers at start."""
    return ratio(customers_at_end - new_customers, customers_at_start)


@dataclass(frozen=True)
class CampaignEconomics:
    """Economics of one campaign under one attribution model."""

    campaign: str
    cost: float
    revenue: float
    orders: float
    new_customers: float
    leads: int
    reached: int
    roi: float | None
    revenue_cost_ratio: float | None
    revenue_cost_ratio_text: str | None
    cac: float | None
    cpl: float | None
    cpo: float | None
    conversion_rate: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON object."""
        return asdict(self)


def campaign_economics(
    campaign: str,
    cost: float,
    revenue: float,
    orders: float,
    new_customers: float,
    leads: int,
    reached: int,
) -> CampaignEconomics:
    """All the ratios of one campaign from its totals."""
    revenue_cost = ratio(revenue, cost)
    return CampaignEconomics(
        campaign, cost, revenue, orders, new_customers, leads, reached,
        roi=ratio(revenue - cost, cost),
        revenue_cost_ratio=revenue_cost,
        revenue_cost_ratio_text=format_ratio(revenue_cost),
        cac=ratio(cost, new_customers),
        cpl=ratio(cost, leads),
        cpo=ratio(cost, orders),
        conversion_rate=ratio(orders, reached),
    )  # fmt: skip


def campaign_report(
    costs: Mapping[str, float],
    credits: Mapping[str, Mapping[str, CreditLike]],
    new_customers: Mapping[str, Mapping[str, float]],
    funnel: FunnelCounts,
) -> dict[str, dict[str, CampaignEconomics]]:
    """model -> campaign -> economics, over every campaign with a cost, credit or reach.

    ``credits`` is model -> campaign -> attributed (conversions, value); ``new_customers``
    is model -> campaign -> acquired customers (see ``touch_credit.first_purchase_credit``).
    """
    out: dict[str, dict[str, CampaignEconomics]] = {}
    for model in sorted(credits):
        per_campaign = credits[model]
        acquired = new_customers.get(model, {})
        names = set(costs) | set(per_campaign) | set(funnel.counts)
        rows = {}
        for campaign in sorted(names):
            credit = per_campaign.get(campaign)
            rates = funnel_rates(funnel, campaign)
            rows[campaign] = campaign_economics(
                campaign,
                cost=costs.get(campaign, 0.0),
                revenue=credit_value(credit) if credit is not None else 0.0,
                orders=credit_conversions(credit) if credit is not None else 0.0,
                new_customers=acquired.get(campaign, 0.0),
                leads=rates.leads,
                reached=rates.reached,
            )
        out[model] = rows
    return out
