"""Email (or any engagement) funnel per campaign, from touchpoint interactions.

Counts are of unique customers: ``reached`` (any touch of the campaign), and one count per
interaction (``send``, ``delivered``, ``open``, ``click``, ``lead``, or any other name;
compared in lower case). Rates:

* open rate = unique opens / unique delivered;
* CTR = unique clicks / unique delivered;
* CTOR = unique clicks / unique opens.

A zero denominator gives None. The per-customer state (which interactions a customer had
with which campaign) lives with the customer; the counts are additive across partitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from attribution.analytics._common import ratio
from attribution.events import AnyEvent, Touchpoint

REACHED = "reached"


@dataclass
class FunnelCounts:
    """campaign -> interaction (and ``reached``) -> unique customers; additive."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def bump(self, campaign: str, name: str, by: int = 1) -> None:
        """Add ``by`` customers to one count."""
        bucket = self.counts.setdefault(campaign, {})
        bucket[name] = bucket.get(name, 0) + by

    def merge(self, other: FunnelCounts) -> None:
        """Add another partition's counts."""
        for campaign, names in other.counts.items():
            for name, n in names.items():
                self.bump(campaign, name, n)

    def get(self, campaign: str, name: str) -> int:
        """One count (0 when absent)."""
        return self.counts.get(campaign, {}).get(name, 0)

    def to_json(self) -> dict[str, Any]:
        """JSON object."""
        return {"counts": {c: dict(sorted(n.items())) for c, n in sorted(self.counts.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunnelCounts:
        """Inverse of :meth:`to_json`."""
        return cls({c: {k: int(v) for k, v in n.items()} for c, n in data["counts"].items()})


@dataclass
class FunnelTracker:
    """Per-customer interaction sets and the unique counts they add up to."""

    customers: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    totals: FunnelCounts = field(default_factory=FunnelCounts)

    def apply(self, event: AnyEvent) -> None:
        """Fold one event; only touchpoints with a campaign matter."""
        if not isinstance(event, Touchpoint) or event.campaign is None:
            return
        seen = self.customers.setdefault(event.customer_id, {})
        names = seen.get(event.campaign)
        if names is None:
            names = seen[event.campaign] = set()
            self.totals.bump(event.campaign, REACHED)
        interaction = (event.interaction or "").lower()
        if interaction and interaction not in names:
            names.add(interaction)
            self.totals.bump(event.campaign, interaction)

    def apply_all(self, events: Iterable[AnyEvent]) -> FunnelTracker:
        """Fold every event; returns self."""
        for event in events:
            self.apply(event)
        return self

    def customer_to_json(self, customer_id: str) -> dict[str, list[str]]:
        """JSON of one customer's state (what a customer-keyed table stores)."""
        return {c: sorted(n) for c, n in sorted(self.customers.get(customer_id, {}).items())}


@dataclass(frozen=True)
class FunnelRates:
    """Funnel counts and rates of one campaign."""

    reached: int
    sent: int
    delivered: int
    opens: int
    clicks: int
    leads: int
    open_rate: float | None
    ctr: float | None
    ctor: float | None


def funnel_rates(counts: FunnelCounts, campaign: str) -> FunnelRates:
    """Unique counts and open rate, CTR and CTOR of one campaign."""
    delivered = counts.get(campaign, "delivered")
    opens = counts.get(campaign, "open")
    clicks = counts.get(campaign, "click")
    return FunnelRates(
        reached=counts.get(campaign, REACHED),
        sent=counts.get(campaign, "send"),
        delivered=delivered,
        opens=opens,
        clicks=clicks,
        leads=counts.get(campaign, "lead"),
        open_rate=ratio(opens, delivered),
        ctr=ratio(clicks, delivered),
        ctor=ratio(clicks, opens),
    )
