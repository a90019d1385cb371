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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from attribution.analytics._common import day_of, exact_group_sums
from attribution.analytics.ledger import PurchaseLedger
from attribution.events import MS_PER_DAY

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


def summary_frame(
    purchases: pl.DataFrame, as_of_ms: int, unit: Unit = "weeks", time_zone: str = "UTC"
) -> pl.DataFrame:
    """Per customer (sorted): frequency, recency, T, monetary, from a purchases table.

    ``purchases`` has customer_id, ts_ms and amount; purchases are collapsed per calendar day
    of ``time_zone``, and those after the end of as_of's day are left out.
    """
    per_unit = _unit_days(unit)
    end_day = day_of(as_of_ms, time_zone)
    day = pl.col("ts_ms") // MS_PER_DAY
    if time_zone != "UTC":
        local = pl.from_epoch("ts_ms", "ms").dt.replace_time_zone("UTC")
        day = local.dt.convert_time_zone(time_zone).dt.date().cast(pl.Int64)
    # Spend per customer and day, and the mean of the repeat days, as exactly rounded float
    # sums (math.fsum): the fitted models are sensitive to the last bit of their inputs.
    days = (
        purchases.with_columns(day=day)
        .filter(pl.col("day") <= end_day)
        .sort("customer_id", "day", "ts_ms", "amount")
        .with_columns(key=pl.struct("customer_id", "day").rank("dense").cast(pl.Int64))
    )
    day_keys = days["key"].to_numpy()
    day_sums = exact_group_sums(day_keys, days["amount"].to_numpy())
    per_day = (
        days.unique("key", keep="first", maintain_order=True)
        .select("customer_id", "day")
        .with_columns(spend=pl.Series(day_sums, dtype=pl.Float64))
    )
    per_customer = per_day.group_by("customer_id", maintain_order=True).agg(
        first=pl.col("day").first(),
        last=pl.col("day").last(),
        frequency=(pl.len() - 1).cast(pl.Int64),
    )
    repeats = per_day.with_columns(n=pl.int_range(pl.len()).over("customer_id")).filter(
        pl.col("n") > 0
    )
    customer_code = repeats["customer_id"].rank("dense").cast(pl.Int64).to_numpy()
    repeat_sums = exact_group_sums(customer_code, repeats["spend"].to_numpy())
    repeat_of = dict(zip(repeats["customer_id"].unique(maintain_order=True).to_list(),
                         repeat_sums.tolist(), strict=True))  # fmt: skip
    # Divided by numpy, one correctly rounded division per value: Polars multiplies by the
    # reciprocal of a constant divisor, which can differ in the last bit.
    first = per_customer["first"].to_numpy()
    frequency = per_customer["frequency"].to_numpy()
    spent = np.array([repeat_of.get(c, 0.0) for c in per_customer["customer_id"].to_list()])
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, spent / np.maximum(frequency, 1), 0.0)
    return per_customer.select(
        "customer_id",
        "frequency",
        recency=pl.Series((per_customer["last"].to_numpy() - first) / per_unit),
        T=pl.Series((end_day - first) / per_unit),
        monetary=pl.Series(monetary, dtype=pl.Float64),
    )


def _summaries(frame: pl.DataFrame) -> dict[str, CustomerSummary]:
    return {
        row["customer_id"]: CustomerSummary(
            row["frequency"], float(row["recency"]), float(row["T"]), float(row["monetary"])
        )
        for row in frame.iter_rows(named=True)
    }


def summarize(
    transactions: Iterable[tuple[str, int, float]], as_of_ms: int, unit: Unit = "weeks"
) -> dict[str, CustomerSummary]:
    """Summary of (customer_id, ts_ms, amount) rows observed up to the end of as_of's day."""
    from attribution.analytics.inputs import micros_of

    rows = list(transactions)
    frame = pl.DataFrame(
        rows, schema={"customer_id": pl.String, "ts_ms": pl.Int64, "amount": pl.Float64},
        orient="row",
    )  # fmt: skip
    frame = frame.with_columns(micros=pl.Series(micros_of(frame["amount"].to_numpy())))
    return _summaries(summary_frame(frame, as_of_ms, unit))


def summarize_ledger(
    ledger: PurchaseLedger, as_of_ms: int, unit: Unit = "weeks"
) -> dict[str, CustomerSummary]:
    """:func:`summarize` over every purchase held by a ledger."""
    from attribution.analytics.rfm import purchases_of_ledger

    return _summaries(summary_frame(purchases_of_ledger(ledger), as_of_ms, unit))
