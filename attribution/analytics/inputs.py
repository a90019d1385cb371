"""What the customer analytics read, as tables: built from an event table in one pass each.

Every rule here is the rule of the per-customer states (``ledger``, ``holdout``, ``funnel``,
``campaigns``) over all of a log at once:

* purchases (the ledger): one per (customer, event_id), the smallest (time, amount, order_id)
  record when copies differ;
* holdout assignments: per (customer, experiment) the latest by (time, event_id), the first
  in file order among equal ones; holdout purchases: one per (customer, event_id), the
  smallest (time, micro-units); a customer is *seen* by any of its events;
* funnel: unique customers per campaign (``reached``) and per campaign and lower-cased
  interaction, over every touchpoint with a campaign;
* costs: one per event_id, the smallest (time, campaign, channel, micro-units).

Money is in integer micro-units (``micros``) wherever it is summed or compared, so equal
amounts tie exactly however they were split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from numpy.typing import NDArray

from attribution.analytics._common import MICROS, UTC_ZONE, Granularity, distinct
from attribution.analytics.funnel import REACHED, FunnelCounts
from attribution.analytics.holdout import HashMembership
from attribution.io.event_table import ASSIGNMENT, COST, PURCHASE, REFUND, TOUCHPOINT

if TYPE_CHECKING:
    from attribution.analytics.report import AnalyticsState

# Sums of micro-units stay exact in 64-bit integers up to here (a margin below 2**63).
SAFE_MICROS = 2**62


class AmountsTooLarge(ValueError):
    """The amounts of a log add up beyond what exact integer sums can hold."""


def micros_of(amounts: NDArray[np.float64]) -> NDArray[np.int64]:
    """Amounts as integer micro-units, rounded as ``round(amount * 1_000_000)`` does."""
    scaled = np.asarray(amounts, dtype=np.float64) * MICROS
    if scaled.size and not np.all(np.abs(scaled) < SAFE_MICROS):
        raise AmountsTooLarge(
            "an amount is too large to be summed exactly (above 4.6 trillion); "
            "check the purchase and cost amounts of the log"
        )
    return np.rint(scaled).astype(np.int64)


def check_sum(micros: NDArray[np.int64]) -> None:
    """Refuse micro-units whose total could overflow a 64-bit sum."""
    if micros.size and float(np.abs(micros).astype(np.float64).sum()) >= SAFE_MICROS:
        raise AmountsTooLarge(
            "the amounts of the log add up to more than 4.6 trillion, beyond exact sums; "
            "split the log or check its amounts"
        )


def _money(frame: pl.DataFrame, column: str = "amount") -> pl.DataFrame:
    micros = micros_of(frame[column].to_numpy())
    check_sum(micros)
    return frame.with_columns(micros=pl.Series(micros, dtype=pl.Int64))


PURCHASES_SCHEMA = {"customer_id": pl.String, "event_id": pl.String, "ts_ms": pl.Int64,
                    "amount": pl.Float64, "order_id": pl.String, "micros": pl.Int64}  # fmt: skip
ASSIGNMENTS_SCHEMA = {"customer_id": pl.String, "experiment": pl.String, "group": pl.String,
                      "ts_ms": pl.Int64}  # fmt: skip
HOLDOUT_PURCHASES_SCHEMA = {"customer_id": pl.String, "event_id": pl.String, "ts_ms": pl.Int64,
                            "micros": pl.Int64}  # fmt: skip
COSTS_SCHEMA = {"event_id": pl.String, "ts_ms": pl.Int64, "campaign": pl.String,
                "channel": pl.String, "micros": pl.Int64}  # fmt: skip


@dataclass
class AnalyticsInputs:
    """Everything the report reads besides the journeys and the credits (see the module doc)."""

    purchases: pl.DataFrame
    assignments: pl.DataFrame
    seen: pl.Series
    holdout_purchases: pl.DataFrame
    costs: pl.DataFrame
    funnel: FunnelCounts = field(default_factory=FunnelCounts)
    newest_ms: int | None = None
    granularity: Granularity = "month"
    hashing: HashMembership | None = None
    time_zone: str = UTC_ZONE  # of the day and month buckets


def inputs_from_events(
    table: pl.DataFrame,
    hashing: HashMembership | None = None,
    granularity: Granularity = "month",
    time_zone: str = UTC_ZONE,
) -> AnalyticsInputs:
    """The analytics inputs of an event table (any order, repeats allowed)."""
    kind = pl.col("kind")
    # Each table takes only the columns it needs before filtering: a filter copies what it keeps.
    purchases = _money(
        table.select(
            "kind", "line", "customer_id", "event_id", "ts_ms", "amount", "order_id"
        ).filter(kind == PURCHASE)
    )
    ledger = (
        purchases.sort(["customer_id", "event_id", "ts_ms", "amount", "order_id"])
        .unique(subset=["customer_id", "event_id"], keep="first", maintain_order=True)
        .select(list(PURCHASES_SCHEMA))
    )
    holdout_purchases = (
        purchases.sort(["customer_id", "event_id", "ts_ms", "micros", "line"])
        .unique(subset=["customer_id", "event_id"], keep="first", maintain_order=True)
        .select(list(HOLDOUT_PURCHASES_SCHEMA))
    )
    del purchases
    assignments = (
        table.select("kind", "line", "customer_id", "event_id", "campaign", "group", "ts_ms")
        .filter(kind == ASSIGNMENT)
        .rename({"campaign": "experiment"})
        .sort(
            ["customer_id", "experiment", "ts_ms", "event_id", "line"],
            descending=[False, False, True, True, False],
            nulls_last=False,
        )
        .unique(subset=["customer_id", "experiment"], keep="first", maintain_order=True)
        .select(list(ASSIGNMENTS_SCHEMA))
    )
    # Customers with any event of theirs (costs and rates belong to no customer).
    seen = (
        table.select("kind", "customer_id")
        .filter(kind.is_in([TOUCHPOINT, PURCHASE, ASSIGNMENT, REFUND]))["customer_id"]
        .unique()
        .sort()
    )
    costs = (
        _money(
            table.select("kind", "event_id", "ts_ms", "campaign", "channel", "amount").filter(
                kind == COST
            )
        )
        .sort(["event_id", "ts_ms", "campaign", "channel", "micros"])
        .unique(subset=["event_id"], keep="first", maintain_order=True)
        .select(list(COSTS_SCHEMA))
    )
    newest = table["ts_ms"].max() if table.height else None
    touches = table.select("kind", "customer_id", "campaign", "interaction").filter(
        (kind == TOUCHPOINT) & pl.col("campaign").is_not_null()
    )
    return AnalyticsInputs(
        ledger,
        assignments,
        seen,
        holdout_purchases,
        costs,
        funnel_counts(touches),
        None if newest is None else int(newest),  # type: ignore[arg-type]
        granularity,
        hashing,
        time_zone,
    )


def funnel_counts(touches: pl.DataFrame) -> FunnelCounts:
    """Unique customers per campaign, and per campaign and interaction (lower case).

    Counted over integer codes (one hash pass per column), not over the strings themselves.
    """
    from attribution.journey_table import text_codes

    counts = FunnelCounts()
    if touches.height == 0:
        return counts
    customer = _customer_codes(touches["customer_id"])
    campaign, campaigns = text_codes(touches["campaign"])
    interaction, names = text_codes(touches["interaction"])
    # Python's own lower(): Unicode case rules are not the same everywhere.
    lowered = sorted({name.lower() for name in names} - {""})
    lowered_code = np.array([lowered.index(n.lower()) if n.lower() else -1 for n in names]
                            + [-1], dtype=np.int64)  # fmt: skip
    customers = int(customer.max()) + 1
    pairs = distinct(campaign * customers + customer)
    reached = np.bincount(pairs // customers, minlength=len(campaigns))
    for code in np.flatnonzero(reached).tolist():
        counts.counts.setdefault(campaigns[code], {})[REACHED] = int(reached[code])
    name = lowered_code[interaction]  # -1 (the padding) for no interaction
    named = name >= 0
    if named.any():
        width = len(lowered)
        triples = distinct((campaign[named] * width + name[named]) * customers + customer[named])
        per_pair = np.bincount(triples // customers, minlength=len(campaigns) * width)
        for slot in np.flatnonzero(per_pair).tolist():
            code, index = divmod(slot, width)
            counts.counts.setdefault(campaigns[code], {})[lowered[index]] = int(per_pair[slot])
    return counts


def _customer_codes(ids: pl.Series) -> NDArray[np.int64]:
    """A dense integer per distinct id, through a 64-bit hash checked to be collision-free."""
    hashes = ids.hash()
    if hashes.n_unique() == ids.n_unique():
        return np.unique(hashes.to_numpy(), return_inverse=True)[1].astype(np.int64)
    return np.unique(np.array(ids.to_list(), dtype=object), return_inverse=True)[1].astype(np.int64)


def inputs_from_state(state: AnalyticsState) -> AnalyticsInputs:
    """The same inputs from the per-customer states a stream keeps (the business time zone
    is the holdout tracker's)."""
    purchases = [
        (customer, event_id, record.ts_ms, record.amount, record.order_id)
        for customer, states in state.ledger.customers.items()
        for event_id, record in states.purchases.items()
    ]
    ledger = pl.DataFrame(
        purchases, schema={k: v for k, v in PURCHASES_SCHEMA.items() if k != "micros"},
        orient="row",
    )  # fmt: skip
    ledger = _money(ledger)
    holdout = state.holdout
    assignments = [
        (customer, experiment, assigned.group, assigned.ts_ms)
        for customer, states in holdout.customers.items()
        for experiment, assigned in states.assignments.items()
    ]
    holdout_purchases = [
        (customer, event_id, ts_ms, micros)
        for customer, states in holdout.customers.items()
        for event_id, (ts_ms, micros) in states.purchases.items()
    ]
    seen = sorted(c for c, states in holdout.customers.items() if states.seen)
    costs = [
        (event_id, ts_ms, campaign, channel, micros)
        for event_id, (ts_ms, campaign, channel, micros) in state.costs.events.items()
    ]
    funnel = FunnelCounts()
    funnel.merge(state.funnel.totals)
    return AnalyticsInputs(
        ledger,
        pl.DataFrame(assignments, schema=ASSIGNMENTS_SCHEMA, orient="row"),
        pl.Series("customer_id", seen, dtype=pl.String),
        pl.DataFrame(holdout_purchases, schema=HOLDOUT_PURCHASES_SCHEMA, orient="row"),
        pl.DataFrame(costs, schema=COSTS_SCHEMA, orient="row"),
        funnel,
        state.newest_ms,
        holdout.granularity,
        holdout.hashing,
        holdout.time_zone,
    )


def period_labels(
    ts_ms: pl.Expr | pl.Series, granularity: Granularity, time_zone: str = UTC_ZONE
) -> pl.Expr:
    """Period label of epoch-ms times in ``time_zone``: YYYY-MM-DD, YYYY-MM or ``all``."""
    moment = pl.from_epoch(ts_ms if isinstance(ts_ms, pl.Expr) else pl.lit(ts_ms), "ms")
    if time_zone != UTC_ZONE:
        moment = moment.dt.replace_time_zone("UTC").dt.convert_time_zone(time_zone)
    if granularity == "day":
        return moment.dt.strftime("%Y-%m-%d")
    if granularity == "month":
        return moment.dt.strftime("%Y-%m")
    return pl.lit("all")


def customers_of(series: Iterable[str]) -> list[str]:
    """Sorted distinct customer ids."""
    return sorted(set(series))
