"""Vectorised validation of decoded records: the common shapes at column speed, the rest by the
per-record validator.

The contract is :func:`attribution.events.parse_record` (pydantic). This module accepts a row
only when the row's fields have a shape for which the result of ``parse_record`` is certain and
computed here exactly: clean strings (a printable ASCII character other than space at either
end, so nothing to strip, and at most 256 bytes), finite non-negative numbers, ISO 8601 times
in the usual layout (``2026-01-05T15:04:05.123+01:00``, ``...Z``, a space for the ``T``) or
integer epoch milliseconds, a known event type and group. Every other row, valid or not, is
handed back to be validated one by one by ``parse_record``, which gives the verdict and the
reason. So the
vectorised path decides nothing that the contract could decide differently; a property test
holds the two equal on arbitrary records.

The checks read Arrow's buffers with numpy (first and last byte of each string, fixed-width
time layouts), about 20 ns per row and field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
from numpy.typing import NDArray

from attribution.io.event_table import (
    ASSIGNMENT,
    COLUMNS,
    COST,
    KIND_OF_TYPE,
    PURCHASE,
    REFUND,
    TOUCHPOINT,
    schema,
)
from attribution.limits import MAX_TEXT, record_limits

EPOCH_MS_TEXT = r"^-?[0-9]{1,15}$"
DECIMAL_TEXT = r"^[0-9]{1,15}(?:\.[0-9]{1,15})?$"
# Years 1000-8999 only: far from the calendar's edges, where converting to UTC can overflow.
MIN_MS = -30_610_224_000_000  # 1000-01-01T00:00:00Z
MAX_MS = 221_845_392_000_000 - 1  # before 9000-01-01T00:00:00Z
GROUPS = ("treatment", "control")
MS_PER_DAY = 86_400_000

_REQUIRED = {
    TOUCHPOINT: ("event_id", "customer_id", "channel"),
    PURCHASE: ("event_id", "customer_id", "order_id"),
    COST: ("event_id", "campaign", "channel"),
    ASSIGNMENT: ("event_id", "customer_id"),
    REFUND: ("event_id", "customer_id", "order_id"),
}
# Rate events (a few a day) are not here: their "rate" field always goes through parse_record.
_OPTIONAL = {
    TOUCHPOINT: ("campaign", "interaction"),
    PURCHASE: ("currency",),
    COST: ("currency",),
    ASSIGNMENT: ("campaign",),
    REFUND: ("currency",),
}
_FIELDS = {kind: _REQUIRED[kind] + _OPTIONAL[kind] for kind in _REQUIRED}
Bools = NDArray[np.bool_]


class _Text:
    """A string column's validity, offsets and bytes (numpy views of Arrow's buffers)."""

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            array = array.cast(pa.large_string())
        n = len(array)
        validity, offsets, data = array.buffers()
        width = np.int64 if pa.types.is_large_string(array.type) else np.int32
        # Views of Arrow's buffers, in their own widths: no copy of a column's offsets.
        self.offsets = np.frombuffer(offsets, dtype=width)[array.offset : array.offset + n + 1]
        self.data = (
            np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, np.uint8)
        )
        if self.data.size == 0:
            self.data = np.zeros(1, np.uint8)
        self.valid = (
            np.ones(n, np.bool_) if array.null_count == 0 else array.is_valid().to_numpy(False)
        )
        self.length = np.diff(self.offsets)

    def clean(self) -> Bools:
        """Present, 1 to 256 bytes, and nothing str.strip() could remove."""
        ok = self.valid & (self.length >= 1) & (self.length <= MAX_TEXT)
        top = len(self.data) - 1
        first = self.data[np.minimum(self.offsets[:-1], top)]
        last = self.data[np.clip(self.offsets[1:] - 1, 0, top)]
        ok &= (first >= 0x21) & (first <= 0x7E) & (last >= 0x21) & (last <= 0x7E)
        return ok

    def clean_or_empty(self) -> Bools:
        """Absent, empty, or clean (an optional field)."""
        empty = self.length == 0
        return ~self.valid | empty | self.clean()


def _days_from_civil(y: NDArray[np.int64], m: NDArray[np.int64], d: NDArray[np.int64]) -> Any:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _iso_times(text: _Text) -> tuple[Bools, NDArray[np.int64]]:
    """Rows holding ``YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)``, and their epoch ms."""
    n = len(text.length)
    ok = np.zeros(n, np.bool_)
    ms = np.zeros(n, np.int64)
    candidates = text.valid & (text.length >= 20) & (text.length <= 32)
    if not candidates.any():
        return ok, ms
    lengths = text.length[candidates]
    common = int(np.bincount(lengths).argmax())
    widths = np.flatnonzero(np.bincount(lengths)).tolist()
    for width in [common, *(w for w in widths if w != common)]:
        rows = np.flatnonzero(candidates & (text.length == width)) if width != common or (
            lengths.min() != lengths.max()) else np.flatnonzero(candidates)  # fmt: skip
        starts = text.offsets[rows]
        last = text.data[starts + width - 1]
        zulu = (last == ord("Z")) | (last == ord("z"))
        for is_zulu in (True, False):
            part = rows[zulu == is_zulu]
            if part.size == 0:
                continue
            fraction = width - (20 if is_zulu else 25)  # the dot and its digits
            good, value = _decode_iso(text.data, text.offsets[part], fraction, is_zulu)
            ok[part] = good
            ms[part] = value
    return ok, ms


def _decode_iso(
    data: NDArray[np.uint8], starts: NDArray[np.int64], fraction: int, zulu: bool
) -> tuple[Bools, NDArray[np.int64]]:
    """Check and convert one layout: each character position is read as a column."""
    n = len(starts)
    if fraction != 0 and not 2 <= fraction <= 7:
        return np.zeros(n, np.bool_), np.zeros(n, np.int64)
    ok = np.ones(n, np.bool_)
    digits: dict[int, NDArray[np.uint8]] = {}

    def char(column: int) -> NDArray[np.uint8]:
        return data[starts + column]

    def digit(column: int) -> NDArray[np.uint8]:
        nonlocal ok
        if column not in digits:
            value = char(column) - np.uint8(ord("0"))  # wraps below '0': then > 9
            ok &= value <= 9
            digits[column] = value
        return digits[column]

    def number(*columns: int) -> NDArray[np.int64]:
        value = np.zeros(n, np.int64)
        for column in columns:
            value = value * 10 + digit(column)
        return value

    for column, separator in ((4, "-"), (7, "-"), (13, ":"), (16, ":")):
        ok &= char(column) == ord(separator)
    # fromisoformat takes any one character between date and time; these are the usual ones.
    middle = char(10)
    ok &= (middle == ord("T")) | (middle == ord("t")) | (middle == ord(" "))
    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    micros = np.zeros(n, np.int64)
    if fraction:
        ok &= char(19) == ord(".")
        micros = number(*range(20, 19 + fraction)) * 10 ** (7 - fraction)
    offset_minutes = np.zeros(n, np.int64)
    if not zulu:
        zone = 19 + fraction
        sign = char(zone)
        ok &= (sign == ord("+")) | (sign == ord("-"))
        ok &= char(zone + 3) == ord(":")
        off_hour, off_minute = number(zone + 1, zone + 2), number(zone + 4, zone + 5)
        ok &= (off_hour <= 23) & (off_minute <= 59)
        offset_minutes = np.where(sign == ord("-"), -1, 1) * (off_hour * 60 + off_minute)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    days_in_month = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
    ok &= (year >= 1000) & (year <= 8999) & month_ok & (day >= 1) & (day <= days_in_month)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _days_from_civil(year, np.where(month_ok, month, 1), day)
    value = (
        days * MS_PER_DAY + hour * 3_600_000 + minute * 60_000 + second * 1000 + micros // 1000
        - offset_minutes * 60_000
    )  # fmt: skip
    return ok, value


def _times(table: pa.Table) -> tuple[Bools, NDArray[np.int64]]:
    """(accepted, epoch ms) of the ``ts`` column."""
    n = table.num_rows
    if "ts" not in table.column_names:
        return np.zeros(n, np.bool_), np.zeros(n, np.int64)
    column = table.column("ts")
    kind = column.type
    if pa.types.is_integer(kind):
        valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)
        if pa.types.is_unsigned_integer(kind):
            # Beyond int64 is beyond any valid time: leave such rows to the contract.
            small = pa.compute.less_equal(column, MAX_MS).fill_null(False)
            valid &= np.asarray(small.to_numpy(zero_copy_only=False), dtype=np.bool_)
            column = pa.compute.if_else(small, column, 0)
        ms = column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        ok = valid & (ms >= MIN_MS) & (ms <= MAX_MS)
        return ok, ms
    if pa.types.is_timestamp(kind):
        if kind.tz is None or kind.unit == "ns":
            # Naive times are refused by the contract (their repr is in the reason), and
            # nanoseconds are what Arrow will not turn into datetimes: both go one by one.
            return np.zeros(n, np.bool_), np.zeros(n, np.int64)
        micros = column.cast(pa.timestamp("us", kind.tz)).cast(pa.int64())
        valid = ~np.asarray(micros.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)
        values = micros.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        ms = np.floor_divide(values, 1000)
        return valid & (ms >= MIN_MS) & (ms <= MAX_MS), ms
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return np.zeros(n, np.bool_), np.zeros(n, np.int64)
    text = _Text(column)
    ok, ms = _iso_times(text)
    rest = np.flatnonzero(text.valid & ~ok & (text.length <= 16))
    if rest.size:
        strings = pl.Series(column.take(pa.array(rest)).cast(pa.large_string()))
        digits = strings.str.contains(EPOCH_MS_TEXT).fill_null(False).to_numpy()
        values = strings.cast(pl.Int64, strict=False).fill_null(0).to_numpy()
        ok[rest] = digits
        ms[rest] = np.where(digits, values, 0)
    ok &= (ms >= MIN_MS) & (ms <= MAX_MS)
    return ok, ms


def _amounts(table: pa.Table) -> tuple[Bools, NDArray[np.float64]]:
    """(accepted, value) of the ``amount`` column."""
    n = table.num_rows
    if "amount" not in table.column_names:
        return np.zeros(n, np.bool_), np.zeros(n)
    column = table.column("amount")
    kind = column.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        values = column.cast(pa.float64(), safe=False).fill_null(np.nan)
        values = values.to_numpy(zero_copy_only=False)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        strings = pl.Series(column.cast(pa.large_string()))
        plain = strings.str.contains(DECIMAL_TEXT).fill_null(False).to_numpy()
        numbers = strings.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
        values = np.where(plain, numbers, np.nan)
    else:
        return np.zeros(n, np.bool_), np.zeros(n)
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values >= 0)
    return ok, values


def _kinds(table: pa.Table) -> NDArray[np.int64]:
    """Event kind code per row, -1 where the type is not exactly a known one."""
    names = list(KIND_OF_TYPE)
    found = pa.compute.index_in(table.column("type"), value_set=pa.array(names))
    codes = np.array([KIND_OF_TYPE[name] for name in names], dtype=np.int64)
    index = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.where(index >= 0, codes[np.maximum(index, 0)], -1)


def _is_text(table: pa.Table, name: str) -> bool:
    if name not in table.column_names:
        return False
    kind = table.schema.field(name).type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def validate_columns(
    table: pa.Table, lines: NDArray[np.int64]
) -> tuple[pl.DataFrame, NDArray[np.int64]]:
    """(rows accepted here, as an event table; line numbers left for ``parse_record``).

    ``table`` holds any of the record's fields as columns of any type (an absent field: no
    column, or null), one row per record; ``lines`` their line numbers.
    """
    n = table.num_rows
    lines = np.asarray(lines, dtype=np.int64)
    if n == 0:
        return pl.DataFrame(schema=schema()), np.zeros(0, np.int64)
    if not _is_text(table, "type"):
        return pl.DataFrame(schema=schema()), lines
    kinds = _kinds(table)
    time_ok, ts_ms = _times(table)
    amount_ok, amount = _amounts(table)
    # Records outside the configured bounds are left to parse_event, which says which bound.
    limits = record_limits()
    time_ok &= (ts_ms >= limits.min_ts_ms) & (ts_ms <= limits.max_ts_ms)
    with np.errstate(invalid="ignore"):
        amount_ok &= amount <= limits.max_amount
    required: dict[str, Bools] = {}
    optional: dict[str, Bools] = {}
    for code in _REQUIRED:
        for name in _REQUIRED[code]:
            if name not in required:
                required[name] = _Text(table.column(name)).clean() if _is_text(table, name) else (
                    np.zeros(n, np.bool_)
                )  # fmt: skip
        for name in _OPTIONAL[code]:
            if name not in optional:
                optional[name] = _optional(table, name)
    group_ok = np.zeros(n, np.bool_)
    if _is_text(table, "group"):
        known = pa.compute.is_in(table.column("group"), value_set=pa.array(GROUPS))
        group_ok = np.asarray(known.fill_null(False).to_numpy(zero_copy_only=False), np.bool_)
    accepted = np.zeros(n, np.bool_)
    for code in _REQUIRED:
        ok = (kinds == code) & time_ok
        for name in _REQUIRED[code]:
            ok &= required[name]
        for name in _OPTIONAL[code]:
            ok &= optional[name]
        if code in (PURCHASE, COST, REFUND):
            ok &= amount_ok
        if code == ASSIGNMENT:
            ok &= group_ok
        accepted |= ok
    slow = lines[~accepted]
    return _canonical(table, accepted, lines, kinds, ts_ms, amount), slow


def _optional(table: pa.Table, name: str) -> Bools:
    if name not in table.column_names:
        return np.ones(table.num_rows, np.bool_)
    if _is_text(table, name):
        return _Text(table.column(name)).clean_or_empty()
    return np.asarray(table.column(name).is_null().to_numpy(zero_copy_only=False), np.bool_)


def _owners(name: str) -> list[int]:
    if name == "amount":
        return [PURCHASE, COST, REFUND]
    if name == "group":
        return [ASSIGNMENT]
    return [code for code, fields in _FIELDS.items() if name in fields]


# Per field: whether each kind code (shifted by one, so -1 is index 0) has it.
_OWNED = {
    name: np.array([False] + [code in _owners(name) for code in range(len(KIND_OF_TYPE))])
    for name in (
        "event_id",
        "customer_id",
        "channel",
        "campaign",
        "interaction",
        "order_id",
        "currency",
        "group",
        "amount",
    )  # fmt: skip
}


def _canonical(
    table: pa.Table,
    accepted: Bools,
    lines: NDArray[np.int64],
    kinds: NDArray[np.int64],
    ts_ms: NDArray[np.int64],
    amount: NDArray[np.float64],
) -> pl.DataFrame:
    """The accepted rows in the table's layout: fields an event type lacks set to null."""
    types = schema()
    texts = [n for n in COLUMNS if n in types and types[n] in (pl.String, pl.Categorical)]
    present = {
        name: table.column(name).dictionary_encode()
        if types[name] == pl.Categorical
        else table.column(name)
        for name in texts
        if _is_text(table, name)
    }
    frame = pl.DataFrame(
        {
            "line": pl.Series(lines, dtype=pl.Int64),
            "kind": pl.Series(kinds.astype(np.uint8), dtype=pl.UInt8),
            "amount": pl.Series(amount, dtype=pl.Float64),
            "ts_ms": pl.Series(ts_ms, dtype=pl.Int64),
        }
    )
    if present:
        text_frame = pl.from_arrow(pa.table(present))
        assert isinstance(text_frame, pl.DataFrame)
        frame = frame.hstack(text_frame)
    columns: list[pl.Expr] = []
    for name in COLUMNS:
        if name in ("line", "kind", "ts_ms"):
            columns.append(pl.col(name))
            continue
        if name not in frame.columns:
            columns.append(pl.lit(None, types[name]).alias(name))
            continue
        owned = _OWNED[name][kinds + 1]
        if name == "amount":
            foreign = ~owned
        else:
            foreign = ~owned & np.asarray(
                table.column(name).is_valid().to_numpy(zero_copy_only=False), np.bool_
            )
        value = pl.col(name).cast(types[name])
        if (foreign & accepted).any():
            columns.append(pl.when(pl.Series(owned)).then(value).alias(name))
        else:
            columns.append(value)
    if not accepted.all():
        frame = frame.filter(pl.Series(accepted))
        # Row-aligned masks above were built before filtering: recompute on the kept rows.
        return _canonical(
            pa.table({name: table.column(name) for name in present}).filter(pa.array(accepted))
            if present else pa.table({}),
            np.ones(int(accepted.sum()), np.bool_), lines[accepted], kinds[accepted],
            ts_ms[accepted], amount[accepted],
        )  # fmt: skip
    return frame.select(columns)
