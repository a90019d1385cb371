"""Per-customer summary for lifetime-value models (frequency, recency, T, monetary).

Purchases are collapsed per UTC day (several orders on one day are one transaction whose
value is their sum). Per customer, from the day of the first purchase:

* ``frequency`` x: number of repeat transactions (days with a purchase, minus the first);
* ``recency`` t_x: time from the first to the last transaction;
* ``T``: time from the first transaction to the end of observation (the day of ``as_of``);
* ``monetary``: mean value of the repeat transactions (0 when there is none).

Time is in days or weeks (``unit``). This matches the ``lifetimes`` package's
``summary_data_from_transaction_data`` with daily periods.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from attribution.analytics._common import day_of
from attribution.analytics.ledger import PurchaseLedger

Unit = Literal["days", "weeks"]
_UNIT_DAYS = {"days": 1.0, "weeks": 7.0}


@dataclass(frozen=True)
class CustomerSummary:
    """Frequency, recency, age and repeat-spend of one customer."""

    frequency: int
    recency: float
    T: float
    monetary: float


def _unit_days(unit: Unit) -> float:
    try:
        return _UNIT_DAYS[unit]
    except KeyError:
        raise ValueError(f"time unit {unit!r} must be 'days' or 'weeks'") from None


def summarize(
    transactions: Iterable[tuple[str, int, float]], as_of_ms: int, unit: Unit = "weeks"
) -> dict[str, CustomerSummary]:
    """Summary of (customer_id, ts_ms, amount) rows observed up to the end of as_of's day."""
    per_unit = _unit_days(unit)
    end_day = day_of(as_of_ms)
    days: dict[str, dict[int, list[float]]] = {}
    for customer, ts_ms, amount in transactions:
        day = day_of(ts_ms)
        if day <= end_day:
            days.setdefault(customer, {}).setdefault(day, []).append(amount)
    out: dict[str, CustomerSummary] = {}
    for customer in sorted(days):
        by_day = days[customer]
        ordered = sorted(by_day)
        first, last = ordered[0], ordered[-1]
        repeats = [math.fsum(by_day[d]) for d in ordered[1:]]
        out[customer] = CustomerSummary(
            frequency=len(repeats),
            recency=(last - first) / per_unit,
            T=(end_day - first) / per_unit,
            monetary=math.fsum(repeats) / len(repeats) if repeats else 0.0,
        )
    return out


def summarize_ledger(
    ledger: PurchaseLedger, as_of_ms: int, unit: Unit = "weeks"
) -> dict[str, CustomerSummary]:
    """:func:`summarize` over every purchase held by a ledger."""
    rows = (
        (customer, record.ts_ms, record.amount)
        for customer, state in ledger
        for record in state.purchases.values()
    )
    return summarize(rows, as_of_ms, unit)
