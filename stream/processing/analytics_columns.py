"""A partition's analytics parts as columns and sums: what a worker ships for ``/analytics``.

The report reads tables (:class:`attribution.analytics.inputs.AnalyticsInputs`): purchases,
holdout assignments and purchases, the customers seen, costs, and funnel counts. Rebuilding
the library's per-customer objects from every customer's parts to get those tables (the
holdout contribution, the funnel sets, daily revenue: sums the report does not read) was most
of a cold answer. Here each partition's parts become those tables' columns in one pass, the
funnel counts are the partition's (kept in ``P|funnel`` as events arrive; partitions hold
disjoint customers, so the counts add up), and the asking worker concatenates the columns:
the inputs are those ``inputs_from_state(state_from_parts(...))`` gives, which the tests
check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

import polars as pl

from attribution.analytics._common import UTC_ZONE, Granularity
from attribution.analytics.funnel import REACHED, FunnelCounts
from attribution.analytics.holdout import HashMembership
from attribution.analytics.inputs import (
    ASSIGNMENTS_SCHEMA,
    COSTS_SCHEMA,
    HOLDOUT_PURCHASES_SCHEMA,
    PURCHASES_SCHEMA,
    AnalyticsInputs,
    check_sum,
    micros_of,
)
from attribution.money import DEFAULT_BASE_CURRENCY
from stream.processing.analytics_parts import (
    FUNNEL,
    HOLDOUT,
    LEDGER,
    NEWEST,
    REFUNDS,
    merged_costs,
    net_of_refunds,
)

# Column names of a partition's share (JSON lists; customers as indexes into "customers").
_LEDGER_COLUMNS = ("customer", "event_id", "ts_ms", "amount", "order_id")
_ASSIGNMENT_COLUMNS = ("customer", "experiment", "group", "ts_ms")
_HOLDOUT_COLUMNS = ("customer", "event_id", "ts_ms", "micros")


def share_columns(
    customers: Iterable[tuple[str, Mapping[str, Any]]],
    base_currency: str = DEFAULT_BASE_CURRENCY,
    funnel_sums: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The given customers' parts as columns, their funnel counts summed, their newest time.

    ``customers`` lists the customers with their ids; the columns name a customer by its index
    in it. Purchases of refunded orders are at their net amount (``net_of_refunds``).
    ``funnel_sums``: the partition's ``P|funnel`` (``aggregates.record_funnel``), the funnel
    counts when it counted every customer and entry of the funnel parts; else (or without it)
    they are counted here. Pass it only when a batch's customer and aggregate writes commit
    together (``exactly_once``): otherwise a redelivered event whose customer write landed but
    whose ``P|funnel`` write did not is counted by neither, and the reverse twice.
    """
    ids: list[str] = []
    ledger: dict[str, list[Any]] = {name: [] for name in _LEDGER_COLUMNS}
    assignments: dict[str, list[Any]] = {name: [] for name in _ASSIGNMENT_COLUMNS}
    held: dict[str, list[Any]] = {name: [] for name in _HOLDOUT_COLUMNS}
    seen: list[int] = []
    funnels: list[Mapping[str, Sequence[str]]] = []
    newest: int | None = None
    for index, (customer, parts) in enumerate(customers):
        ids.append(customer)
        if parts.get(REFUNDS):
            net_ledger, net_holdout = net_of_refunds(parts, base_currency)
            ledger_part = None if net_ledger is None else net_ledger.to_json()
            holdout_part = None if net_holdout is None else net_holdout.to_json()
        else:
            ledger_part, holdout_part = parts.get(LEDGER), parts.get(HOLDOUT)
        if ledger_part is not None:
            for event_id, (ts_ms, amount, order_id) in ledger_part["purchases"].items():
                ledger["customer"].append(index)
                ledger["event_id"].append(event_id)
                ledger["ts_ms"].append(ts_ms)
                ledger["amount"].append(amount)
                ledger["order_id"].append(order_id)
        if holdout_part is not None:
            for experiment, ts_ms, _, group in holdout_part["assignments"]:
                assignments["customer"].append(index)
                assignments["experiment"].append(experiment)
                assignments["group"].append(group)
                assignments["ts_ms"].append(ts_ms)
            for event_id, (ts_ms, micros) in holdout_part["purchases"].items():
                held["customer"].append(index)
                held["event_id"].append(event_id)
                held["ts_ms"].append(ts_ms)
                held["micros"].append(micros)
            if holdout_part["seen"]:
                seen.append(index)
        funnel = parts.get(FUNNEL)
        if funnel:
            funnels.append(funnel)
        stamp = parts.get(NEWEST)
        if stamp is not None:
            newest = stamp if newest is None else max(newest, stamp)
    return {
        "customers": ids,
        "ledger": ledger,
        "assignments": assignments,
        "holdout_purchases": held,
        "seen": seen,
        "funnel": funnel_sums["counts"]
        if funnel_sums is not None and _sums_cover(funnel_sums, funnels)
        else _funnel_counts(funnels),
        "newest": newest,
    }


