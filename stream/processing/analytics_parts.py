"""Each customer's share of the analytics state, kept beside its journey state in the table.

The analytics library's state splits into per-customer parts (purchase ledger, holdout
membership and purchases, funnel interactions) and sums over customers (daily revenue, holdout
moments, funnel counts). The stream stores the per-customer parts in the customer's table
entry; a query reads them as the report's input columns (stream.processing.analytics_columns),
with the funnel counts kept per partition as parts grow (``P|funnel``). The sums are functions
of the parts, so the answer is the batch report's whatever the order or repetition of events.
:func:`state_from_parts` rebuilds the library's whole state from parts: the reference the
tests hold the columns to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from attribution.analytics._common import MICROS, UTC_ZONE, Granularity, to_micros
from attribution.analytics.campaigns import CampaignCosts
from attribution.analytics.funnel import REACHED
from attribution.analytics.holdout import CustomerHoldout, HashMembership, HoldoutTracker
from attribution.analytics.ledger import CustomerPurchases, PurchaseRecord
from attribution.analytics.report import AnalyticsState
from attribution.analytics.revenue_share import DailyRevenue
from attribution.events import AnyEvent, Assignment, Cost, Purchase, Refund, Touchpoint
from attribution.money import DEFAULT_BASE_CURRENCY, refund_problem

# Keys of the parts in a customer's table entry (short: every entry is written per event).
# ``r`` and ``m`` exist only for customers with refunds or with amounts in another currency:
# ``r`` the refunds taken on each order (order_id -> [[ts_ms, event_id, micros], ...]), ``m``
# each such purchase's amount as it came (event_id -> [currency, amount]).
LEDGER, HOLDOUT, FUNNEL, NEWEST, REFUNDS, ORIGINALS = "l", "h", "f", "t", "r", "m"


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


def with_original(
    parts: Mapping[str, Any], event_id: str, currency: str, amount: float
) -> dict[str, Any]:
    """The parts with a converted purchase's amount as it came (the first copy stays)."""
    out = dict(parts)
    originals = dict(out.get(ORIGINALS) or {})
    originals.setdefault(event_id, [currency, amount])
    out[ORIGINALS] = originals
    return out


@dataclass(frozen=True)
class OrderMoney:
    """An order of a customer as refunds see it: its purchases (base currency, before
    refunds), its amount in its own currency and what refunds took of it (micro-units)."""

    purchases: dict[str, PurchaseRecord]
    currency: str
    total_micros: int
    refunded_micros: int

    def net(self, amount: float) -> float:
        """A purchase amount of the order net of its refunds (attribution/money.py's rule)."""
        if self.refunded_micros == 0:
            return amount
        if self.refunded_micros == self.total_micros:
            return 0.0  # exactly: the factor's float could leave a dust of 1e-17
        return amount * (1.0 - float(self.refunded_micros) / float(self.total_micros))


def order_money(parts: Mapping[str, Any], order_id: str, base_currency: str) -> OrderMoney | None:
    """The order's money in the customer's parts (None: no purchase of that order)."""
    ledger = (parts.get(LEDGER) or {}).get("purchases") or {}
    purchases = {
        event_id: PurchaseRecord(int(r[0]), float(r[1]), str(r[2]))
        for event_id, r in sorted(ledger.items())
        if r[2] == order_id
    }
    if not purchases:
        return None
    originals = parts.get(ORIGINALS) or {}
    currency = base_currency
    total = 0
    for number, (event_id, record) in enumerate(purchases.items()):
        code, amount = originals.get(event_id, (base_currency, record.amount))
        if number == 0:
            currency = code
        total += round(amount * MICROS)
    refunded = sum(int(r[2]) for r in (parts.get(REFUNDS) or {}).get(order_id, ()))
    return OrderMoney(purchases, currency, total, refunded)


def refund_ids(parts: Mapping[str, Any]) -> set[str]:
    """Event ids of the refunds already taken on the customer's orders."""
    return {str(r[1]) for taken in (parts.get(REFUNDS) or {}).values() for r in taken}


def with_refund(
    parts: Mapping[str, Any] | None, refund: Refund, base_currency: str
) -> tuple[dict[str, Any], str | None]:
    """The parts after a refund, or why it cannot apply (the parts unchanged then).

    A refund is checked against what the customer's parts hold when it arrives: its order's
    purchases so far and the refunds before it (``attribution.money.refund_problem``).
    """
    out = dict(parts or {})
    if refund.event_id in refund_ids(out):
        return out, None  # a repeat
    order = order_money(out, refund.order_id, base_currency)
    micros = round(refund.amount * MICROS)
    problem = refund_problem(
        refund.customer_id,
        refund.order_id,
        micros,
        refund.currency,
        None if order is None else order.total_micros,
        base_currency if order is None else order.currency,
        0 if order is None else order.refunded_micros,
    )
    if problem is not None:
        return out, problem
    refunds = {k: list(v) for k, v in (out.get(REFUNDS) or {}).items()}
    refunds.setdefault(refund.order_id, []).append([refund.ts_ms, refund.event_id, micros])
    out[REFUNDS] = refunds
    holdout = CustomerHoldout.from_json(out[HOLDOUT]) if HOLDOUT in out else CustomerHoldout()
    if not holdout.seen:
        holdout.seen = True  # the batch counts a refund's customer as seen, as any of its events
        out[HOLDOUT] = holdout.to_json()
    out[NEWEST] = max(refund.ts_ms, out.get(NEWEST) or refund.ts_ms)
    return out, None


def net_of_refunds(
    parts: Mapping[str, Any], base_currency: str
) -> tuple[CustomerPurchases | None, CustomerHoldout | None]:
    """The ledger and holdout parts with every refunded order's purchases at their net amount."""
    ledger = CustomerPurchases.from_json(parts[LEDGER]) if LEDGER in parts else None
    holdout = CustomerHoldout.from_json(parts[HOLDOUT]) if HOLDOUT in parts else None
    for order_id in parts.get(REFUNDS) or {}:
        order = order_money(parts, order_id, base_currency)
        if order is None or ledger is None:
            continue
        for event_id, record in order.purchases.items():
            net = order.net(record.amount)
            ledger.purchases[event_id] = record._replace(amount=net)
            if holdout is not None and event_id in holdout.purchases:
                holdout.purchases[event_id] = (holdout.purchases[event_id][0], to_micros(net))
    return ledger, holdout


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
    time_zone: str = UTC_ZONE,
    base_currency: str = DEFAULT_BASE_CURRENCY,
) -> AnalyticsState:
    """The analytics state of the given customers' parts and cost events (sums rebuilt; day
    and month buckets of ``time_zone``, the business time zone)."""
    state = AnalyticsState(holdout=HoldoutTracker(granularity, hashing, time_zone=time_zone))
    newest: int | None = None
    for customer, parts in customers:
        ledger, holdout = net_of_refunds(parts, base_currency)
        if ledger is not None:
            state.ledger.customers[customer] = ledger
        if holdout is not None:
            state.holdout.customers[customer] = holdout
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
    state.costs, state.newest_ms = merged_costs(costs, newest)
    return state


def merged_costs(
    costs: Iterable[Mapping[str, Any]], newest: int | None
) -> tuple[CampaignCosts, int | None]:
    """Every partition's cost events merged, and the newest time of ``newest`` and theirs."""
    merged = CampaignCosts()
    for share in costs:
        merged.merge(CampaignCosts.from_json(dict(share)))
    for ts_ms, *_ in merged.events.values():
        newest = ts_ms if newest is None else max(newest, ts_ms)
    return merged, newest
