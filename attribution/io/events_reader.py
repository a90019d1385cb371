"""Raw event logs (JSON Lines, CSV or Parquet), validated by the stream's own parse_event.

Every record that cannot become an event is reported with its line (1-based line of the file,
header included for CSV; row number for Parquet) and the reason; the others are returned in
file order.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from attribution.events import AnyEvent, InvalidRecord, parse_event
from attribution.io import InvalidRow, ReadError, suffix_of

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
INPUT_FORMATS = ("jsonl", "csv", "parquet")

# Called with (bytes or rows done, total or None) now and then while reading.
Progress = Callable[[int, int | None], None]
_PROGRESS_EVERY = 8192


@dataclass
class EventsRead:
    """Valid events in file order, and the records that were skipped."""

    events: list[AnyEvent] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)


def input_format(path: str | Path, explicit: str | None = None) -> str:
    """The format to read ``path`` with: ``explicit``, else from the file extension."""
    if explicit:
        if explicit not in INPUT_FORMATS:
            raise ReadError(
                f"unknown input format {explicit!r}; expected one of {', '.join(INPUT_FORMATS)}"
            )
        return explicit
    kind = FORMATS.get(suffix_of(path))
    if kind is None:
        raise ReadError(
            f"{path}: cannot tell the event format from the extension "
            f"{''.join(Path(path).suffixes) or '(none)'!r}; expected one of "
            f"{', '.join(FORMATS)} (optionally .gz), or pass --input-format"
        )
    return kind


def read_events(
    source: str | Path, fmt: str | None = None, progress: Progress | None = None
) -> EventsRead:
    """Read and validate every record of an event log."""
    path = Path(source)
    kind = input_format(path, fmt)
    result = EventsRead()
    if kind == "parquet":
        records: Iterator[tuple[int, Any]] = _parquet_records(path, progress)
    elif kind == "csv":
        records = _csv_records(path, progress)
    else:
        records = _json_records(path, progress)
    append_event = result.events.append
    for line, raw in records:
        if isinstance(raw, InvalidRecord):
            result.invalid.append(InvalidRow(line, raw.reason))
            continue
        try:
            append_event(parse_event(raw))
        except InvalidRecord as error:
            result.invalid.append(InvalidRow(line, error.reason))
    return result


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _size(path: Path) -> int | None:
    # Compressed input: the position in the decompressed text says nothing about the file size.
    return None if path.name.lower().endswith(".gz") else path.stat().st_size


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _json_records(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any]]:
    # Bytes, decoded line by line, so that a bad byte spoils its own line and no other.
    total = _size(path)
    done = 0
    with _open_binary(path) as handle:
        head = handle.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
        if head.startswith(b"["):
            handle.seek(0)
            yield from _json_array(handle.read().decode("utf-8-sig", errors="replace"))
            return
        handle.seek(0)
        for number, line in enumerate(handle, start=1):
            if progress and number % _PROGRESS_EVERY == 0:
                progress(done, total)
            done += len(line)
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                column = min(error.pos, len(line.rstrip(b"\r\n"))) + 1
                yield number, InvalidRecord(f"not valid JSON: {error.msg} (column {column})")
            except UnicodeDecodeError as error:
                yield number, InvalidRecord(f"not valid UTF-8 text (byte {error.start + 1})")
    if progress:
        progress(total or done, total or done)


def _json_array(text: str) -> Iterator[tuple[int, Any]]:
    """A file holding one JSON array of records; their positions stand in for line numbers."""
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReadError(f"not a valid JSON array: {error.msg} at line {error.lineno}") from None
    yield from enumerate(records, start=1)


def _csv_records(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip().lstrip("\ufeff") for name in header]
        if "type" not in header:
            raise ReadError(
                f"{path}: no 'type' column in the CSV header; columns found: {', '.join(header)}"
            )
        width = len(header)
        count = 0
        for row in reader:
            count += 1
            if progress and count % _PROGRESS_EVERY == 0:
                progress(count, None)
            if not row:
                continue
            if len(row) > width:
                yield (
                    reader.line_num,
                    InvalidRecord(f"{len(row)} fields but the header has {width} columns"),
                )
                continue
            # Empty cells are missing fields: parse_event then names the missing field.
            yield reader.line_num, {k: v for k, v in zip(header, row, strict=False) if v != ""}
    if progress:
        progress(count, count)


def _parquet_records(path: Path, progress: Progress | None) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ReadError(f"{path}: not a readable Parquet file: {error}") from None
    total = parquet.metadata.num_rows
    row = 0
    batches = parquet.iter_batches()
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as error:
            raise ReadError(f"{path}: Parquet data unreadable after row {row}: {error}") from None
        for record in batch.to_pylist():
            row += 1
            yield row, {k: v for k, v in record.items() if v is not None}
        if progress:
            progress(row, total)
