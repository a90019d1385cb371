"""The columnar readers equal ``parse_record`` record by record, on arbitrary records.

The reference below is the per-record reading the project had before the columnar readers
(``json.loads`` or the ``csv`` module or ``to_pylist``, then ``parse_record``); every reader
must give the same valid events (same values) and the same invalid lines with the same
reasons, whatever the records hold.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.events import EVENT_TYPES, InvalidRecord, parse_record
from attribution.io import jsonl_events
from attribution.io.csv_events import read_csv_table
from attribution.io.event_table import COLUMNS, row_of
from attribution.io.parquet_events import read_parquet_table

FIELDS = ("type", "event_id", "customer_id", "channel", "campaign", "interaction", "order_id",
          "amount", "currency", "group", "rate", "ts")  # fmt: skip

clean_texts = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                      max_size=10)  # fmt: skip
texts = st.one_of(
    clean_texts,
    clean_texts,
    st.sampled_from(["c1", "email", "x", "treatment", "control", "touchpoint", "purchase", "",
                     " padded ", "tab\t", "\u00a0nbsp", "é-id", "a" * 256, "a" * 257, "0", "12"]),
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=8),
)  # fmt: skip
iso_times = st.builds(
    lambda moment, fraction, zone, layout: _iso(moment, fraction, zone, layout),
    st.datetimes(min_value=datetime(900, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from([0, 1, 2, 3, 6, 7]),
    st.sampled_from(["Z", "z", "+00:00", "+05:30", "-23:59", "+24:00", "", "+0100"]),
    st.sampled_from(["T", " ", "t"]),
)
good_times = st.builds(
    lambda moment, fraction, zone: _iso(moment, fraction, zone, "T"),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(8999, 12, 31)),
    st.sampled_from([0, 1, 3, 6]),
    st.sampled_from(["Z", "+00:00", "+05:30", "-23:59"]),
)
times = st.one_of(
    good_times,
    good_times,
    iso_times,
    st.integers(min_value=-(10**17), max_value=10**17),
    st.sampled_from(["1767225600000", "-5", "--5", "yesterday", "2026-02-30T00:00:00Z",
                     "2026-01-01T24:00:00Z", "2026-01-01", " 2026-01-01T00:00:00Z", "١٢٣"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)  # fmt: skip
amounts = st.one_of(
    st.floats(min_value=0, max_value=1e9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from(["10.5", " 10.5", "1e3", "ten", "007", "-1", "inf", "1_000"]),
    st.booleans(),
)
values = {
    "type": st.one_of(st.sampled_from(EVENT_TYPES), texts, st.integers(0, 3)),
    "group": st.one_of(st.sampled_from(["treatment", "control", "Control", " treatment"]), texts),
    "ts": times,
    "amount": amounts,
    "rate": amounts,
}


def _iso(moment: datetime, fraction: int, zone: str, layout: str) -> str:
    text = moment.strftime("%Y-%m-%d") + layout + moment.strftime("%H:%M:%S")
    if fraction:
        text += "." + f"{moment.microsecond:06d}{moment.microsecond % 7}"[:fraction]
    return text + zone


def _value(name: str) -> st.SearchStrategy[Any]:
    base = values.get(name, texts)
    return st.one_of(base, st.none(), st.lists(st.integers(), max_size=2))


records = st.dictionaries(
    st.sampled_from(FIELDS + ("extra",)),
    st.deferred(lambda: st.integers()),
    max_size=0,
).flatmap(
    lambda _: st.fixed_dictionaries(
        {}, optional={name: _value(name) for name in FIELDS} | {"extra": st.integers()}
    )
)
# Mostly records of a known type with its fields, so that valid events are common too.
plausible = st.builds(
    lambda kind, base, extra: {**base, "type": kind, **extra},
    st.sampled_from(EVENT_TYPES),
    st.fixed_dictionaries(
        {
            "event_id": texts,
            "customer_id": texts,
            "channel": texts,
            "order_id": texts,
            "amount": amounts,
            "ts": times,
            "campaign": texts,
            "group": values["group"],
            "currency": texts,
            "rate": amounts,
        }  # fmt: skip
    ),
    records,
)
KIND_FIELDS = {
    "touchpoint": (("event_id", "customer_id", "channel", "ts"), ("campaign", "interaction")),
    "purchase": (("event_id", "customer_id", "order_id", "amount", "ts"), ("currency",)),
    "cost": (("event_id", "campaign", "channel", "amount", "ts"), ("currency",)),
    "assignment": (("event_id", "customer_id", "group", "ts"), ("campaign",)),
    "refund": (("event_id", "customer_id", "order_id", "amount", "ts"), ("currency",)),
    "rate": (("event_id", "currency", "rate", "ts"), ()),
}


def _mostly_valid(name: str) -> st.SearchStrategy[Any]:
    if name == "ts":
        return st.one_of(*[good_times] * 8, times)
    if name in ("amount", "rate"):
        return st.one_of(st.floats(0, 1e6), st.floats(0, 1e6), st.integers(0, 10**6), amounts)
    if name == "group":
        return st.one_of(st.sampled_from(["treatment", "control"]), values["group"])
    return st.one_of(*[clean_texts] * 8, texts, st.none())


# Records of one type with its own fields, of the right JSON types: what producers send, with
# an edge case now and then; these are what the vectorised path must get exactly right.
typed = st.sampled_from(list(KIND_FIELDS)).flatmap(
    lambda kind: st.fixed_dictionaries(
        {"type": st.just(kind)} | {name: _mostly_valid(name) for name in KIND_FIELDS[kind][0]},
        optional={name: _mostly_valid(name) for name in KIND_FIELDS[kind][1]},
    )
)
any_record = st.one_of(typed, typed, typed, plausible, records)


def _expected(outcomes: list[tuple[int, Any]]) -> tuple[list[dict[str, Any]], list[tuple]]:
    rows, invalid = [], []
    for line, raw in outcomes:
        if isinstance(raw, InvalidRecord):
            invalid.append((line, raw.reason))
            continue
        try:
            rows.append(row_of(parse_record(raw), line))
        except InvalidRecord as error:
            invalid.append((line, error.reason))
    return rows, invalid


def _same(table: Any, invalid: list[Any], expected: tuple[list[dict[str, Any]], list]) -> None:
    rows, reasons = expected
    got = table.select(COLUMNS).to_dicts()
    assert len(got) == len(rows)
    for mine, theirs in zip(got, rows, strict=True):
        for key in COLUMNS:
            a, b = mine[key], theirs[key]
            if isinstance(b, float) and math.isnan(b):
                assert isinstance(a, float) and math.isnan(a), (key, mine, theirs)
            else:
                assert a == b, (key, mine, theirs)
    assert [(row.line, row.reason) for row in invalid] == reasons


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, default=str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(any_record.map(_json_line), st.sampled_from(
    ["", "   ", "{", "[1]", '{"type": "cost"} x', '{"a": NaN}', "\x0c", '{"type": 1e400}',
     '{"type":"purchase","type":"touchpoint"}', '{"ts": 5.0, "type": "touchpoint"}']
)), max_size=40))  # fmt: skip
def test_json_lines_reader_equals_parse_record(lines: list[str]) -> None:
    data = "\n".join(lines).encode() + b"\n"
    if data[:64].lstrip().startswith(b"["):
        data = b'{"type": "first line"}\n' + data  # a file starting with "[" is one JSON array
    outcomes: list[tuple[int, Any]] = []
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            outcomes.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            column = min(error.pos, len(line.rstrip(b"\r\n"))) + 1
            outcomes.append(
                (number, InvalidRecord(f"not valid JSON: {error.msg} (column {column})"))
            )
    # Arrow is tried on every window, however small, so that the vectorised path meets
    # every kind of record here (the reader itself reads tiny windows line by line).
    with patch.object(jsonl_events, "_SMALLEST_WINDOW", 0):
        read = jsonl_events.read_jsonl_table(io.BytesIO(data))
    _same(read.table, read.invalid, _expected(outcomes))


def _json_typed(name: str) -> st.SearchStrategy[Any]:
    """Values of the JSON type Arrow's schema expects, edge cases of content included."""
    if name == "ts":
        return st.one_of(
            *[good_times] * 4,
            iso_times,
            st.sampled_from(
                [
                    "1767225600000",
                    "-5",
                    "2026-02-30T00:00:00Z",
                    "2026-01-01T24:00:00Z",
                    "2026-01-01",
                    " 2026-01-01T00:00:00Z",
                    "٢٠٢٦-01-01T00:00:00Z",
                ]
            ),
        )
    if name == "amount":
        return st.one_of(
            st.floats(0, 1e9), st.floats(allow_nan=False), st.integers(-(10**15), 10**15)
        )
    if name == "group":
        return st.one_of(st.sampled_from(["treatment", "control"]), texts)
    return st.one_of(*[clean_texts] * 6, texts)


