"""Journeys of a whole event table, as columns: the batch engine's and the report's input.

:func:`build_journey_table` keeps the customer events of an event table (touchpoints and
purchases), drops repeats of a (customer_id, event_id) keeping the first in file order, sorts
them by (customer_id, time, event_id) and runs the journey kernel over all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from numpy.typing import NDArray

from attribution.events import MS_PER_DAY
from attribution.io.event_table import PURCHASE, TOUCHPOINT
from attribution.journey_kernel import CONVERTED, NULL, UNATTRIBUTED, JourneyArrays, journey_arrays
from attribution.paths import PathTable

if TYPE_CHECKING:
    from attribution.journeys import Journey, JourneyRules


def customer_events(table: pl.DataFrame) -> pl.DataFrame:
    """Touchpoints and purchases, first copy of each (customer, event_id), in journey order."""
    events = table.filter(pl.col("kind").is_in([TOUCHPOINT, PURCHASE]))
    if not events["line"].is_sorted():
        events = events.sort("line")
    events = events.unique(subset=["customer_id", "event_id"], keep="first", maintain_order=True)
    return events.sort(["customer_id", "ts_ms", "event_id"])


@dataclass(frozen=True)
class JourneyTable:
    """The closed journeys of a log (``arrays``) over its sorted customer ``events``."""

    events: pl.DataFrame
    arrays: JourneyArrays
    as_of_ms: int | None

    @property
    def open_customers(self) -> int:
        """Customers whose journey is still open at the end."""
        rows = self.arrays.open_rows
        if rows.size == 0:
            return 0
        customers = self.events["customer_id"].gather(rows)
        return int(customers.n_unique())

    def kinds(self) -> NDArray[np.int8]:
        """Per journey: converted, unattributed or null."""
        return self.arrays.kind

    def purchase_column(self, name: str) -> pl.Series:
        """A column of the purchase closing each journey (null for null journeys)."""
        rows = self.arrays.purchase
        values = self.events[name].gather(np.maximum(rows, 0))
        return pl.select(pl.when(pl.Series(rows >= 0)).then(values)).to_series().alias(name)

    def journey_customers(self) -> pl.Series:
        """Customer of each journey."""
        return self.events["customer_id"].gather(self.arrays.first)

    def touch_rows(self, kinds: tuple[int, ...] = (CONVERTED, NULL)) -> NDArray[np.int64]:
        """Event rows of the touches of journeys of the given kinds, in journey order."""
        selected = np.isin(self.arrays.kind, kinds) & (self.arrays.touches > 0)
        starts = self.arrays.first[selected]
        counts = self.arrays.touches[selected]
        return _ranges(starts, counts)

    def path_table(self) -> PathTable:
        """Attributable journeys (converted with touches, and null paths) as a path table."""
        arrays = self.arrays
        keep = (arrays.kind == CONVERTED) | (arrays.kind == NULL)
        counts = arrays.touches[keep]
        rows = _ranges(arrays.first[keep], counts)
        channel = self.events["channel"].gather(rows)
        names = channel.unique(maintain_order=True)
        codes = channel.replace_strict(names, pl.int_range(len(names), eager=True),
                                       return_dtype=pl.Int64).to_numpy()  # fmt: skip
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        converted = arrays.kind[keep] == CONVERTED
        amounts = self.events["amount"].to_numpy()
        purchase = arrays.purchase[keep]
        value = np.where(converted, amounts[np.maximum(purchase, 0)], 0.0)
        ts = self.events["ts_ms"].to_numpy()
        journey_of_touch = np.repeat(np.arange(len(counts)), counts)
        purchase_ts = ts[np.maximum(purchase, 0)][journey_of_touch]
        ages = np.where(
            converted[journey_of_touch], (purchase_ts - ts[rows]) / MS_PER_DAY, 0.0
        ).astype(np.float64)
        return PathTable(
            tuple(names.to_list()),
            offsets,
            codes.astype(np.int64),
            converted.astype(np.float64),
            value.astype(np.float64),
            (~converted).astype(np.float64),
            ages,
        )

    def journeys(self) -> list[Journey]:
        """The closed journeys as objects (small inputs, tests and the stream)."""
        from attribution.journeys import ConvertedJourney, NullJourney, Touch

        columns = {
            name: self.events[name].to_list()
            for name in (
                "customer_id",
                "event_id",
                "channel",
                "campaign",
                "interaction",
                "order_id",
                "amount",
                "ts_ms",
            )  # fmt: skip
        }
        out: list[Journey] = []
        arrays = self.arrays
        for first, count, purchase, kind in zip(
            arrays.first.tolist(), arrays.touches.tolist(), arrays.purchase.tolist(),
            arrays.kind.tolist(), strict=True,
        ):  # fmt: skip
            touches = tuple(
                Touch(
                    columns["channel"][r],
                    columns["ts_ms"][r],
                    columns["event_id"][r],
                    columns["campaign"][r],
                    columns["interaction"][r],
                )  # fmt: skip
                for r in range(first, first + count)
            )
            if kind == NULL:
                out.append(NullJourney(columns["customer_id"][first], touches))
            else:
                out.append(
                    ConvertedJourney(
                        columns["customer_id"][purchase],
                        columns["order_id"][purchase],
                        columns["event_id"][purchase],
                        columns["ts_ms"][purchase],
                        columns["amount"][purchase],
                        touches,
                    )  # fmt: skip
                )
        return out


def _ranges(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenation of ``range(start, start + count)`` for each pair."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)


def customer_codes(events: pl.DataFrame) -> NDArray[np.int64]:
    """A number per customer, equal for equal ids (the events are sorted by customer)."""
    customers = events["customer_id"]
    if customers.len() == 0:
        return np.zeros(0, np.int64)
    changed = (customers != customers.shift(1)).fill_null(True).to_numpy()
    return np.cumsum(changed).astype(np.int64) - 1


def build_journey_table(
    table: pl.DataFrame, rules: JourneyRules, as_of_ms: int | None = None
) -> JourneyTable:
    """Journeys of an event table; ``as_of_ms`` defaults to its newest customer event time."""
    events = customer_events(table)
    as_of = as_of_ms
    if as_of is None and events.height:
        as_of = int(events["ts_ms"].max())  # type: ignore[arg-type]
    arrays = journey_arrays(
        customer_codes(events),
        events["ts_ms"].to_numpy(),
        (events["kind"] == PURCHASE).to_numpy(),
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
    "JourneyTable",
    "build_journey_table",
    "customer_codes",
    "customer_events",
]
