"""The mergeable per-event state behind the report, as a stream keeps it.

:class:`AnalyticsState` folds events one at a time through the library's own per-customer
states; a stream keeps its per-customer parts in customer-partitioned tables and merges the
rest. The report reads it through :func:`attribution.analytics.inputs.inputs_from_state`; the
batch report builds the same inputs from a whole event table instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from attribution.analytics._common import UTC_ZONE, Granularity
from attribution.analytics.campaigns import CampaignCosts
from attribution.analytics.funnel import REACHED, FunnelCounts, FunnelTracker
from attribution.analytics.holdout import (
    CustomerHoldout,
    HashMembership,
    HoldoutAggregate,
    HoldoutTracker,
)
from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.revenue_share import DailyRevenue, record_purchase
from attribution.events import AnyEvent, Purchase


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
        if (self.holdout.granularity, self.holdout.hashing, self.holdout.time_zone) != (
            other.holdout.granularity,
            other.holdout.hashing,
            other.holdout.time_zone,
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
                "time_zone": self.holdout.time_zone,
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
            h.get("time_zone", UTC_ZONE),
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
    time_zone: str = UTC_ZONE,
) -> AnalyticsState:
    """Fold events (any order, repeats allowed) into a fresh :class:`AnalyticsState`
    (day and month buckets of ``time_zone``)."""
    state = AnalyticsState(
        holdout=HoldoutTracker(holdout_granularity, hashing, time_zone=time_zone)
    )
    for event in events:
        state.apply(event)
    return state
