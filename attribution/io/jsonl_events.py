"""JSON Lines event logs into an event table: Arrow's JSON parser by chunks, line by line only
where it must.

Arrow parses a chunk of lines against a fixed schema and refuses a chunk with anything that
does not fit it (a number where text is expected, a broken line, a repeated key), naming the
row. Those rows, and the rows the vectorised validation does not accept, are read again one
at a time exactly as before: ``json.loads`` and ``parse_record``, which give the verdict and
the reason. Arrow does not check UTF-8, so each chunk is checked first; a chunk with bad
bytes is read line by line. Chunks are parsed on two threads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.json as pa_json

from attribution.events import InvalidRecord, parse_record
from attribution.io import InvalidRow, ReadError
from attribution.io.event_table import (
    RECORD_FIELDS,
    EventTableRead,
    concat,
    from_events,
)
from attribution.io.fast_validation import validate_columns

Progress = Callable[[int, int | None], None]
CHUNK_BYTES = 4 << 20
_BOM = b"\xef\xbb\xbf"
_ROW_HINT = re.compile(r"in row (\d+)")
# A window this small is read line by line rather than split again.
_SMALLEST_WINDOW = 8


def _schema(ts_is_number: bool, amount_is_text: bool) -> pa.Schema:
    fields = []
    for name in RECORD_FIELDS:
        if name == "ts" and ts_is_number:
            fields.append(pa.field(name, pa.int64()))
        elif name == "amount" and not amount_is_text:
            fields.append(pa.field(name, pa.float64()))
        else:
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)


def _sample_schema(head: bytes) -> pa.Schema:
    """Arrow needs one type per field: the one most of the first records use."""
    numbers = texts = amount_texts = amount_numbers = 0
    for line in head.split(b"\n")[:-1][:2000]:
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(record, dict):
            continue
        ts, amount = record.get("ts"), record.get("amount")
        numbers += isinstance(ts, int) and not isinstance(ts, bool)
        texts += isinstance(ts, str)
        amount_texts += isinstance(amount, str)
        amount_numbers += isinstance(amount, int | float) and not isinstance(amount, bool)
    return _schema(numbers > texts, amount_texts > amount_numbers)


@dataclass
class _ChunkResult:
    """What one chunk of lines gave: accepted rows and the lines left for parse_record."""

    tables: list[pl.DataFrame] = field(default_factory=list)
    slow: list[tuple[int, bytes]] = field(default_factory=list)  # (line number, line)


def _arrow(buffer: bytes, schema: pa.Schema) -> pa.Table:
    return pa_json.read_json(
        pa.BufferReader(buffer),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=max(len(buffer), 1) + 1),
        parse_options=pa_json.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"
        ),
    )


def _valid_utf8(buffer: bytes) -> bool:
    array = pa.StringArray.from_buffers(
        1, pa.py_buffer(np.array([0, len(buffer)], dtype=np.int32)), pa.py_buffer(buffer)
    )
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _accept(result: _ChunkResult, table: pa.Table, lines: np.ndarray, texts: Any) -> None:
    """Validate a parsed table whose rows are the given file lines."""
    good, slow = validate_columns(table, lines)
    result.tables.append(good)
    if slow.size:
        result.slow.extend((int(n), texts(int(n))) for n in slow)


def _parse_chunk(chunk: bytes, first_line: int, schema: pa.Schema) -> _ChunkResult:
    """Rows of a chunk of whole lines; line numbers start at ``first_line``."""
    result = _ChunkResult()
    count = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
    if _valid_utf8(chunk):
        try:
            table = _arrow(chunk, schema)
        except pa.ArrowInvalid:
            table = None
        if table is not None and table.num_rows == count:
            lines = np.arange(first_line, first_line + count, dtype=np.int64)
            split: list[bytes] = []

            def text(number: int) -> bytes:
                if not split:
                    split.extend(chunk.split(b"\n"))
                return split[number - first_line]

            _accept(result, table, lines, text)
            return result
    _parse_lines(result, chunk.split(b"\n")[:count], first_line, schema)
    return result


def _parse_lines(result: _ChunkResult, lines: list[bytes], first_line: int, schema: Any) -> None:
    """The careful path: windows of lines, narrowed around the rows Arrow names as bad."""
    kept: list[int] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue  # blank lines are skipped, as they always were
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            result.slow.append((first_line + i, line))
            continue
        kept.append(i)

    def text(number: int) -> bytes:
        return lines[number - first_line]

    pending = [(0, len(kept))]
    while pending:
        start, stop = pending.pop()
        if stop - start <= 0:
            continue
        window = kept[start:stop]
        if len(window) <= max(_SMALLEST_WINDOW, 1):
            result.slow.extend((first_line + i, lines[i]) for i in window)
            continue
        try:
            table = _arrow(b"\n".join(lines[i] for i in window), schema)
        except pa.ArrowInvalid as error:
            hint = _ROW_HINT.search(str(error))
            row = int(hint.group(1)) if hint else -1
            if not 0 <= row < len(window):
                middle = (start + stop) // 2
                pending += [(middle, stop), (start, middle)]
                continue
            # The named row, or the one before it (a line with trailing garbage is reported
            # as the next row): both, and one after, are read one by one.
            low, high = max(row - 1, 0), min(row + 2, len(window))
            result.slow.extend((first_line + i, lines[i]) for i in window[low:high])
            pending += [(start + high, stop), (start, start + low)]
            continue
        if table.num_rows != len(window):
            result.slow.extend((first_line + i, lines[i]) for i in window)
            continue
        numbers = np.asarray(window, dtype=np.int64) + first_line
        _accept(result, table, numbers, text)


def _chunks(handle: IO[bytes], progress: Progress | None, total: int | None) -> Iterator[bytes]:
    done = 0
    first = True
    while True:
        chunk = handle.read(CHUNK_BYTES)
        if not chunk:
            return
        if not chunk.endswith(b"\n"):
            chunk += handle.readline()
        if first:
            # A byte-order mark at the very start is not part of the first record.
            chunk = chunk.removeprefix(_BOM)
            first = False
        done += len(chunk)
        if progress:
            progress(done, total)
        yield chunk


def _slow_row(number: int, line: bytes) -> Any:
    """One line the careful way: an event, an InvalidRow, or None for a blank line."""
    if not line.strip():
        return None
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as error:
        column = min(error.pos, len(line.rstrip(b"\r\n"))) + 1
        return InvalidRow(number, f"not valid JSON: {error.msg} (column {column})")
    except UnicodeDecodeError as error:
        return InvalidRow(number, f"not valid UTF-8 text (byte {error.start + 1})")
    try:
        return parse_record(raw)
    except InvalidRecord as error:
        return InvalidRow(number, error.reason)


def read_jsonl_table(
    handle: IO[bytes], progress: Progress | None = None, total: int | None = None
) -> EventTableRead:
    """Read a JSON Lines log (or a file holding one JSON array of records)."""
    head = handle.read(64).removeprefix(_BOM).lstrip()
    handle.seek(0)
    if head.startswith(b"["):
        return _json_array(handle.read().decode("utf-8-sig", errors="replace"))
    chunks = _chunks(handle, progress, total)
    first = next(chunks, None)
    if first is None:
        return EventTableRead(concat([]))
    schema = _sample_schema(first[: 1 << 20])
    results: list[Future[_ChunkResult]] = []
    line = 1
    with ThreadPoolExecutor(max_workers=2) as pool:
        for chunk in [first] if first is not None else []:
            results.append(pool.submit(_parse_chunk, chunk, line, schema))
            line += chunk.count(b"\n")
        for chunk in chunks:
            results.append(pool.submit(_parse_chunk, chunk, line, schema))
            line += chunk.count(b"\n")
        parts: list[pl.DataFrame] = []
        invalid: list[InvalidRow] = []
        events: list[Any] = []
        event_lines: list[int] = []
        for future in results:
            chunk_result = future.result()
            parts.extend(chunk_result.tables)
            for number, text in chunk_result.slow:
                outcome = _slow_row(number, text)
                if isinstance(outcome, InvalidRow):
                    invalid.append(outcome)
                elif outcome is not None:
                    events.append(outcome)
                    event_lines.append(number)
    if events:
        parts.append(from_events(events, event_lines))
    invalid.sort(key=lambda row: row.line)
    return EventTableRead(concat(parts), invalid)


def _json_array(text: str) -> EventTableRead:
    """A file holding one JSON array of records; their positions stand in for line numbers."""
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReadError(f"not a valid JSON array: {error.msg} at line {error.lineno}") from None
    events: list[Any] = []
    lines: list[int] = []
    invalid: list[InvalidRow] = []
    for number, raw in enumerate(records, start=1):
        try:
            events.append(parse_record(raw))
            lines.append(number)
        except InvalidRecord as error:
            invalid.append(InvalidRow(number, error.reason))
    return EventTableRead(from_events(events, lines), invalid)


def size_of(path: Path) -> int | None:
    """The file size for progress, or None for compressed input."""
    return None if path.name.lower().endswith(".gz") else path.stat().st_size
