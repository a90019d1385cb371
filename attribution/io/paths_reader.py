"""Aggregated paths in ChannelAttribution's layout (CSV, gzipped CSV or Parquet).

One row per path: ``path`` (channel names joined by a one-character separator),
``total_conversions``, and optionally ``total_conversion_value`` and ``total_null``. The whole
file is parsed by Arrow and split with numpy and one Arrow kernel, never row by row in Python:
600,000 paths take about a quarter of a second.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from attribution.engine import Totals
from attribution.io import InvalidRow, ReadError, suffix_of
from attribution.paths import PathTable

PATH_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# A plain decimal number; anything else in a count column is reported, never guessed.
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"

Progress = Callable[[int, int | None], None]
Item = TypeVar("Item")
Result = TypeVar("Result")


def _call(function: str, args: list[Any], options: Any = None) -> Any:
    """An Arrow compute kernel by name.

    ``pyarrow.compute`` generates a Python wrapper for each of its hundreds of kernels when it
    is imported (about 30 ms of every command); the few kernels needed on the common path are
    called through the extension module underneath it instead.
    """
    try:
        from pyarrow._compute import call_function
    except ImportError:  # pragma: no cover - the private module moved: the public API then
        from pyarrow.compute import call_function
    return call_function(function, args, options)


@dataclass
class PathsRead:
    """A path file as a table, its totals, and the rows that were skipped."""

    table: PathTable
    totals: Totals
    invalid: list[InvalidRow] = field(default_factory=list)


@dataclass(frozen=True)
class PathColumns:
    """Column names of a path file (ChannelAttribution's by default)."""

    path: str = "path"
    conversions: str = "total_conversions"
    value: str = "total_conversion_value"
    null: str = "total_null"


def read_paths(
    source: str | Path,
    sep: str = ">",
    columns: PathColumns | None = None,
    strict: bool = False,
    progress: Progress | None = None,
) -> PathsRead:
    """Read a path file; bad rows are reported in ``invalid`` (or raise, if ``strict``)."""
    if len(sep) != 1:
        raise ReadError(f"the path separator must be one character, got {sep!r}")
    cols = columns or PathColumns()
    path = Path(source)
    kind = suffix_of(path)
    if kind == ".csv":
        data, invalid, first_line = _load_csv(path, cols)
    elif kind == ".parquet":
        data, invalid, first_line = _load_parquet(path, cols)
    else:
        raise ReadError(
            f"{path}: unknown path file format {''.join(path.suffixes) or '(no extension)'!r}; "
            f"expected one of {', '.join(PATH_SUFFIXES)}"
        )
    n = data.num_rows
    if progress:
        progress(n, n)
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, list[str]] = {}
    numbers = {}
    for name, required in ((cols.conversions, True), (cols.value, False), (cols.null, False)):
        if name in data.column_names:
            numbers[name] = _numbers(data.column(name), name, required, bad, reasons)
        else:
            numbers[name] = np.zeros(n)
    invalid.extend(InvalidRow(row + first_line, "; ".join(why)) for row, why in reasons.items())
    invalid.sort(key=lambda r: r.line)
    if strict and invalid:
        first = invalid[0]
        raise ReadError(f"{path}: line {first.line}: {first.reason}")
    path_column = data.column(cols.path)
    counts = [numbers[name] for name in (cols.conversions, cols.value, cols.null)]
    if bad.any():
        keep = ~bad
        path_column = path_column.filter(pa.array(keep))
        counts = [column[keep] for column in counts]
    table = _path_table(path_column, sep, *counts)
    return PathsRead(table, Totals.from_table(table, len(invalid)), invalid)


def _require(path: Path, found: list[str], cols: PathColumns) -> list[str]:
    missing = [name for name in (cols.path, cols.conversions) if name not in found]
    if missing:
        raise ReadError(
            f"{path}: missing column {', '.join(map(repr, missing))}; "
            f"columns found: {', '.join(map(repr, found)) or '(none)'}"
        )
    return [name for name in (cols.path, cols.conversions, cols.value, cols.null) if name in found]


def _csv_header(path: Path) -> list[str]:
    import csv

    opener: Any = open
    if path.name.lower().endswith(".gz"):
        import gzip

        opener = gzip.open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ReadError(f"{path}: cannot read the CSV header: {error}") from None


def _load_csv(path: Path, cols: PathColumns) -> tuple[pa.Table, list[InvalidRow], int]:
    import pyarrow.csv as pacsv

    wanted = _require(path, _csv_header(path), cols)
    malformed: list[InvalidRow] = []

    def skip(row: Any) -> str:
        line = row.number if row.number is not None else 0
        malformed.append(
            InvalidRow(line, f"expected {row.expected_columns} fields, got {row.actual_columns}")
        )
        return "skip"

    numeric = [name for name in wanted if name != cols.path]

    def read(number_type: pa.DataType, threads: bool = True) -> pa.Table:
        malformed.clear()
        types = {name: number_type for name in numeric} | {cols.path: pa.string()}
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=threads),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(include_columns=wanted, column_types=types),
        )

    try:
        try:
            data = read(pa.float64())
        except pa.ArrowInvalid:
            # Some count is not a number: read the counts as text to report each bad cell.
            data = read(pa.string())
        if any(row.line == 0 for row in malformed):
            # Arrow knows line numbers of malformed rows only when parsing on one thread.
            data = read(data.schema.field(numeric[0]).type, threads=False)
    except pa.ArrowInvalid as error:
        raise ReadError(f"{path}: not a readable CSV file: {error}") from None
    # Line 1 is the header.
    return data, malformed, 2


