"""Purchase ledger: every customer's purchases, the state behind RFM and lifetime value.

A customer's purchases are kept by event_id, so adding the same event twice or merging two
copies of a partition changes nothing, and the result never depends on arrival order. If two
records share an event_id but differ, the smaller (time, amount, order_id) wins: a rule that
does not depend on which copy came first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from attribution.events import Purchase


class PurchaseRecord(NamedTuple):
    """What analytics keeps of one purchase."""

    ts_ms: int
    amount: float
    order_id: str


@dataclass
class CustomerPurchases:
    """One customer's purchases keyed by event_id (a grow-only, mergeable set)."""

    purchases: dict[str, PurchaseRecord] = field(default_factory=dict)

    def add(self, event_id: str, record: PurchaseRecord) -> bool:
        """Record one purchase; return True when the state changed."""
        known = self.purchases.get(event_id)
        if known is not None and known <= record:
            return False
        self.purchases[event_id] = record
        return True

    def add_event(self, event: Purchase) -> bool:
        """Record a validated purchase event; return True when the state changed."""
        return self.add(event.event_id, PurchaseRecord(event.ts_ms, event.amount, event.order_id))

    def merge(self, other: CustomerPurchases) -> None:
        """Union with another copy of this customer's purchases."""
        for event_id, record in other.purchases.items():
            self.add(event_id, record)

    def ordered(self, until_ms: int | None = None) -> list[PurchaseRecord]:
        """Purchases in event order (time, then event_id), optionally up to ``until_ms``."""
        items = sorted(self.purchases.items(), key=lambda kv: (kv[1].ts_ms, kv[0]))
        return [r for _, r in items if until_ms is None or r.ts_ms <= until_ms]

    def revenue(self, since_ms: int | None = None, until_ms: int | None = None) -> float:
        """Exactly rounded revenue of purchases with since < ts <= until (bounds optional)."""
        low = -math.inf if since_ms is None else since_ms
        high = math.inf if until_ms is None else until_ms
        return math.fsum(r.amount for r in self.purchases.values() if low < r.ts_ms <= high)

    def to_json(self) -> dict[str, Any]:
        """JSON object: event_id -> [ts_ms, amount, order_id]."""
        return {"purchases": {k: list(v) for k, v in sorted(self.purchases.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustomerPurchases:
        """Inverse of :meth:`to_json`."""
        return cls(
            {
                k: PurchaseRecord(int(v[0]), float(v[1]), str(v[2]))
                for k, v in data["purchases"].items()
            }
        )


@dataclass
class PurchaseLedger:
    """Purchases of many customers; partitions of it merge by customer."""

    customers: dict[str, CustomerPurchases] = field(default_factory=dict)

    def add(self, event: Purchase) -> bool:
        """Record one purchase event; return True when the state changed."""
        state = self.customers.setdefault(event.customer_id, CustomerPurchases())
        return state.add_event(event)

    def add_all(self, events: Iterable[object]) -> PurchaseLedger:
        """Fold every purchase among ``events`` (other event types are ignored)."""
        for event in events:
            if isinstance(event, Purchase):
                self.add(event)
        return self

    def merge(self, other: PurchaseLedger) -> None:
        """Union with another ledger (e.g. another stream partition)."""
        for customer, state in other.customers.items():
            self.customers.setdefault(customer, CustomerPurchases()).merge(state)

    def __iter__(self) -> Iterator[tuple[str, CustomerPurchases]]:
        return iter(sorted(self.customers.items()))

    def to_json(self) -> dict[str, Any]:
        """JSON object: customer -> :meth:`CustomerPurchases.to_json`."""
        return {"customers": {c: s.to_json() for c, s in sorted(self.customers.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PurchaseLedger:
        """Inverse of :meth:`to_json`."""
        return cls({c: CustomerPurchases.from_json(s) for c, s in data["customers"].items()})
