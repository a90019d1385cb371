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

import orjson
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
# How a customer's parts JSON names its funnel part, opening its object.
_FUNNEL_KEY = b'"' + FUNNEL.encode() + b'":{'


def share_columns(
    customers: Iterable[tuple[str, Mapping[str, Any]]],
    base_currency: str = DEFAULT_BASE_CURRENCY,
    funnel_sums: Mapping[str, Any] | None = None,
    funnel_texts: Sequence[bytes] | None = None,
) -> dict[str, Any]:
    """The given customers' parts as columns, their funnel counts summed, their newest time.

    ``customers`` lists the customers with their ids; the columns name a customer by its index
    in it. Purchases of refunded orders are at their net amount (``net_of_refunds``).
    ``funnel_sums``: the partition's ``P|funnel`` (``aggregates.record_funnel``), the funnel
    counts when it counted every customer and entry of the funnel parts; else (or without it)
    they are counted here. Pass it only when a batch's customer and aggregate writes commit
    together (``exactly_once``): otherwise a redelivered event whose customer write landed but
    whose ``P|funnel`` write did not is counted by neither, and the reverse twice.
    ``funnel_texts``: the customers' funnel parts as JSON objects (:func:`split_funnel`), when
    their parts were read without them; they are parsed only if the sums do not cover them.
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
    if funnel_texts is not None:
        tally = _text_tally(funnel_texts)
    else:
        tally = (len(funnels), _entries(funnels))
    if funnel_sums is None or not _sums_cover(funnel_sums, *tally):
        if funnel_texts is not None:
            funnels = [f for f in orjson.loads(b"[" + b",".join(funnel_texts) + b"]") if f]
        counts = _funnel_counts(funnels)
    else:
        counts = funnel_sums["counts"]
    return {
        "customers": ids,
        "ledger": ledger,
        "assignments": assignments,
        "holdout_purchases": held,
        "seen": seen,
        "funnel": counts,
        "newest": newest,
    }


def _entries(funnels: Iterable[Mapping[str, Sequence[str]]]) -> int:
    """Campaigns and interactions in funnel parts."""
    return sum(len(funnel) + sum(map(len, funnel.values())) for funnel in funnels)


def _text_tally(texts: Iterable[bytes]) -> tuple[int, int]:
    """(funnel parts that are not empty, their campaigns and interactions), from their JSON.

    A funnel part is an object of lists of strings, so its entries are its strings: without a
    backslash every quote delimits one, and counting them is a C-level pass per part.
    """
    parts = entries = 0
    for text in texts:
        if text == b"{}":
            continue
        parts += 1
        if b"\\" in text:
            entries += _entries([orjson.loads(text)])
        else:
            entries += text.count(b'"') // 2
    return parts, entries


def split_funnel(text: bytes) -> tuple[bytes, bytes] | None:
    """A customer's parts as orjson wrote them (compact) without the funnel part, and the
    funnel part's JSON object; ``None`` when there is no funnel part or it holds a backslash
    (then parse the whole text).

    The funnel is most of a customer's parts (58% of their JSON in the benchmark log) and a
    share needs only its tally when ``P|funnel`` covers it (:func:`share_columns`). In valid
    JSON ``"f":{`` can only be the funnel's key and the opening of its value (a quote inside a
    string is escaped), and the funnel's object holds lists of strings, no object: it ends at
    the first ``}`` outside a string, i.e. after an even number of quotes when none is escaped.
    """
    start = text.find(_FUNNEL_KEY)
    if start < 0:
        return None
    opening = start + len(_FUNNEL_KEY) - 1
    end = text.find(b"}", opening)
    while end >= 0 and text.count(b'"', opening, end) % 2:
        end = text.find(b"}", end + 1)
    if end < 0 or text.find(b"\\", opening, end) >= 0:
        return None
    funnel = text[opening : end + 1]
    if text[end + 1 : end + 2] == b",":
        return text[:start] + text[end + 2 :], funnel
    if text[start - 1 : start] == b",":
        return text[: start - 1] + text[end + 1 :], funnel
    return text[:start] + text[end + 1 :], funnel


def _sums_cover(funnel_sums: Mapping[str, Any], parts: int, entries: int) -> bool:
    """True when ``P|funnel`` counted every customer and every entry of the funnel parts
    (``parts`` non-empty funnel parts holding ``entries`` campaigns and interactions).

    The sums only grow, by what a part gained: a worker that grew parts without counting them
    (an older version, during a rolling upgrade) leaves fewer customers (``n``) or fewer counts
    than the parts hold, and the share then counts from the parts. Comparing totals is cheap
    (no per-pair counting) and catches any drift in one direction.
    """
    if funnel_sums["n"] != parts:
        return False
    counted = sum(n for bucket in funnel_sums["counts"].values() for n in bucket.values())
    return bool(counted == entries)


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
