"""Amounts in one currency, net of refunds: what every model and report sums.

:func:`apply_money` takes an event table (attribution/io/event_table.py) and returns it with
every purchase and cost amount in the base currency and every purchase net of its order's
refunds, and the records that cannot be applied, each with its reason:

* **Currencies.** An amount without a currency, or in the base currency, is taken as it is.
  Any other is multiplied by the rate *in force at the event's time*: the latest rate of that
  currency whose time is at or before it, from the rates file (``business.rates_file``) or from
  ``rate`` events of the log (at the same time, the event's wins). An amount in a currency with
  no rate in force is an invalid record with that reason, never summed as it is.
* **Refunds.** A refund names an order (``customer_id``, ``order_id``) of the log; a refund of
  an order the log does not hold is invalid. Its currency, when given, must be the order's. The
  refunds of an order, in time order, may add up to its amount and no more (one that would
  exceed it is invalid). Each purchase of the order is then worth ``amount x (1 - refunded /
  order amount)``: the same fraction of the order is taken off every purchase of it, before its
  conversion (so a refund is valued at the rate of the purchase it takes back, and the exchange
  difference is not revenue). A fully refunded order still converted its journey (a conversion
  of value 0).

Every model credits the order's value in proportion to its credit, so a refund lowers each
channel's value by its share of the order; the ledger (RFM monetary, lifetime value), revenue
share, holdout revenue and campaign ROI all read the same net amounts. A log without refunds
and without amounts in another currency comes back unchanged, bit for bit.

Rate events are consumed here (they leave the table); refund events stay (a customer event,
seen at its time) but nothing sums their amounts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from attribution.analytics._common import MICROS
from attribution.events import parse_timestamp
from attribution.io import InvalidRow
from attribution.io.event_table import COST, PURCHASE, RATE, REFUND

DEFAULT_BASE_CURRENCY = "EUR"


class RatesFileError(ValueError):
    """The rates file cannot be used; the message names the line and the problem."""


@dataclass(frozen=True)
class Rate:
    """One rate: from ``since_ms`` on, one ``currency`` is worth ``rate`` base currency."""

    currency: str
    since_ms: int
    rate: float


@dataclass(frozen=True)
class MoneySettings:
    """The base currency and the rates known beside the log (the rates file)."""

    base_currency: str = DEFAULT_BASE_CURRENCY
    rates: tuple[Rate, ...] = field(default_factory=tuple)


def _ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def read_rates_file(path: str | Path) -> tuple[Rate, ...]:
    """Rates from a CSV file with the columns ``currency,valid_from,rate``.

    ``valid_from`` is ISO 8601 with an offset, or a date (``2026-01-01``, midnight UTC).
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise RatesFileError(f"rates file {source}: {error.strerror or error}") from None
    rows = csv.DictReader(text.splitlines())
    missing = {"currency", "valid_from", "rate"} - set(rows.fieldnames or ())
    if missing:
        raise RatesFileError(
            f"rates file {source}: needs the columns currency,valid_from,rate "
            f"(missing {', '.join(sorted(missing))})"
        )
    out = []
    for line, row in enumerate(rows, start=2):
        where = f"rates file {source}, line {line}"
        currency = (row["currency"] or "").strip()
        if not currency:
            raise RatesFileError(f"{where}: no currency")
        when = (row["valid_from"] or "").strip()
        try:
            moment = parse_timestamp(when + ("T00:00:00Z" if len(when) == 10 else ""))
        except ValueError as error:
            raise RatesFileError(f"{where}: valid_from {when!r}: {error}") from None
        try:
            rate = float(row["rate"])
        except (TypeError, ValueError):
            raise RatesFileError(f"{where}: rate {row['rate']!r} is not a number") from None
        if not np.isfinite(rate) or rate <= 0:
            raise RatesFileError(f"{where}: rate must be a finite number greater than 0")
        out.append(Rate(currency, _ms(moment), rate))
    return tuple(out)


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _rate_table(table: pl.DataFrame, money: MoneySettings) -> pl.DataFrame:
    """Every rate: currency, since (ms), rate; file rates first, then the log's in file order.

    At the same currency and time the later one wins: a rate event over the file, and the
    last event in file order over an earlier one (repeats of an event_id: the first copy).
    """
    file_rates = pl.DataFrame(
        {
            "currency": [r.currency for r in money.rates],
            "since": [r.since_ms for r in money.rates],
            "rate": [r.rate for r in money.rates],
            "order": list(range(len(money.rates))),
        },
        schema={"currency": pl.String, "since": pl.Int64, "rate": pl.Float64, "order": pl.Int64},
    )
    events = (
        table.filter(pl.col("kind") == RATE)
        .unique(subset=["event_id"], keep="first", maintain_order=True)
        .select(
            pl.col("currency").cast(pl.String),
            pl.col("ts_ms").alias("since"),
            pl.col("amount").alias("rate"),
            (pl.col("line") + len(money.rates)).alias("order"),
        )
    )
    return (
        pl.concat([file_rates, events])
        .sort("currency", "since", "order")
        .unique(subset=["currency", "since"], keep="last", maintain_order=True)
        .select("currency", "since", "rate")
    )


