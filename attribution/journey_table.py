"""Journeys of a whole event table, as columns: the batch engine's and the report's input.

:func:`build_journey_table` keeps the customer events of an event table (touchpoints and
purchases), drops repeats of a (customer_id, event_id) keeping the first in file order, sorts
them by (customer_id, time, event_id) and runs the journey kernel over all of them at once.

The sorted events are held as numpy arrays, text as integer codes into small name lists
(customers in id order, channels and campaigns in order of first appearance), so that what
follows (path table, credits per campaign) gathers integers, not strings. Columns needed only
here and there (event and order ids) are gathered from the event table on demand.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from numpy.typing import NDArray

from attribution.analytics._common import distinct
from attribution.events import MS_PER_DAY
from attribution.io.event_table import PURCHASE, TOUCHPOINT
from attribution.journey_kernel import CONVERTED, NULL, UNATTRIBUTED, JourneyArrays, journey_arrays
from attribution.paths import PathTable

if TYPE_CHECKING:
    from attribution.journeys import Journey, JourneyRules

Ints = NDArray[np.int64]


def text_codes(values: pl.Series) -> tuple[NDArray[np.int64], list[str]]:
    """Integer code of each value (-1 for null) and the names, in order of first appearance."""
    if values.len() == 0 or values.null_count() == values.len():
        return np.full(values.len(), -1, np.int64), []
    # Polars' categorical codes are one hash pass; renumbered by first appearance here.
    physical = values.cast(pl.Categorical).to_physical().to_numpy()
    present = ~np.isnan(physical) if physical.dtype.kind == "f" else np.ones(len(physical), bool)
    raw = np.where(present, physical, 0).astype(np.int64)
    # First row of each code, without sorting: written backwards, the first write stays.
    rows_present = np.flatnonzero(present)
    first_row = np.full(int(raw.max()) + 1, len(raw), np.int64)
    first_row[raw[rows_present][::-1]] = rows_present[::-1]
    distinct = np.flatnonzero(first_row < len(raw))
    rows = first_row[distinct]
    by_appearance = np.argsort(rows, kind="stable")
    renumber = np.full(int(distinct.max()) + 1, -1, np.int64)
    renumber[distinct[by_appearance]] = np.arange(len(distinct))
    codes = np.where(present, renumber[raw], -1)
    names = values.gather(rows[by_appearance]).to_list()
    return codes, names


@dataclass(frozen=True)
class CustomerEvents:
    """De-duplicated customer events in journey order (customer id, time, event id).

    ``source`` is each event's row in ``table`` (the whole event table, in file order), for
    the columns kept only there.
    """

    table: pl.DataFrame
    source: Ints
    customer: Ints  # code into ``customers`` (sorted ids)
    customers: list[str]
    ts_ms: Ints
    is_purchase: NDArray[np.bool_]
    amount: NDArray[np.float64]
    channel: Ints  # code into ``channels`` (-1: none)
    channels: list[str]
    campaign: Ints  # code into ``campaigns`` (-1: none)
    campaigns: list[str]

    @property
    def count(self) -> int:
        """Number of events."""
        return len(self.ts_ms)

    def column(self, name: str, rows: Ints) -> pl.Series:
        """A column of the event table at the given (sorted-order) rows."""
        return self.table[name].gather(self.source[rows])


def customer_events(table: pl.DataFrame) -> CustomerEvents:
    """Touchpoints and purchases, first copy of each (customer, event_id), in journey order."""
    if not table["line"].is_sorted():
        table = table.sort("line")
    # Integer codes over the whole table (one hash pass per column, cheaper than gathering
    # strings first); customers renumbered in id order, as the journeys are ordered.
    keep = np.flatnonzero(table["kind"].is_in([TOUCHPOINT, PURCHASE]).to_numpy())
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Independent hash passes: two at a time (Polars and numpy release the lock).
        channel_codes = pool.submit(text_codes, table["channel"])
        campaign_codes = pool.submit(text_codes, table["campaign"])
        by_appearance, names = text_codes(table["customer_id"])
        all_channels, channels = channel_codes.result()
        all_campaigns, campaigns = campaign_codes.result()
    rank = np.argsort(np.array(names, dtype=object), kind="stable").astype(np.int64)
    in_id_order = np.empty(len(names), np.int64)
    in_id_order[rank] = np.arange(len(names))
    customer = in_id_order[by_appearance[keep]]
    ids = [names[i] for i in rank.tolist()]
    event_ids = table["event_id"].gather(keep)
    first = _first_copies(customer, event_ids).to_numpy()
    keep, customer, event_ids = keep[first], customer[first], event_ids.filter(first)
    ts = table["ts_ms"].to_numpy()[keep].astype(np.int64)
    order = _journey_order(customer, ts, event_ids)
    source = keep[order]
    channel = all_channels[source]
    campaign = all_campaigns[source]
    return CustomerEvents(
        table,
        source,
        customer[order],
        ids,
        ts[order],
        table["kind"].to_numpy()[source] == PURCHASE,
        table["amount"].fill_null(0.0).to_numpy()[source].astype(np.float64),
        channel,
        channels,
        campaign,
        campaigns,
    )


def _first_copies(customer: Ints, event_id: pl.Series) -> pl.Series:
    """True for the first row of each (customer, event_id), by a 64-bit hash of both.

    A hash collision would drop an event: the rows the hash calls repeats are checked to
    carry their first copy's event_id, and if one does not, the exact (slower) way is used.
    """
    codes = pl.Series("_customer", customer)
    key = codes.hash() ^ (event_id.hash() * 0x9E3779B97F4A7C15)
    first = key.is_first_distinct()
    if first.all():
        return first
    frame = pl.DataFrame({"_customer": codes, "event_id": event_id, "key": key})
    matched = frame.filter(~first).join(frame.filter(first), on="key", how="left",
                                        suffix="_first")  # fmt: skip
    if (matched["event_id"] == matched["event_id_first"]).all() and (
        matched["_customer"] == matched["_customer_first"]
    ).all():
        return first
    return frame.select(pl.struct("_customer", "event_id").is_first_distinct()).to_series()


def _journey_order(customer: Ints, ts: Ints, event_ids: pl.Series) -> Ints:
    """Rows sorted by (customer, time, event_id): integers first, ties of both by event_id."""
    if customer.size == 0:
        return np.zeros(0, np.int64)
    span = int(ts.max()) - int(ts.min())
    if int(customer.max()) < (1 << 20) and span < (1 << 42):
        key = pl.Series((customer << 42) + (ts - ts.min()))
        order = key.arg_sort().to_numpy().astype(np.int64)  # ties are ordered below
    else:
        order = np.lexsort((ts, customer))
    sorted_customer, sorted_ts = customer[order], ts[order]
    same = (sorted_customer[1:] == sorted_customer[:-1]) & (sorted_ts[1:] == sorted_ts[:-1])
    if same.any():
        # Events of one customer at the same millisecond: by event_id, as the rules say.
        group = np.cumsum(np.r_[True, ~same])
        sizes = np.bincount(group)
        tied = np.flatnonzero(sizes[group] > 1)
        ids = dict(zip(order[tied].tolist(), event_ids.gather(order[tied]).to_list(),
                       strict=True))  # fmt: skip
        for run in np.split(tied, np.flatnonzero(np.diff(group[tied]) != 0) + 1):
            order[run] = sorted(order[run].tolist(), key=ids.__getitem__)
    return order.astype(np.int64)


@dataclass(frozen=True)
class JourneyTable:
    """The closed journeys of a log (``arrays``) over its sorted customer ``events``."""

    events: CustomerEvents
    arrays: JourneyArrays
    as_of_ms: int | None

    @property
    def open_customers(self) -> int:
        """Customers whose journey is still open at the end."""
        rows = self.arrays.open_rows
        return int(distinct(self.events.customer[rows]).size) if rows.size else 0

    def touch_rows(self, kinds: tuple[int, ...] = (CONVERTED, NULL)) -> Ints:
        """Event rows of the touches of journeys of the given kinds, in journey order."""
        selected = np.isin(self.arrays.kind, kinds) & (self.arrays.touches > 0)
        return ranges(self.arrays.first[selected], self.arrays.touches[selected])

    def path_table(self) -> PathTable:
        """Attributable journeys (converted with touches, and null paths) as a path table."""
        arrays, events = self.arrays, self.events
        keep = (arrays.kind == CONVERTED) | (arrays.kind == NULL)
        counts = arrays.touches[keep]
        rows = ranges(arrays.first[keep], counts)
        # Channel codes in order of first appearance in the paths, as from_paths numbers them.
        seen, first_at = np.unique(events.channel[rows], return_index=True)
        renumber = np.zeros(max(len(events.channels), 1), np.int64)
        renumber[seen[np.argsort(first_at)]] = np.arange(len(seen))
        names = tuple(events.channels[code] for code in seen[np.argsort(first_at)])
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        converted = arrays.kind[keep] == CONVERTED
        purchase = np.maximum(arrays.purchase[keep], 0)
        value = np.where(converted, events.amount[purchase], 0.0)
        journey_of_touch = np.repeat(np.arange(len(counts)), counts)
        purchase_ts = events.ts_ms[purchase][journey_of_touch]
        ages = np.where(
            converted[journey_of_touch], (purchase_ts - events.ts_ms[rows]) / MS_PER_DAY, 0.0
        ).astype(np.float64)
        return PathTable(
            names,
            offsets,
            renumber[events.channel[rows]],
            converted.astype(np.float64),
            value.astype(np.float64),
            (~converted).astype(np.float64),
            ages,
        )

    def journeys(self) -> list[Journey]:
        """The closed journeys as objects (small inputs, tests and the stream)."""
        from attribution.journeys import ConvertedJourney, NullJourney, Touch

        events = self.events
        every = np.arange(events.count)
        columns = {
            name: events.column(name, every).to_list()
            for name in ("event_id", "channel", "campaign", "interaction", "order_id")
        }
        customers = [events.customers[c] for c in events.customer.tolist()]
        ts = events.ts_ms.tolist()
        amount = events.amount.tolist()
        out: list[Journey] = []
        arrays = self.arrays
        for first, count, purchase, kind in zip(
            arrays.first.tolist(), arrays.touches.tolist(), arrays.purchase.tolist(),
            arrays.kind.tolist(), strict=True,
        ):  # fmt: skip
            touches = tuple(
                Touch(
                    columns["channel"][r],
                    ts[r],
                    columns["event_id"][r],
                    columns["campaign"][r],
                    columns["interaction"][r],
                )  # fmt: skip
                for r in range(first, first + count)
            )
            if kind == NULL:
                out.append(NullJourney(customers[first], touches))
            else:
                out.append(
                    ConvertedJourney(
                        customers[purchase],
                        columns["order_id"][purchase],
                        columns["event_id"][purchase],
                        ts[purchase],
                        amount[purchase],
                        touches,
                    )  # fmt: skip
                )
        return out


def ranges(starts: Ints, counts: Ints) -> Ints:
    """Concatenation of ``range(start, start + count)`` for each pair."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)


def build_journey_table(
    table: pl.DataFrame, rules: JourneyRules, as_of_ms: int | None = None
) -> JourneyTable:
    """Journeys of an event table; ``as_of_ms`` defaults to its newest customer event time."""
    events = customer_events(table)
    as_of = as_of_ms
    if as_of is None and events.count:
        as_of = int(events.ts_ms.max())
    arrays = journey_arrays(
        events.customer,
        events.ts_ms,
        events.is_purchase,
        rules.lookback_ms,
        rules.timeout_ms,
        rules.allowed_lateness_ms,
        as_of,
    )
    return JourneyTable(events, arrays, as_of)


__all__ = [
    "CONVERTED",
    "NULL",
    "UNATTRIBUTED",
    "CustomerEvents",
    "JourneyTable",
    "build_journey_table",
    "customer_events",
    "ranges",
    "text_codes",
]
