"""The path splitter (numpy over Arrow's bytes) against the plain Python definition.

A path is ``str.split(sep)``, each segment stripped of whitespace, empty segments dropped;
channel codes are numbered by first appearance in file order. (The Arrow ``split_pattern``
implementation this replaced followed the same definition.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.io.paths_reader import _in_threads, _path_table, read_paths
from attribution.paths import PathTable


def reference(paths: list[str | None], sep: str) -> tuple[tuple[str, ...], list[list[int]]]:
    index: dict[str, int] = {}
    rows = []
    for path in paths:
        names = [seg.strip() for seg in (path or "").split(sep)]
        rows.append([index.setdefault(name, len(index)) for name in names if name])
    return tuple(index), rows


def split(chunks: list[pa.Array], sep: str) -> PathTable:
    n = sum(len(c) for c in chunks)
    zeros = np.zeros(n)
    return _path_table(pa.chunked_array(chunks, type=chunks[0].type), sep, zeros, zeros, zeros)


def check(paths: list[str | None], sep: str, chunk_rows: int = 3, large: bool = False) -> None:
    kind = pa.large_string() if large else pa.string()
    whole = pa.array(paths, type=kind)
    # Chunks that are slices (non-zero offset into shared buffers), as Arrow's readers make.
    chunks = [whole.slice(i, chunk_rows) for i in range(0, len(paths), chunk_rows)] or [whole]
    table = split(chunks, sep)
    channels, rows = reference(paths, sep)
    assert table.channels == channels
    assert [
        table.codes[table.offsets[i] : table.offsets[i + 1]].tolist() for i in range(len(paths))
    ] == rows
    assert table.codes.dtype == np.int64 and table.offsets.dtype == np.int64


@pytest.mark.parametrize(
    "paths",
    [
        [" email >  push>sms ", "email>>push> ", "a b > c"],  # spaces, empty segments
        ["", " ", ">", ">>", " > ", "a>", ">a", "a>>", "a"],  # empty paths and segments
        ["a>b", "a > b", "b>a", "a>b"],  # duplicate paths (rows stay separate)
        ["émail>pûsh", "пуш>émail", "😀>😀 > x"],  # multi-byte names
        [None, "a>b", None, ""],  # nulls (Parquet) are empty paths
        ["x" * 40 + ">" + "y" * 40, "y" * 40],  # long names
    ],
)
@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
def test_split_equals_the_python_definition(
    paths: list[str | None], large: bool, chunk_rows: int
) -> None:
    check(paths, ">", chunk_rows, large)


@pytest.mark.parametrize("sep", ["|", ",", " ", "→", "😀", "\t"])
def test_other_separators(sep: str) -> None:
    check([f"a{sep}b{sep}{sep}c", f" {sep}a", "a", f"b {sep} a {sep}", f"→{sep}😀"], sep)


def test_chunks_of_empty_strings_and_no_rows() -> None:
    check(["", "", ""], ">", chunk_rows=2)
    table = split([pa.array([], type=pa.string())], ">")
    assert table.n_paths == 0 and table.codes.tolist() == [] and table.offsets.tolist() == [0]


names = st.sampled_from(["email", "push", " sms", "a b", "émail", "", " ", "x>y"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.lists(names, max_size=6).map(">".join), st.text(max_size=12)),
        max_size=30,
    ),
    st.integers(1, 7),
    st.sampled_from([">", "|", "→"]),
)
def test_random_paths(paths: list[str | None], chunk_rows: int, sep: str) -> None:
    check(paths, sep, chunk_rows)


def test_csv_edge_cases_end_to_end(tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text(
        "path,total_conversions\n"
        '"a > b",1\n'  # quoted
        '"c,d>e",2\n'  # a comma inside quotes is part of the name
        '"say ""hi"">f",1\n'  # escaped quotes
        ">,4\n"  # no channel at all: unattributed
        "a>b,3\n",  # the same path again, its own row
        encoding="utf-8",
    )
    read = read_paths(src)
    table = read.table
    assert table.channels == ("a", "b", "c,d", "e", 'say "hi"', "f")
    assert [table.path(i) for i in range(table.n_paths)] == [
        ("a", "b"),
        ("c,d", "e"),
        ('say "hi"', "f"),
        (),
        ("a", "b"),
    ]
    assert table.value.tolist() == [0.0] * 5 and table.nulls.tolist() == [0.0] * 5
    assert read.totals.unattributed_conversions == 4.0


def test_parquet_large_strings_and_nulls(tmp_path: Path) -> None:
    src = tmp_path / "p.parquet"
    pq.write_table(
        pa.table(
            {
                "path": pa.array(["a > b", None, " b>>c "], type=pa.large_string()),
                "total_conversions": pa.array([1, 2, 3], type=pa.int32()),
            }
        ),
        src,
    )
    table = read_paths(src).table
    assert [table.path(i) for i in range(table.n_paths)] == [("a", "b"), (), ("b", "c")]
    assert table.conversions.tolist() == [1.0, 2.0, 3.0]


def test_in_threads_keeps_order_and_raises() -> None:
    assert _in_threads(lambda x: x * x, list(range(50))) == [x * x for x in range(50)]
    assert _in_threads(lambda x: x, []) == []

    def fail_at_7(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    with pytest.raises(ValueError, match="seven"):
        _in_threads(fail_at_7, list(range(20)))


def test_integer_counts_are_reported_as_written(tmp_path: Path) -> None:
    src = tmp_path / "p.parquet"
    pq.write_table(
        pa.table({"path": ["a", "b"], "total_conversions": pa.array([-2, 3], type=pa.int64())}),
        src,
    )
    read = read_paths(src)
    assert [row.reason for row in read.invalid] == ["total_conversions -2 is negative"]
    assert read.table.conversions.tolist() == [3.0]
