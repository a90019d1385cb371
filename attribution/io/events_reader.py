"""Raw event logs (JSON Lines, CSV or Parquet), validated as ``parse_record`` does.

Every record that cannot become an event is reported with its line (1-based line of the file,
header included for CSV; row number for Parquet) and the reason; the others are returned in
file order, as an event table (:mod:`attribution.io.event_table`) or as event objects.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from attribution.io import InvalidRow, ReadError, suffix_of

if TYPE_CHECKING:
    from attribution.events import AnyRecord
    from attribution.io.event_table import EventTableRead

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


@dataclass
class EventsRead:
    """Valid events in file order, and the records that were skipped."""

    events: list[AnyRecord] = field(default_factory=list)
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


def read_event_table(
    source: str | Path, fmt: str | None = None, progress: Progress | None = None
) -> EventTableRead:
    """Read and validate every record of an event log into an event table (file order)."""
    path = Path(source)
    kind = input_format(path, fmt)
    if kind == "parquet":
        from attribution.io.parquet_events import read_parquet_table

        return read_parquet_table(path, progress)
    if kind == "csv":
        from attribution.io.csv_events import read_csv_table

        with _open_binary(path) as handle:
            data = handle.read()
        if progress:
            progress(len(data), len(data))
        return read_csv_table(data, str(path))
    from attribution.io.jsonl_events import read_jsonl_table, size_of

    with _open_binary(path) as handle:
        return read_jsonl_table(handle, progress, size_of(path))


def read_events(
    source: str | Path, fmt: str | None = None, progress: Progress | None = None
) -> EventsRead:
    """Read and validate every record of an event log into event objects (file order)."""
    from attribution.io.event_table import to_events

    read = read_event_table(source, fmt, progress)
    return EventsRead(to_events(read.table), read.invalid)


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")