def _converted(
    table: pl.DataFrame, rates: pl.DataFrame, base: str
) -> tuple[pl.DataFrame, list[InvalidRow]]:
    """Purchase and cost amounts times the rate in force; rows with no rate are invalid."""
    currency = pl.col("currency").cast(pl.String)
    foreign = pl.col("kind").is_in([PURCHASE, COST]) & currency.is_not_null() & (currency != base)
    marked = table.with_row_index("_row").with_columns(_foreign=foreign)
    needing = marked.filter(pl.col("_foreign")).select(
        "_row", "line", "ts_ms", "amount", currency.alias("currency")
    )
    if needing.height == 0:
        return table, []
    found = needing.sort("ts_ms").join_asof(
        rates.rename({"since": "ts_ms"}).sort("ts_ms"),
        on="ts_ms",
        by="currency",
        strategy="backward",
        # Sorted by time as a whole, hence within each currency (Polars cannot check that).
        check_sortedness=False,
    )
    invalid = []
    missing = found.filter(pl.col("rate").is_null())
    if missing.height:
        first = rates.group_by("currency").agg(pl.col("since").min())
        firsts = dict(first.iter_rows())
        for line, ts_ms, code in missing.select("line", "ts_ms", "currency").iter_rows():
            reason = missing_rate_problem(code, base, int(ts_ms), firsts.get(code))
            invalid.append(InvalidRow(int(line), reason))
    rows = found.filter(pl.col("rate").is_not_null())
    amounts = table["amount"].to_numpy().copy()
    index = rows["_row"].to_numpy()
    amounts[index] = rows["amount"].to_numpy() * rows["rate"].to_numpy()
    return table.with_columns(amount=pl.Series(amounts, dtype=pl.Float64)), invalid


def missing_rate_problem(currency: str, base: str, ts_ms: int, first_since_ms: int | None) -> str:
    """Why an amount in ``currency`` at ``ts_ms`` cannot be converted (the rule of batch and
    stream); ``first_since_ms``: when the first rate of that currency starts (None: none)."""
    hint = (
        f"the first {currency} rate is from {_iso(first_since_ms)}"
        if first_since_ms is not None
        else f"no {currency} rate at all: add one to the rates file (business.rates_file) "
        "or send a rate event"
    )
    return (
        f"amount in {currency} without an exchange rate into the base currency {base} "
        f"at {_iso(ts_ms)} ({hint})"
    )


def refund_problem(
    customer: str,
    order: str,
    refund_micros: int,
    refund_currency: str | None,
    order_micros: int | None,
    order_currency: str,
    refunded_micros: int,
) -> str | None:
    """Why a refund cannot apply to its order (None: it can); the rule of batch and stream.

    ``order_micros`` is the order's amount in its own currency (None: no such order of this
    customer), ``refunded_micros`` what earlier refunds (in time order) took already; amounts
    in integer micro-units. A refund without a currency is in the order's.
    """
    if order_micros is None:
        return f"refund for unknown order {order!r} of customer {customer!r}"
    if refund_currency is not None and refund_currency != order_currency:
        return f"refund in {refund_currency} of order {order!r}, which is in {order_currency}"
    if refunded_micros + refund_micros > order_micros:
        return (
            f"refund of {refund_micros / MICROS:.2f} would take order {order!r} below zero "
            f"({(order_micros - refunded_micros) / MICROS:.2f} of {order_micros / MICROS:.2f} "
            "left to refund)"
        )
    return None


def rate_in_force(rates: list[Rate] | tuple[Rate, ...], currency: str, ts_ms: int) -> float | None:
    """The rate of ``currency`` at ``ts_ms``: the latest at or before it (None: no rate yet).

    ``rates`` in the order they became known (file first, then rate events in arrival order):
    at equal times the later one wins, as :func:`apply_money` does over a whole log.
    """
    best: Rate | None = None
    for rate in rates:
        if (
            rate.currency == currency
            and rate.since_ms <= ts_ms
            and (best is None or rate.since_ms >= best.since_ms)
        ):
            best = rate
    return None if best is None else best.rate


