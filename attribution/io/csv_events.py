"""CSV event logs into an event table.

A record is the dict of the header's columns to the row's non-empty cells (an empty cell is a
missing field); a row with more cells than the header is invalid; the line of a record is the
line where it ends. Without a quote character and with plain line ends, Arrow's CSV parser
splits the file exactly as Python's ``csv`` module would; any other file is split by the
``csv`` module itself. Either way the cells are validated as columns, and only the rows the
vectorised validation does not accept go through ``parse_record`` one at a time.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.csv as pa_csv

from attribution.events import InvalidRecord, parse_record
from attribution.io import InvalidRow, ReadError
from attribution.io.event_table import RECORD_FIELDS, EventTableRead, concat, from_events
from attribution.io.fast_validation import validate_columns

_BOM = "\ufeff"


def _header(first_line: str, source: str) -> list[str]:
    names = next(csv.reader([first_line]), [])
    header = [name.strip().lstrip(_BOM) for name in names]
    if "type" not in header:
        raise ReadError(
            f"{source}: no 'type' column in the CSV header; columns found: {', '.join(header)}"
        )
    return header


def read_csv_table(data: bytes, source: str) -> EventTableRead:
    """Read a whole CSV log (``data`` the file's bytes, ``source`` its name for messages)."""
    text_check = pa.StringArray.from_buffers(
        1, pa.py_buffer(np.array([0, len(data)], dtype=np.int64).astype(np.int32)),
        pa.py_buffer(data),
    ) if len(data) < 2**31 else None  # fmt: skip
    try:
        if text_check is not None:
            text_check.validate(full=True)
        else:
            data.decode("utf-8")
    except pa.ArrowInvalid:
        data.decode("utf-8-sig")  # raises UnicodeDecodeError with the position
    body = data.removeprefix(b"\xef\xbb\xbf")
    end = body.find(b"\n")
    first = body[: end if end >= 0 else len(body)].decode("utf-8").rstrip("\r")
    if not first and end < 0:
        return EventTableRead(concat([]))
    header = _header(first, source)
    plain = (
        b'"' not in body
        and b"\r" not in body.replace(b"\r\n", b"")
        and len(set(header)) == len(header)
        and all(name for name in header)
    )
    if plain:
        return _plain(body[end + 1 :] if end >= 0 else b"", header)
    return _with_csv_module(body.decode("utf-8"), source)


def _plain(rows: bytes, header: list[str]) -> EventTableRead:
    """No quotes, no lone carriage returns: Arrow splits at commas and line ends."""
    if not rows.strip(b"\r\n"):
        return EventTableRead(concat([]))  # a header and empty lines: no record
    odd: list[int] = []  # Arrow's numbers of the rows it set aside

    def keep_aside(row: Any) -> str:
        odd.append(row.number)
        return "skip"

    table = pa_csv.read_csv(
        pa.BufferReader(rows),
        read_options=pa_csv.ReadOptions(column_names=header, use_threads=False,
                                        block_size=max(len(rows), 1) + 1),
        parse_options=pa_csv.ParseOptions(quote_char=False, double_quote=False,
                                          escape_char=False, newlines_in_values=False,
                                          ignore_empty_lines=True,
                                          invalid_row_handler=keep_aside),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False,
            include_columns=[name for name in header if name in RECORD_FIELDS],
        ),
    )  # fmt: skip
    lines, odd_lines = _line_numbers(rows, odd, table.num_rows)
    # An empty cell is a missing field.
    empty_is_missing = pa.table(
        {name: pa.compute.if_else(pa.compute.equal(table.column(name), ""), None,
                                  table.column(name))
         for name in table.column_names}
    ) if table.num_rows else table  # fmt: skip
    good, slow = validate_columns(empty_is_missing, lines)
    events: list[Any] = []
    event_lines: list[int] = []
    invalid: list[InvalidRow] = []
    if slow.size or odd_lines:
        texts = rows.split(b"\n")
        for number in [*slow.tolist(), *odd_lines]:
            text = texts[number - 2].decode("utf-8").rstrip("\r")
            _slow(text, number, header, events, event_lines, invalid)
    invalid.sort(key=lambda row: row.line)
    parts = [good, from_events(events, event_lines)] if events else [good]
    return EventTableRead(concat(parts), invalid)


