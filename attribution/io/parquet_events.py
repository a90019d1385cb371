"""Parquet event logs into an event table, a record batch at a time.

A record is the row's non-null columns; its "line" is its 1-based row number. Typed columns
(strings, numbers, UTC timestamps) are validated as columns; rows the vectorised validation
does not accept are turned into Python values and go through ``parse_record`` one at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from attribution.events import InvalidRecord, parse_record
from attribution.io import InvalidRow, ReadError
from attribution.io.event_table import RECORD_FIELDS, EventTableRead, concat, from_events
from attribution.io.fast_validation import validate_columns

Progress = Callable[[int, int | None], None]
# Rows validated at a time: the checks' temporaries are a few dozen bytes per row.
BATCH_ROWS = 1 << 18


def _columns_of_interest(batch: pa.RecordBatch) -> pa.Table:
    """The record's fields as Arrow columns (dictionary-encoded text decoded)."""
    columns = {}
    for name in RECORD_FIELDS:
        if name not in batch.schema.names:
            continue
        array = batch.column(name)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
            array = array.cast(pa.string())
        columns[name] = array
    return pa.table(columns) if columns else pa.table({"type": pa.nulls(batch.num_rows)})


def read_parquet_table(path: Path, progress: Progress | None = None) -> EventTableRead:
    """Read a Parquet log."""
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ReadError(f"{path}: not a readable Parquet file: {error}") from None
    duplicated = {n for n in parquet.schema_arrow.names if parquet.schema_arrow.names.count(n) > 1}
    if duplicated & set(RECORD_FIELDS):
        raise ReadError(f"{path}: the columns {sorted(duplicated)} appear more than once")
    total = parquet.metadata.num_rows
    parts: list[pl.DataFrame] = []
    invalid: list[InvalidRow] = []
    events: list[Any] = []
    event_lines: list[int] = []
    done = 0
    # Only the record's fields are read: parse_record ignores every other column.
    wanted = [n for n in RECORD_FIELDS if n in parquet.schema_arrow.names]
    batches = _batches(parquet, wanted)
    # Batches are validated on two threads (numpy and Arrow release the interpreter lock),
    # the rows left for parse_record one by one on this one, in order.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque[tuple[int, pa.RecordBatch, Future[Any]]] = deque()

        def finish() -> None:
            first, batch, future = pending.popleft()
            good, slow = future.result()
            parts.append(good)
            for line in slow.tolist():
                _slow_row(batch, line - first - 1, line, events, event_lines, invalid)

        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowException, OSError) as error:
                raise ReadError(
                    f"{path}: Parquet data unreadable after row {done}: {error}"
                ) from None
            lines = np.arange(done + 1, done + 1 + batch.num_rows, dtype=np.int64)
            pending.append(
                (done, batch, pool.submit(validate_columns, _columns_of_interest(batch), lines))
            )
            done += batch.num_rows
            if progress:
                progress(done, total)
            while len(pending) > 2:
                finish()
        while pending:
            finish()
    if events:
        parts.append(from_events(events, event_lines))
    invalid.sort(key=lambda row: row.line)
    return EventTableRead(concat(parts), invalid)


def _batches(parquet: pq.ParquetFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Record batches of at most BATCH_ROWS rows: small row groups read whole (Arrow decodes
    a row group's columns in parallel), large ones in slices."""
    if not columns:
        yield from parquet.iter_batches(batch_size=BATCH_ROWS)
        return
    for group in range(parquet.metadata.num_row_groups):
        if parquet.metadata.row_group(group).num_rows <= 4 * BATCH_ROWS:
            table = parquet.read_row_group(group, columns=columns)
            yield from table.to_batches(max_chunksize=BATCH_ROWS)
        else:
            yield from parquet.iter_batches(BATCH_ROWS, row_groups=[group], columns=columns)


def _slow_row(
    batch: pa.RecordBatch,
    index: int,
    line: int,
    events: list[Any],
    event_lines: list[int],
    invalid: list[InvalidRow],
) -> None:
    try:
        record = batch.slice(index, 1).to_pylist()[0]
    except (pa.ArrowException, ValueError, OverflowError) as error:
        invalid.append(InvalidRow(line, f"row cannot be read as values: {error}"))
        return
    try:
        events.append(parse_record({k: v for k, v in record.items() if v is not None}))
        event_lines.append(line)
    except InvalidRecord as error:
        invalid.append(InvalidRow(line, error.reason))


def read_arrow_table(table: pa.Table) -> EventTableRead:
    """An in-memory Arrow table of records (one per row), validated like a Parquet file's."""
    parts: list[pl.DataFrame] = []
    invalid: list[InvalidRow] = []
    events: list[Any] = []
    event_lines: list[int] = []
    done = 0
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        lines = np.arange(done + 1, done + 1 + batch.num_rows, dtype=np.int64)
        good, slow = validate_columns(_columns_of_interest(batch), lines)
        parts.append(good)
        for line in slow.tolist():
            _slow_row(batch, line - done - 1, line, events, event_lines, invalid)
        done += batch.num_rows
    if events:
        parts.append(from_events(events, event_lines))
    invalid.sort(key=lambda row: row.line)
    return EventTableRead(concat(parts), invalid)
