"""Each customer's share of the analytics state, kept beside its journey state in the table.

The analytics library's state splits into per-customer parts (purchase ledger, holdout
membership and purchases, funnel interactions) and sums over customers (daily revenue, holdout
moments, funnel counts). The stream stores only the per-customer parts, in the customer's
table entry, and rebuilds the sums when a query asks: the sums are functions of the parts, so
the answer is the batch report's whatever the order or repetition of events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attribution.analytics._common import Granularity
from attribution.analytics.campaigns import CampaignCosts
from attribution.analytics.funnel import REACHED
from attribution.analytics.holdout import CustomerHoldout, HashMembership, HoldoutTracker
from attribution.analytics.ledger import CustomerPurchases
from attribution.analytics.report import AnalyticsState
from attribution.analytics.revenue_share import DailyRevenue
from attribution.events import AnyEvent, Assignment, Cost, Purchase, Touchpoint

# Keys of the parts in a customer's table entry (short: every entry is written per event).
LEDGER, HOLDOUT, FUNNEL, NEWEST = "l", "h", "f", "t"


def apply_to_parts(parts: Mapping[str, Any] | None, event: AnyEvent) -> dict[str, Any]:
    """The customer's parts after one of its events (idempotent: repeats change nothing)."""
    if not isinstance(event, Assignment | Purchase | Touchpoint):
        raise ValueError(f"{event.type} events belong to no customer")
    out = dict(parts or {})
    if not (isinstance(event, Touchpoint) and (out.get(HOLDOUT) or {}).get("seen")):
        # A touchpoint only marks the customer as seen: once seen, it leaves the part as is.
        holdout = CustomerHoldout.from_json(out[HOLDOUT]) if HOLDOUT in out else CustomerHoldout()
        holdout.apply(event)
        out[HOLDOUT] = holdout.to_json()
    if isinstance(event, Purchase):
        ledger = CustomerPurchases.from_json(out[LEDGER]) if LEDGER in out else CustomerPurchases()
        ledger.add_event(event)
        out[LEDGER] = ledger.to_json()
    elif isinstance(event, Touchpoint) and event.campaign is not None:
        # Copied only where it changes: a customer's funnel has a key per campaign it met,
        # and copying every list on every touch was a tenth of a worker's time.
        funnel = out.get(FUNNEL) or {}
        names = funnel.get(event.campaign)
        interaction = (event.interaction or "").lower()
        if names is None or (interaction and interaction not in names):
            grown = sorted([*(names or []), *([interaction] if interaction else [])])
            funnel = {**funnel, event.campaign: grown}
        out[FUNNEL] = funnel
    out[NEWEST] = max(event.ts_ms, out.get(NEWEST) or event.ts_ms)
    return out


def apply_cost(costs: Mapping[str, Any] | None, event: Cost) -> dict[str, Any] | None:
    """The partition's cost events after one more; ``None`` when it changed nothing."""
    state = CampaignCosts.from_json(dict(costs)) if costs else CampaignCosts()
    before = state.events.get(event.event_id)
    state.apply(event)
    if state.events.get(event.event_id) == before:
        return None
    return state.to_json()


def state_from_parts(
    customers: Iterable[tuple[str, Mapping[str, Any]]],
    costs: Iterable[Mapping[str, Any]],
    hashing: HashMembership | None,
    granularity: Granularity = "month",
) -> AnalyticsState:
    """The analytics state of the given customers' parts and cost events (sums rebuilt)."""
    state = AnalyticsState(holdout=HoldoutTracker(granularity, hashing))
    newest: int | None = None
    for customer, parts in customers:
        if LEDGER in parts:
            state.ledger.customers[customer] = CustomerPurchases.from_json(parts[LEDGER])
        if HOLDOUT in parts:
            state.holdout.customers[customer] = CustomerHoldout.from_json(parts[HOLDOUT])
            state.holdout.aggregate.add(state.holdout.contribution(customer))
        funnel = parts.get(FUNNEL)
        if funnel:
            state.funnel.customers[customer] = {c: set(n) for c, n in funnel.items()}
            for campaign, names in funnel.items():
                state.funnel.totals.bump(campaign, REACHED)
                for name in names:
                    state.funnel.totals.bump(campaign, name)
        if parts.get(NEWEST) is not None:
            newest = parts[NEWEST] if newest is None else max(newest, parts[NEWEST])
    state.revenue = DailyRevenue.from_ledger(state.ledger)
    for share in costs:
        state.costs.merge(CampaignCosts.from_json(dict(share)))
    for ts_ms, *_ in state.costs.events.values():
        newest = ts_ms if newest is None else max(newest, ts_ms)
    state.newest_ms = newest
    return state
