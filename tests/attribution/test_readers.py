"""Path and event readers: parsing, validation, and line numbers of bad records."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attribution.events import Purchase, Touchpoint
from attribution.io import InvalidRow, ReadError
from attribution.io.events_reader import read_events
from attribution.io.paths_reader import PathColumns, read_paths
from attribution.paths import PathTable

HEADER = "path,total_conversions,total_conversion_value,total_null\n"


def paths_of(table: PathTable) -> list[tuple[str, ...]]:
    return [table.path(i) for i in range(table.n_paths)]


def write(tmp_path: Path, name: str, text: str) -> Path:
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    return target


def test_paths_trimmed_and_empty_segments_skipped(tmp_path: Path) -> None:
    src = write(
        tmp_path,
        "p.csv",
        HEADER + ' email >  push>sms ,2,30.5,1\nemail>>push> ,1,10,0\n"a b > c",0,0,4\n',
    )
    read = read_paths(src)
    assert paths_of(read.table) == [("email", "push", "sms"), ("email", "push"), ("a b", "c")]
    assert read.table.conversions.tolist() == [2.0, 1.0, 0.0]
    assert read.table.value.tolist() == [30.5, 10.0, 0.0]
    assert read.table.nulls.tolist() == [1.0, 0.0, 4.0]
    assert read.invalid == []
    assert (read.totals.conversions, read.totals.value, read.totals.null) == (3.0, 40.5, 5.0)


def test_empty_path_with_conversions_is_unattributed(tmp_path: Path) -> None:
    src = write(tmp_path, "p.csv", HEADER + " > ,3,9,0\nemail,1,1,0\n")
    read = read_paths(src)
    assert read.totals.unattributed_conversions == 3.0
    assert read.totals.conversions == 4.0
    assert paths_of(read.table) == [(), ("email",)]


def test_duplicate_rows_add_up(tmp_path: Path) -> None:
    from attribution.engine import attribute_paths
    from attribution.models.options import ModelOptions

    dup = write(tmp_path, "d.csv", HEADER + "a>b,1,10,0\na > b,2,20,1\n")
    once = write(tmp_path, "o.csv", HEADER + "a>b,3,30,1\n")
    models = ["first_touch", "linear", "position_based"]
    got = [
        attribute_paths(r.table, r.totals, models, ModelOptions()).to_json()
        for r in (read_paths(dup), read_paths(once))
    ]
    assert got[0] == got[1]


def test_custom_separator_and_column_names(tmp_path: Path) -> None:
    src = write(tmp_path, "p.csv", "journey,conv,revenue,lost\nemail | push,2,8,1\n")
    columns = PathColumns(path="journey", conversions="conv", value="revenue", null="lost")
    read = read_paths(src, sep="|", columns=columns)
    assert paths_of(read.table) == [("email", "push")]
    assert (read.totals.conversions, read.totals.value, read.totals.null) == (2.0, 8.0, 1.0)


def test_value_and_null_columns_are_optional(tmp_path: Path) -> None:
    read = read_paths(write(tmp_path, "p.csv", "path,total_conversions\na>b,2\n"))
    assert read.table.value.tolist() == [0.0] and read.table.nulls.tolist() == [0.0]


def test_missing_column_is_named_with_the_columns_found(tmp_path: Path) -> None:
    src = write(tmp_path, "p.csv", "path,conversions\na,1\n")
    with pytest.raises(
        ReadError, match=r"missing column 'total_conversions'.*'path', 'conversions'"
    ):
        read_paths(src)


def test_bad_numbers_reported_with_line_numbers(tmp_path: Path) -> None:
    src = write(
        tmp_path,
        "p.csv",
        HEADER + "a,1,5,0\nb,x,5,0\nc,1,-2,0\nd,,1,0\ne,nan,1,0\nf,2,3,0\ng,1,2,3,4\n",
    )
    read = read_paths(src)
    by_line = {row.line: row.reason for row in read.invalid}
    assert sorted(by_line) == [3, 4, 5, 6, 8]
    assert "total_conversions 'x' is not a number" in by_line[3]
    assert "total_conversion_value -2 is negative" in by_line[4]
    assert "missing total_conversions" in by_line[5]
    assert "'nan' is not a number" in by_line[6]
    assert "expected 4 fields, got 5" in by_line[8]
    assert paths_of(read.table) == [("a",), ("f",)]
    assert read.totals.invalid_records == 5
    with pytest.raises(ReadError, match="line 3"):
        read_paths(src, strict=True)


def test_bad_separator_rejected(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="one character"):
        read_paths(write(tmp_path, "p.csv", HEADER), sep="->")


def test_gzip_and_parquet_paths(tmp_path: Path) -> None:
    gz = tmp_path / "p.csv.gz"
    gz.write_bytes(gzip.compress((HEADER + "a>b,1,2,3\n").encode()))
    assert paths_of(read_paths(gz).table) == [("a", "b")]
    parquet = tmp_path / "p.parquet"
    pq.write_table(
        pa.table(
            {
                "path": ["a > b", "c", None],
                "total_conversions": [1, 2, 0],
                "total_conversion_value": [1.5, None, 0.0],
                "total_null": [0.0, float("nan"), 1.0],
            }
        ),
        parquet,
    )
    read = read_paths(parquet)
    assert paths_of(read.table) == [("a", "b"), ()]
    assert read.invalid == [InvalidRow(2, "total_null nan is not a number")]


def test_unknown_path_format(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="unknown path file format '.txt'"):
        read_paths(write(tmp_path, "p.txt", HEADER))


def tp(event_id: str, ts: str = "2026-01-05T10:00:00Z", **extra: object) -> str:
    record = {
        "type": "touchpoint",
        "event_id": event_id,
        "ts": ts,
        "customer_id": "c1",
        "channel": "email",
    }
    record.update(extra)
    return json.dumps(record)


def test_events_invalid_kinds_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        tp("e1"),
        '{"type": "touchpoint", "event_id": ',
        json.dumps({"type": "chargeback", "event_id": "x"}),
        json.dumps({"event_id": "x"}),
        json.dumps({"type": "purchase", "event_id": "p1", "ts": 1, "customer_id": "c1"}),
        "",
        tp("e2", ts="2026-01-05T10:00:00"),
        "[1, 2]",
        json.dumps(
            {
                "type": "purchase",
                "event_id": "p2",
                "ts": "2026-01-05T11:00:00+01:00",
                "customer_id": "c1",
                "order_id": "o1",
                "amount": -3,
            }
        ),
        tp("e3"),
    ]
    read = read_events(write(tmp_path, "e.jsonl", "\n".join(lines) + "\n"))
    assert [e.event_id for e in read.events] == ["e1", "e3"]
    reasons = {row.line: row.reason for row in read.invalid}
    assert sorted(reasons) == [2, 3, 4, 5, 7, 8, 9]
    assert reasons[2].startswith("not valid JSON")
    assert "unknown event type 'chargeback'" in reasons[3]
    assert "missing field 'type'" in reasons[4]
    assert "missing field 'order_id'" in reasons[5] and "missing field 'amount'" in reasons[5]
    assert "has no UTC offset" in reasons[7]
    assert "expected a JSON object" in reasons[8]
    assert "amount must not be negative" in reasons[9]


def test_events_csv_empty_cells_are_missing_fields(tmp_path: Path) -> None:
    text = (
        "type,event_id,ts,customer_id,channel,order_id,amount\n"
        "touchpoint,e1,2026-01-05T10:00:00Z,c1,email,,\n"
        "purchase,p1,1767610800000,c1,,o1,12.5\n"
        "purchase,p2,2026-01-05T10:00:00Z,c1,,,3\n"
        "touchpoint,e2,2026-01-05T10:00:00,c1,sms,,\n"
    )
    read = read_events(write(tmp_path, "e.csv", text))
    assert isinstance(read.events[0], Touchpoint)
    purchase = read.events[1]
    assert isinstance(purchase, Purchase) and purchase.amount == 12.5
    assert purchase.ts_ms == 1767610800000
    assert [(r.line, r.reason) for r in read.invalid] == [
        (4, "missing field 'order_id'"),
        (5, read.invalid[1].reason),
    ]
    assert "no UTC offset" in read.invalid[1].reason


def test_events_parquet_row_numbers(tmp_path: Path) -> None:
    target = tmp_path / "e.parquet"
    pq.write_table(
        pa.table(
            {
                "type": ["touchpoint", "touchpoint", "lead"],
                "event_id": ["e1", "e2", "e3"],
                "ts": ["2026-01-05T10:00:00Z", None, "2026-01-05T10:00:00Z"],
                "customer_id": ["c1", "c1", "c1"],
                "channel": ["email", "sms", "sms"],
            }
        ),
        target,
    )
    read = read_events(target)
    assert [e.event_id for e in read.events] == ["e1"]
    assert [(r.line, r.reason) for r in read.invalid] == [
        (2, "missing field 'ts'"),
        (3, read.invalid[1].reason),
    ]
    assert "unknown event type 'lead'" in read.invalid[1].reason


def test_events_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="--input-format"):
        read_events(write(tmp_path, "e.txt", tp("e1")))
    read = read_events(write(tmp_path, "e2.txt", tp("e1") + "\n"), fmt="jsonl")
    assert len(read.events) == 1


def test_events_bom_and_bad_bytes(tmp_path: Path) -> None:
    target = tmp_path / "e.jsonl"
    target.write_bytes(
        b"\xef\xbb\xbf"
        + tp("e1").encode()
        + b"\n"
        + tp("e2", channel="emXail").encode().replace(b"X", b"\xff")
        + b"\n"
        + tp("e3").encode()
        + b"\n"
    )
    read = read_events(target)
    assert [e.event_id for e in read.events] == ["e1", "e3"]
    assert [row.line for row in read.invalid] == [2]
    assert "not valid UTF-8" in read.invalid[0].reason


def test_events_json_array(tmp_path: Path) -> None:
    text = "[" + tp("e1") + ", 3]"
    read = read_events(write(tmp_path, "e.json", text))
    assert [e.event_id for e in read.events] == ["e1"]
    assert read.invalid == [InvalidRow(2, "expected a JSON object, got int")]
