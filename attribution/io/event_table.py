"""Validated events as columns: the one in-memory form of an event log, whatever its format.

A Polars frame with one row per valid record, in file order:

| column | type | holds |
| --- | --- | --- |
| ``line`` | Int64 | 1-based line of the file (header included for CSV; row for Parquet) |
| ``kind`` | UInt8 | :data:`TOUCHPOINT`, :data:`PURCHASE`, :data:`COST`, :data:`ASSIGNMENT`, |
| | | :data:`REFUND` or :data:`RATE` |
| ``event_id`` | String | |
| ``customer_id`` | String | null for costs and rates |
| ``channel`` | Categorical | touchpoints and costs |
| ``campaign`` | Categorical | optional for touchpoints and assignments, required for costs |
| ``interaction`` | Categorical | touchpoints, optional |
| ``order_id`` | String | purchases and refunds |
| ``amount`` | Float64 | purchases, costs and refunds; a rate event's ``rate`` |
| ``currency`` | Categorical | purchases, costs and refunds (optional), rates |
| ``group`` | Categorical | assignments: ``treatment`` or ``control`` |
| ``ts_ms`` | Int64 | event time, epoch milliseconds UTC |

Values are exactly what :func:`attribution.events.parse_record` makes of the record (strings
stripped, times in UTC milliseconds); fields an event type does not have are null.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attribution.events import (
    EVENT_TYPES,
    AnyRecord,
    Assignment,
    Cost,
    Purchase,
    Rate,
    Refund,
    Touchpoint,
)
from attribution.io import InvalidRow

if TYPE_CHECKING:
    import polars as pl

TOUCHPOINT, PURCHASE, COST, ASSIGNMENT, REFUND, RATE = range(6)
KIND_OF_TYPE = {name: code for code, name in enumerate(EVENT_TYPES)}
STRING_FIELDS = ("event_id", "customer_id", "channel", "campaign", "interaction", "order_id",
                 "currency", "group")  # fmt: skip
CATEGORICAL_FIELDS = ("channel", "campaign", "interaction", "currency", "group")
COLUMNS = ("line", "kind", *STRING_FIELDS, "amount", "ts_ms")
RECORD_FIELDS = ("type", *STRING_FIELDS, "amount", "rate", "ts")
"""The fields of a raw record that the event models read (any other field is ignored)."""


def schema() -> dict[str, Any]:
    """Column name -> Polars type of an event table."""
    import polars as pl

    types: dict[str, Any] = {"line": pl.Int64, "kind": pl.UInt8}
    types.update(dict.fromkeys(STRING_FIELDS, pl.String))
    # Few distinct values: codes (4 bytes a row) instead of a 16-byte string view each.
    types.update(dict.fromkeys(CATEGORICAL_FIELDS, pl.Categorical))
    types.update({"amount": pl.Float64, "ts_ms": pl.Int64})
    return types


def empty() -> pl.DataFrame:
    """An event table with no row."""
    import polars as pl

    return pl.DataFrame(schema=schema())


def row_of(event: AnyRecord, line: int) -> dict[str, Any]:
    """One validated event as a row of the table."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(line=line, kind=KIND_OF_TYPE[event.type], event_id=event.event_id,
               ts_ms=event.ts_ms)  # fmt: skip
    if isinstance(event, Touchpoint):
        row.update(customer_id=event.customer_id, channel=event.channel,
                   campaign=event.campaign, interaction=event.interaction)  # fmt: skip
    elif isinstance(event, Purchase):
        row.update(customer_id=event.customer_id, order_id=event.order_id, amount=event.amount,
                   currency=event.currency)  # fmt: skip
    elif isinstance(event, Cost):
        row.update(campaign=event.campaign, channel=event.channel, amount=event.amount,
                   currency=event.currency)  # fmt: skip
    elif isinstance(event, Refund):
        row.update(customer_id=event.customer_id, order_id=event.order_id, amount=event.amount,
                   currency=event.currency)  # fmt: skip
    elif isinstance(event, Rate):
        row.update(currency=event.currency, amount=event.rate)
    else:
        row.update(customer_id=event.customer_id, group=event.group, campaign=event.campaign)
    return row


def from_events(events: Iterable[AnyRecord], lines: Iterable[int] | None = None) -> pl.DataFrame:
    """A table of validated events (``lines`` default to 1, 2, 3...)."""
    import polars as pl

    numbers = lines if lines is not None else range(1, 1 << 62)
    rows = [row_of(event, line) for event, line in zip(events, numbers, strict=False)]
    if not rows:
        return empty()
    return pl.DataFrame(rows, schema=schema(), orient="row")


def to_events(table: pl.DataFrame) -> list[AnyRecord]:
    """The table's rows as event objects again (no validation: the table holds valid events)."""
    from datetime import UTC, datetime, timedelta

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    out: list[AnyRecord] = []
    for row in table.iter_rows(named=True):
        base = {"event_id": row["event_id"], "ts": epoch + timedelta(milliseconds=row["ts_ms"])}
        kind = row["kind"]
        event: AnyRecord
        if kind == TOUCHPOINT:
            event = Touchpoint.model_construct(**base, customer_id=row["customer_id"],
                                               channel=row["channel"], campaign=row["campaign"],
                                               interaction=row["interaction"])  # fmt: skip
        elif kind == PURCHASE:
            event = Purchase.model_construct(**base, customer_id=row["customer_id"],
                                             order_id=row["order_id"], amount=row["amount"],
                                             currency=row["currency"])  # fmt: skip
        elif kind == COST:
            event = Cost.model_construct(**base, campaign=row["campaign"],
                                         channel=row["channel"], amount=row["amount"],
                                         currency=row["currency"])  # fmt: skip
        elif kind == REFUND:
            event = Refund.model_construct(**base, customer_id=row["customer_id"],
                                           order_id=row["order_id"], amount=row["amount"],
                                           currency=row["currency"])  # fmt: skip
        elif kind == RATE:
            event = Rate.model_construct(**base, currency=row["currency"], rate=row["amount"])
        else:
            event = Assignment.model_construct(
                **base, customer_id=row["customer_id"], group=row["group"],
                campaign=row["campaign"],
            )  # fmt: skip
        out.append(event)
    return out


@dataclass
class EventTableRead:
    """A read event log: the valid events as a table, and the records that were skipped."""

    table: pl.DataFrame
    invalid: list[InvalidRow] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of valid events."""
        return int(self.table.height)


def concat(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Tables one after the other, in file order (sorted by ``line``)."""
    import polars as pl

    kept = [p for p in parts if p.height]
    if not kept:
        return empty()
    out = pl.concat(kept, how="vertical")
    if not out["line"].is_sorted():
        out = out.sort("line")
    return out