arrow_typed = st.sampled_from(list(KIND_FIELDS)).flatmap(
    lambda kind: st.fixed_dictionaries(
        {"type": st.sampled_from([*[kind] * 8, " " + kind, kind.upper()])}
        | {name: _json_typed(name) for name in KIND_FIELDS[kind][0]},
        optional={name: _json_typed(name) for name in KIND_FIELDS[kind][1]}
        | {"extra": st.integers()},
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(arrow_typed.map(_json_line), min_size=1, max_size=60))
def test_records_arrow_parses_are_validated_as_parse_record_does(lines: list[str]) -> None:
    # Every record has the JSON types of Arrow's schema, so every row reaches the vectorised
    # validation: its verdicts and values must be parse_record's.
    data = "\n".join(lines).encode() + b"\n"
    outcomes = [(n, json.loads(line)) for n, line in enumerate(lines, start=1)]
    slow: list[int] = []
    original = jsonl_events.validate_columns

    def counting(table: pa.Table, numbers: Any) -> Any:
        good, left = original(table, numbers)
        slow.extend(left.tolist())
        return good, left

    with patch.object(jsonl_events, "validate_columns", counting):
        read = jsonl_events.read_jsonl_table(io.BytesIO(data))
    _same(read.table, read.invalid, _expected(outcomes))
    # Nothing was left out of the vectorised validation except what it refused.
    assert read.count + len(read.invalid) == len(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_record, max_size=40), st.booleans(), st.booleans())