def _load_parquet(path: Path, cols: PathColumns) -> tuple[pa.Table, list[InvalidRow], int]:
    import pyarrow.parquet as pq

    try:
        found = pq.read_schema(path).names
        data = pq.read_table(path, columns=_require(path, found, cols))
    except (pa.ArrowInvalid, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ReadError(f"{path}: not a readable Parquet file: {error}") from None
    return data, [], 1


def _unpack(bitmap: pa.Buffer, offset: int, n: int) -> NDArray[np.bool_]:
    bits = np.frombuffer(bitmap, dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[offset : offset + n].astype(bool)


def _bools(array: pa.Array) -> NDArray[np.bool_]:
    """A null-free boolean Arrow array as numpy (bits unpacked from its buffer)."""
    return _unpack(array.buffers()[1], array.offset, len(array))


def _nulls(array: pa.Array) -> NDArray[np.bool_]:
    """Which entries of an Arrow array are null (its validity bitmap, inverted)."""
    validity = array.buffers()[0]
    if not array.null_count or validity is None:
        return np.zeros(len(array), dtype=bool)
    return ~_unpack(validity, array.offset, len(array))


_NUMPY_OF = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float64(): np.float64,
}


def _values(array: pa.Array, null_as: float | None = None) -> NDArray[Any]:
    """A numeric Arrow array as numpy, read from its buffer; nulls become ``null_as``.

    pyarrow's own ``to_numpy`` and ``fill_null`` import pandas on first use (about 0.3 s of
    every command), so the buffer is read directly.
    """
    values = np.frombuffer(array.buffers()[1], dtype=_NUMPY_OF[array.type])
    values = values[array.offset : array.offset + len(array)]
    if array.null_count:
        if null_as is None:
            raise ValueError("the array has nulls and no value was given for them")
        values = values.copy()
        values[_nulls(array)] = null_as
    return values


def _floats(array: pa.Array, null_as: float | None = None) -> NDArray[np.float64]:
    """A float64 Arrow array as a writable numpy copy (nulls as ``null_as``)."""
    return _values(array, null_as).astype(np.float64, copy=True)


def _numbers(
    column: pa.ChunkedArray,
    name: str,
    required: bool,
    bad: NDArray[np.bool_],
    reasons: dict[int, list[str]],
) -> NDArray[np.float64]:
    """The column as non-negative floats; bad cells flag their row in ``bad`` with a reason."""
    array = column.combine_chunks()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        import pyarrow.compute as pc  # only when a count is not a number (the rare case)

        text = pc.utf8_trim_whitespace(array.fill_null(""))
        empty = _bools(pc.equal(text, ""))
        numeric = _bools(pc.match_substring_regex(text, _NUMBER))
        parsed = pc.if_else(pa.array(numeric), text, "0")
        values = _floats(parsed.cast(pa.float64()))
        not_number = ~numeric & ~empty
    elif pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        empty = _nulls(array)
        # CSV counts are read as float64 already (the cast would import pyarrow.compute).
        floats = array if array.type == pa.float64() else array.cast(pa.float64())
        values = _floats(floats, null_as=0.0)
        not_number = ~np.isfinite(values)
        text = array
    else:
        raise ReadError(f"column {name!r} has type {array.type}; expected numbers")
    values[empty | not_number] = 0.0
    negative = values < 0
    if required:
        _flag(empty, f"missing {name}", bad, reasons)
    for row in np.flatnonzero(not_number):
        _flag_row(int(row), f"{name} {text[int(row)].as_py()!r} is not a number", bad, reasons)
    for row in np.flatnonzero(negative):
        _flag_row(int(row), f"{name} {text[int(row)].as_py()} is negative", bad, reasons)
    return np.asarray(values, dtype=np.float64)


def _flag(mask: NDArray[np.bool_], reason: str, bad: NDArray[np.bool_], reasons: Any) -> None:
    for row in np.flatnonzero(mask):
        _flag_row(int(row), reason, bad, reasons)


def _flag_row(row: int, reason: str, bad: NDArray[np.bool_], reasons: dict[int, list[str]]) -> None:
    bad[row] = True
    reasons.setdefault(row, []).append(reason)


def _separators(text: NDArray[np.uint8], sep: bytes) -> NDArray[np.int64]:
    """Where ``sep`` starts in UTF-8 ``text`` (never inside another character: UTF-8 is
    self-synchronising, so a byte match of a whole character is that character)."""
    if len(sep) == 1:
        return np.flatnonzero(text == sep[0])
    n = len(text) - len(sep) + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    match = text[:n] == sep[0]
    for i in range(1, len(sep)):
        match &= text[i : n + i] == sep[i]
    return np.flatnonzero(match)


def _split_chunk(
    chunk: pa.Array, sep: str
) -> tuple[list[str], NDArray[np.int32], NDArray[np.int64]]:
    """Distinct raw segments, each segment's index among them, and segments per row.

    The text is not copied: separators are found with numpy in the chunk's UTF-8 bytes, and
    the segments are an Arrow string array over those same bytes, dictionary-encoded by Arrow.
    To keep the segments contiguous each one but the last of its row keeps its separator
    (``a>b>c`` is ``a>``, ``b>``, ``c``): callers drop it from the few distinct segments, and
    the segments without it end the rows. A null path is an empty one.
    """
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        chunk = chunk.cast(pa.string())
    if chunk.null_count:
        chunk = _call("coalesce", [chunk, pa.scalar("", chunk.type)])
    large = pa.types.is_large_string(chunk.type)
    n = len(chunk)
    _, offsets_buffer, data = chunk.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64 if large else np.int32)
    offsets = offsets[chunk.offset : chunk.offset + n + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    if data is None or hi == lo:
        return [""], np.zeros(n, dtype=np.int32), np.ones(n, dtype=np.int64)
    # Segments start at the rows' starts and after each separator: both lists are sorted, and
    # sorting them together merges them (equal starts: an empty segment, or an empty row).
    after = _separators(np.frombuffer(data, dtype=np.uint8)[lo:hi], sep.encode())
    after += lo + len(sep.encode())
    starts = np.concatenate([offsets, after], dtype=offsets.dtype)
    starts.sort(kind="stable")  # two sorted runs: a linear merge
    total = len(starts) - 1
    kind = pa.LargeStringArray if large else pa.StringArray
    segments = kind.from_buffers(total, pa.py_buffer(starts), data)
    encoded = _call("dictionary_encode", [segments])
    indices = np.frombuffer(encoded.indices.buffers()[1], dtype=np.int32)[:total]
    dictionary: list[str] = encoded.dictionary.to_pylist()
    ends_row = np.array([not raw.endswith(sep) for raw in dictionary], dtype=bool)
    row_ends = np.flatnonzero(ends_row[indices])
    per_row = np.diff(row_ends, prepend=-1)
    return dictionary, indices, per_row


def _path_table(
    paths: pa.ChunkedArray,
    sep: str,
    conversions: NDArray[np.float64],
    value: NDArray[np.float64],
    nulls: NDArray[np.float64],
) -> PathTable:
    """Split the path strings into channel codes (no loop per row)."""
    index: dict[str, int] = {}
    # Per chunk: local code of each distinct segment, then the segments' indices among them
    # (or, with empty segments, their codes already), and the number of codes per row.
    parts: list[tuple[NDArray[np.int64] | None, NDArray[Any], NDArray[np.int64]]] = []
    # numpy and Arrow release the GIL: chunks are split in parallel, then merged in file order
    # so that channel codes are numbered by first appearance whatever the thread timing.
    splits = _in_threads(lambda chunk: _split_chunk(chunk, sep), paths.chunks)
    for chunk, (dictionary, indices, per_row) in zip(paths.chunks, splits, strict=True):
        # The few distinct segments, in order of first appearance: drop the separator
        # and spaces, then number new names; -1 marks an empty segment.
        local = np.array(
            [_code(index, raw.removesuffix(sep).strip()) for raw in dictionary],
            dtype=np.int64,
        )
        if (local >= 0).all():
            parts.append((local, indices, per_row))
            continue
        codes = local[indices]
        kept = codes >= 0
        rows = np.repeat(np.arange(len(chunk)), per_row)
        lengths = np.bincount(rows[kept], minlength=len(chunk)).astype(np.int64)
        parts.append((None, codes[kept], lengths))
    n = len(paths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    if parts:
        np.cumsum(np.concatenate([lengths for _, _, lengths in parts]), out=offsets[1:])
    codes = np.empty(int(offsets[-1]), dtype=np.int64)
    at = 0
    for local_codes, indices, _ in parts:
        if local_codes is None:
            codes[at : at + len(indices)] = indices
        else:
            np.take(local_codes, indices, out=codes[at : at + len(indices)], mode="clip")
        at += len(indices)
    return PathTable(tuple(index), offsets, codes, conversions, value, nulls)


def _in_threads(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """``[function(item) for item in items]``, computed on up to 4 threads (this one included).

    concurrent.futures would do, but it imports logging: 5 ms of every command.
    """
    workers = min(4, os.cpu_count() or 1, len(items))
    if workers <= 1:
        return [function(item) for item in items]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    lock = threading.Lock()
    taken = 0

    def work() -> None:
        nonlocal taken
        while not errors:
            with lock:
                i = taken
                taken += 1
            if i >= len(items):
                return
            try:
                results[i] = function(items[i])
            except BaseException as error:  # re-raised by the calling thread
                errors.append(error)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers - 1)]
    for thread in threads:
        thread.start()
    work()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _code(index: dict[str, int], name: str) -> int:
    """The channel code of a trimmed segment name; -1 for an empty segment."""
    if not name:
        return -1
    return index.setdefault(name, len(index))