def _refunded(
    table: pl.DataFrame, original: pl.DataFrame, base: str, left_out: list[int]
) -> tuple[pl.DataFrame, list[InvalidRow]]:
    """Purchases net of their orders' refunds (``original``: amounts before conversion;
    ``left_out``: lines of purchases already found invalid, which make no order)."""
    refunds = (
        original.filter(pl.col("kind") == REFUND)
        .unique(subset=["customer_id", "event_id"], keep="first", maintain_order=True)
        .select(
            "line",
            "event_id",
            "customer_id",
            "order_id",
            "ts_ms",
            "amount",
            pl.col("currency").cast(pl.String),
        )  # fmt: skip
    )
    if refunds.height == 0:
        return table, []
    purchases = original.with_row_index("_row").filter(
        (pl.col("kind") == PURCHASE) & ~pl.col("line").is_in(left_out)
    )
    # The ledger's copy of each purchase event (analytics/inputs.py), summed per order.
    orders = (
        purchases.sort("customer_id", "event_id", "ts_ms", "amount", "order_id")
        .unique(subset=["customer_id", "event_id"], keep="first", maintain_order=True)
        .with_columns(micros=(pl.col("amount") * MICROS).round(0).cast(pl.Int64))
        .group_by("customer_id", "order_id")
        .agg(
            pl.col("micros").sum().alias("total"),
            pl.col("currency").cast(pl.String).fill_null(base).first().alias("order_currency"),
        )
    )
    joined = (
        refunds.with_columns(micros=(pl.col("amount") * MICROS).round(0).cast(pl.Int64))
        .join(orders, on=["customer_id", "order_id"], how="left")
        .sort("customer_id", "order_id", "ts_ms", "event_id", "line")
    )
    invalid: list[InvalidRow] = []
    taken: dict[tuple[str, str], int] = {}
    for line, customer, order, micros, total, order_currency, currency in joined.select(
        "line", "customer_id", "order_id", "micros", "total", "order_currency", "currency"
    ).iter_rows():
        done = taken.get((customer, order), 0)
        reason = refund_problem(customer, order, micros, currency, total, order_currency, done)
        if reason is not None:
            invalid.append(InvalidRow(line, reason))
            continue
        taken[(customer, order)] = done + micros
    if not taken:
        return table, invalid
    kept = pl.DataFrame(
        {
            "customer_id": [k[0] for k in taken],
            "order_id": [k[1] for k in taken],
            "refunded": list(taken.values()),
        },
        schema={"customer_id": pl.String, "order_id": pl.String, "refunded": pl.Int64},
    )
    factors = orders.join(kept, on=["customer_id", "order_id"], how="inner").with_columns(
        factor=pl.lit(1.0) - pl.col("refunded").cast(pl.Float64) / pl.col("total")
    )
    rows = purchases.join(factors, on=["customer_id", "order_id"], how="inner")
    amounts = table["amount"].to_numpy().copy()
    index = rows["_row"].to_numpy()
    # Zero for an order refunded in full (the factor's float could leave a dust of 1e-17).
    amounts[index] = np.where(
        rows["refunded"].to_numpy() == rows["total"].to_numpy(),
        0.0,
        amounts[index] * rows["factor"].to_numpy(),
    )
    return table.with_columns(amount=pl.Series(amounts, dtype=pl.Float64)), invalid


def apply_money(
    table: pl.DataFrame, money: MoneySettings | None = None
) -> tuple[pl.DataFrame, list[InvalidRow]]:
    """The table with amounts in the base currency and net of refunds, and what was invalid
    (see the module doc). The invalid records are left out of the returned table."""
    money = money or MoneySettings()
    base = money.base_currency
    kinds = table["kind"]
    currency = table["currency"].cast(pl.String)
    foreign = currency.is_not_null() & (currency != base) & kinds.is_in([PURCHASE, COST])
    if not kinds.is_in([REFUND, RATE]).any() and not foreign.any():
        return table, []
    rates = _rate_table(table, money)
    converted, invalid = _converted(table, rates, base)
    # Refunds are fractions of their order in its own currency: measured on the amounts as
    # they came, applied to the converted ones.
    netted, refund_invalid = _refunded(converted, table, base, [row.line for row in invalid])
    invalid += refund_invalid
    bad = [row.line for row in invalid]
    out = netted.filter((pl.col("kind") != RATE) & ~pl.col("line").is_in(bad))
    return out, sorted(invalid, key=lambda row: row.line)


def merged_invalid(first: list[InvalidRow], second: list[InvalidRow]) -> list[InvalidRow]:
    """Two lists of invalid records as one, by line."""
    return sorted([*first, *second], key=lambda row: row.line)