def test_csv_reader_equals_parse_record(
    rows: list[dict[str, Any]], crlf: bool, blank_lines: bool
) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in FIELDS])
        if blank_lines:
            buffer.write("\r\n" if crlf else "\n")
    text = buffer.getvalue()
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    outcomes: list[tuple[int, Any]] = []
    for cells in reader:
        if not cells:
            continue
        record = {k: v for k, v in zip(FIELDS, cells, strict=False) if v != ""}
        outcomes.append((reader.line_num, record))
    read = read_csv_table(text.encode(), "log.csv")
    _same(read.table, read.invalid, _expected(outcomes))


PARQUET_TYPES = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "utc": pa.timestamp("ms", "UTC"),
    "offset": pa.timestamp("us", "+02:00"),
    "naive": pa.timestamp("ms"),
}


def _parquet_value(kind: str) -> st.SearchStrategy[Any]:
    moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
    return st.one_of(st.none(), {
        "string": texts if True else st.none(),
        "int": st.integers(min_value=-(2**62), max_value=2**62),
        "float": st.floats(allow_nan=True, allow_infinity=True),
        "bool": st.booleans(),
        "utc": moments.map(lambda m: m.replace(tzinfo=UTC)),
        "offset": moments.map(lambda m: m.replace(tzinfo=timezone(timedelta(hours=2)))),
        "naive": moments,
    }[kind])  # fmt: skip


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    kinds = {
        name: draw(st.sampled_from(["string", "string", "string"] + (
            ["int", "float", "utc", "offset", "naive"] if name in ("ts", "amount")
            else ["int", "bool"])))
        for name in draw(st.sets(st.sampled_from(FIELDS), min_size=1))
    }  # fmt: skip
    if "type" in kinds:
        kinds["type"] = "string"
    n = draw(st.integers(0, 30))
    columns = {}
    for name, kind in kinds.items():
        if name == "type":
            strategy = st.one_of(st.sampled_from(EVENT_TYPES), texts, st.none())
        else:
            strategy = _parquet_value(kind)
        columns[name] = pa.array(draw(st.lists(strategy, min_size=n, max_size=n)),
                                 PARQUET_TYPES[kind])  # fmt: skip
    return pa.table(columns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=parquet_tables())
def test_parquet_reader_equals_parse_record(table: pa.Table, tmp_path_factory: Any) -> None:
    path = Path(tmp_path_factory.mktemp("parquet")) / "log.parquet"
    pq.write_table(table, path)
    outcomes = [
        (number, {k: v for k, v in record.items() if v is not None})
        for number, record in enumerate(pq.read_table(path).to_pylist(), start=1)
    ]
    read = read_parquet_table(path)
    _same(read.table, read.invalid, _expected(outcomes))


def test_a_generated_log_is_read_entirely_by_the_vectorised_path(tmp_path: Path) -> None:
    # Guards the property tests above against passing because nothing took the fast path.
    from crm_attribution.generator import GeneratorConfig, generate

    lines = list(generate(GeneratorConfig(customers=150, days=20, seed=3)))
    data = ("\n".join(lines) + "\n").encode()
    slow: list[int] = []
    original = jsonl_events.validate_columns

    def counting(table: pa.Table, numbers: Any) -> Any:
        good, left = original(table, numbers)
        slow.extend(left.tolist())
        return good, left

    with patch.object(jsonl_events, "validate_columns", counting):
        read = jsonl_events.read_jsonl_table(io.BytesIO(data))
    assert slow == [] and read.invalid == []
    expected = _expected([(n, json.loads(line)) for n, line in enumerate(lines, start=1)])
    _same(read.table, read.invalid, expected)