def _line_numbers(rows: bytes, set_aside: list[int], count: int) -> tuple[np.ndarray, list[int]]:
    """File lines of the rows Arrow returned, and of the rows it set aside.

    Arrow numbers rows 1, 2, 3... over the non-empty lines (the header not included), returned
    or set aside alike.
    """
    if not set_aside and b"\n\n" not in b"\n" + rows and b"\n\r\n" not in b"\n" + rows:
        numbers = np.arange(2, 2 + count, dtype=np.int64)
        if count != rows.count(b"\n") + (bool(rows) and not rows.endswith(b"\n")):
            raise ReadError("CSV rows and lines do not match up; this is a bug, please report it")
        return numbers, []
    pieces = rows.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    non_empty = [i + 2 for i, piece in enumerate(pieces) if piece not in (b"", b"\r")]
    aside = [non_empty[number - 1] for number in set_aside]
    skipped = set(aside)
    numbers = np.array([n for n in non_empty if n not in skipped], dtype=np.int64)
    if len(numbers) != count:
        raise ReadError("CSV rows and lines do not match up; this is a bug, please report it")
    return numbers, aside


def _slow(
    text: str,
    number: int,
    header: list[str],
    events: list[Any],
    event_lines: list[int],
    invalid: list[InvalidRow],
) -> None:
    row = next(csv.reader([text]), [])
    if not row:
        return
    outcome = _record_of(row, header)
    if isinstance(outcome, InvalidRecord):
        invalid.append(InvalidRow(number, outcome.reason))
        return
    try:
        events.append(parse_record(outcome))
        event_lines.append(number)
    except InvalidRecord as error:
        invalid.append(InvalidRow(number, error.reason))


def _record_of(row: list[str], header: list[str]) -> dict[str, str] | InvalidRecord:
    if len(row) > len(header):
        return InvalidRecord(f"{len(row)} fields but the header has {len(header)} columns")
    # Empty cells are missing fields: parse_record then names the missing field.
    return {k: v for k, v in zip(header, row, strict=False) if v != ""}


def _with_csv_module(text: str, source: str) -> EventTableRead:
    """Quotes or odd line ends: Python's csv module splits, the cells are validated as columns."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header_row = next(reader, None)
    if header_row is None:
        return EventTableRead(concat([]))
    header = [name.strip().lstrip(_BOM) for name in header_row]
    if "type" not in header:
        raise ReadError(
            f"{source}: no 'type' column in the CSV header; columns found: {', '.join(header)}"
        )
    records: list[dict[str, str]] = []
    lines: list[int] = []
    invalid: list[InvalidRow] = []
    for row in reader:
        if not row:
            continue
        outcome = _record_of(row, header)
        if isinstance(outcome, InvalidRecord):
            invalid.append(InvalidRow(reader.line_num, outcome.reason))
            continue
        records.append(outcome)
        lines.append(reader.line_num)
    columns = {name: pa.array([r.get(name) for r in records], pa.string())
               for name in RECORD_FIELDS}  # fmt: skip
    good, slow = validate_columns(pa.table(columns), np.asarray(lines, dtype=np.int64))
    events: list[Any] = []
    event_lines: list[int] = []
    by_line = dict(zip(lines, records, strict=True))
    for number in slow.tolist():
        try:
            events.append(parse_record(by_line[number]))
            event_lines.append(number)
        except InvalidRecord as error:
            invalid.append(InvalidRow(number, error.reason))
    invalid.sort(key=lambda row: row.line)
    parts = [good, from_events(events, event_lines)] if events else [good]
    return EventTableRead(concat(parts), invalid)