def _sums_cover(funnel_sums: Mapping[str, Any], funnels: Sequence[Mapping[str, Any]]) -> bool:
    """True when ``P|funnel`` counted every customer and every entry of the funnel parts.

    The sums only grow, by what a part gained: a worker that grew parts without counting them
    (an older version, during a rolling upgrade) leaves fewer customers (``n``) or fewer counts
    than the parts hold, and the share then counts from the parts. Comparing totals is cheap
    (no per-pair counting) and catches any drift in one direction.
    """
    if funnel_sums["n"] != len(funnels):
        return False
    counted = sum(n for bucket in funnel_sums["counts"].values() for n in bucket.values())
    held = sum(len(funnel) + sum(map(len, funnel.values())) for funnel in funnels)
    return counted == held


def _funnel_counts(funnels: Iterable[Mapping[str, Sequence[str]]]) -> dict[str, dict[str, int]]:
    """campaign -> interaction (and ``reached``) -> customers, over per-customer funnel parts.

    A customer's part lists each campaign once and each interaction once per campaign, so
    counting the pairs counts customers (Counter counts in C: 2.7 million pairs at 60,000
    customers of the generated log).
    """
    reached = Counter(chain.from_iterable(funnels))
    named: Counter[tuple[str, str]] = Counter(
        (campaign, name)
        for funnel in funnels
        for campaign, names in funnel.items()
        for name in names
    )
    out: dict[str, dict[str, int]] = {c: {REACHED: n} for c, n in reached.items()}
    for (campaign, name), n in named.items():
        out[campaign][name] = n
    return out


def _frame(
    shares: Sequence[Mapping[str, Any]], table: str, schema: Mapping[str, Any]
) -> pl.DataFrame:
    """One table of every share, customers named by id, sorted by customer (stable)."""
    frames = []
    for share in shares:
        columns = share[table]
        ids = pl.Series(share["customers"], dtype=pl.String)
        frames.append(
            pl.DataFrame(
                {
                    name: ids.gather(columns["customer"])
                    if name == "customer_id"
                    else pl.Series(columns[name], dtype=dtype)
                    for name, dtype in schema.items()
                }
            )
        )
    if not frames:
        return pl.DataFrame(schema={k: v for k, v in schema.items()})
    return pl.concat(frames).sort("customer_id", maintain_order=True)


def inputs_from_shares(
    shares: Sequence[Mapping[str, Any]],
    costs: Iterable[Mapping[str, Any]],
    hashing: HashMembership | None,
    granularity: Granularity = "month",
    time_zone: str = UTC_ZONE,
) -> AnalyticsInputs:
    """The report's inputs from every partition's :func:`share_columns` and cost events."""
    ledger_schema = {k: v for k, v in PURCHASES_SCHEMA.items() if k != "micros"}
    ledger = _frame(shares, "ledger", ledger_schema)
    micros = micros_of(ledger["amount"].to_numpy())
    check_sum(micros)
    ledger = ledger.with_columns(micros=pl.Series(micros, dtype=pl.Int64))
    seen = pl.concat(
        [
            pl.Series("customer_id", share["customers"], dtype=pl.String).gather(share["seen"])
            for share in shares
        ]
        or [pl.Series("customer_id", [], dtype=pl.String)]
    ).sort()
    funnel = FunnelCounts()
    for share in shares:
        funnel.merge(FunnelCounts(share["funnel"]))
    newest = max((s["newest"] for s in shares if s["newest"] is not None), default=None)
    merged, newest = merged_costs(costs, newest)
    cost_rows = [(event_id, *record) for event_id, record in merged.events.items()]
    return AnalyticsInputs(
        ledger,
        _frame(shares, "assignments", ASSIGNMENTS_SCHEMA),
        seen,
        _frame(shares, "holdout_purchases", HOLDOUT_PURCHASES_SCHEMA),
        pl.DataFrame(cost_rows, schema=COSTS_SCHEMA, orient="row"),
        funnel,
        newest,
        granularity,
        hashing,
        time_zone,
    )
