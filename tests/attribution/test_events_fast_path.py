"""The fast path of event messages (orjson, then the type's model) decides as the validating
path does: the same model object for a valid record, and for anything else no answer of its own,
so that the validating path gives today's verdict and reason (a dead letter's text)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from attribution.events import (
    InvalidRecord,
    fast_record,
    parse_event,
    parse_event_bytes,
    parse_record,
    parse_record_bytes,
)
from crm_attribution.generator import GeneratorConfig, generate

FIELDS: dict[str, tuple[str, ...]] = {
    "touchpoint": ("event_id", "customer_id", "channel", "campaign", "interaction", "ts"),
    "purchase": ("event_id", "customer_id", "order_id", "amount", "currency", "ts"),
    "cost": ("event_id", "campaign", "channel", "amount", "currency", "ts"),
    "assignment": ("event_id", "customer_id", "group", "campaign", "ts"),
    "refund": ("event_id", "customer_id", "order_id", "amount", "currency", "ts"),
    "rate": ("event_id", "currency", "rate", "ts"),
}
FAST_TYPES = ("touchpoint", "purchase", "cost", "assignment")


def validating(payload: bytes | str | None, parse: Any = parse_record) -> Any:
    """The validating path alone (json, then the discriminated union): a model or the reason."""
    try:
        if payload is None:
            raise InvalidRecord("empty message (no value)")
        try:
            raw = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidRecord(f"not valid JSON: {error}") from None
        return parse(raw)
    except InvalidRecord as error:
        return ("invalid", error.reason)


def through(parse_bytes: Any, payload: bytes | str | None) -> Any:
    try:
        return parse_bytes(payload)
    except InvalidRecord as error:
        return ("invalid", error.reason)


def same(fast: Any, slow: Any) -> None:
    """The same answer: a model of the same class, fields, fields set and value types."""
    assert type(fast) is type(slow)
    if isinstance(slow, tuple):
        assert fast == slow
        return
    assert fast == slow
    assert repr(fast) == repr(slow)  # 5.0 is not 5, an aware datetime is the same one
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.ts_ms == slow.ts_ms and fast.to_record() == slow.to_record()


def check(payload: bytes | str | None) -> bool:
    """Both entry points give what the validating path gives; True when the fast path answered."""
    slow = validating(payload)
    fast = fast_record(payload)
    if fast is not None:
        same(fast, slow)
    same(through(parse_record_bytes, payload), slow)
    same(through(parse_event_bytes, payload), validating(payload, parse_event))
    return fast is not None


_SPACE = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u2003", "\x1f", "\u200b"])
_WORD = st.text(st.characters(codec="utf-8"), max_size=8)  # no surrogates
_TEXT = st.builds(lambda a, w, b: a + w + b, _SPACE, _WORD, _SPACE) | st.sampled_from(
    ["", "   ", "x" * 256, "y" * 257, " " + "z" * 256 + " ", "é" * 256]
)
_MOMENT = st.datetimes(
    min_value=datetime(1960, 1, 1), max_value=datetime(2110, 1, 1), timezones=st.just(UTC)
)


def _iso(moment: datetime, style: int) -> Any:
    ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    forms: list[Any] = [
        moment.isoformat(),
        moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        moment.astimezone().isoformat(),
        moment.replace(tzinfo=None).isoformat(),  # no offset: refused
        ms,
        ms + 0.25,
        str(ms),
        f" {moment.isoformat()} ",
        moment.strftime("%Y-%m-%dT%H:%M:%S+0200"),
        moment.isoformat().replace("+00:00", "z"),
    ]
    return forms[style % len(forms)]


_TIME = st.builds(_iso, _MOMENT, st.integers(0, 9))
_AMOUNT = (
    st.floats(0, 1e12)
    | st.integers(0, 10**12)
    | st.sampled_from([-1, -0.0, 1e12 + 1, 2**63, 2**64 + 1, 10**30, "12.5", True, None])
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_WORD, inner, max_size=2),
    max_leaves=4,
)


_NAME = st.builds(
    lambda a, w, b: a + w + b,
    st.sampled_from(["", " ", "\t"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Zs", "Cc"]), min_size=1),
    st.sampled_from(["", " ", "\n"]),
)
_VALID: dict[str, st.SearchStrategy[Any]] = {
    "ts": st.builds(
        _iso,
        st.datetimes(
            min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
        ),
        st.sampled_from([0, 1, 2, 4, 5, 6, 7, 8, 9]),
    ),
    "amount": st.floats(0, 1e12) | st.integers(0, 10**12),
    "rate": st.floats(0.001, 1e6),
    "group": st.sampled_from(["treatment", "control"]),
}


def _value(field: str, valid: bool) -> st.SearchStrategy[Any]:
    if valid:
        if field in ("campaign", "interaction", "currency"):
            return st.none() | _NAME
        return _VALID.get(field, _NAME)
    if field == "ts":
        return _TIME
    if field in ("amount", "rate"):
        return _AMOUNT
    if field == "group":
        return st.sampled_from(["treatment", "control", " control", "other"])
    if field in ("campaign", "interaction", "currency"):
        return st.none() | _WORD | _TEXT
    return _WORD.filter(bool) | _TEXT


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A record of any type, valid or not: fields dropped, replaced by any JSON, added."""
    kind = draw(st.sampled_from(sorted(FIELDS)))
    valid = draw(st.booleans())
    record: dict[str, Any] = {"type": kind}
    for field in FIELDS[kind]:
        optional = field in ("campaign", "interaction", "currency") and kind != "cost"
        if draw(st.integers(0, 9)) or (valid and not optional):  # now and then one is missing
            record[field] = draw(_value(field, valid))
    if draw(st.integers(0, 4)) == 0:
        record[draw(st.sampled_from([*FIELDS[kind], "type", "extra"]))] = draw(_JSON)
    if not valid and draw(st.integers(0, 9)) == 0:
        record["type"] = draw(st.sampled_from([None, "Touchpoint", ["touchpoint"], 3]))
    return record


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), st.sampled_from(["compact", "spaced", "ascii", "text"]))
def test_any_record_gets_the_answer_of_the_validating_path(
    record: dict[str, Any], form: str
) -> None:
    """And every valid customer or cost event (UTF-8 JSON without a BOM) takes the fast path."""
    payload: bytes | str
    if form == "text":
        payload = json.dumps(record, ensure_ascii=False)
    else:
        text = json.dumps(
            record,
            ensure_ascii=form == "ascii",
            separators=(",", ":") if form == "compact" else (", ", ": "),
        )
        payload = text.encode("utf-8")
    fast = check(payload)
    slow = validating(payload)
    valid = not isinstance(slow, tuple) and slow.type in FAST_TYPES
    assert fast == valid
    event("valid: fast path" if fast else f"left to the validating path ({record['type']})")


@settings(max_examples=500, deadline=None)
@given(
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?\Z"),
    st.sampled_from(["amount", "ts"]),
)
def test_a_number_is_read_as_json_reads_it(literal: str, field: str) -> None:
    """orjson and json read every number literal to the same value (or one of them refuses)."""
    fields = '"event_id":"p-1","customer_id":"c","order_id":"o-1"'
    amount = literal if field == "amount" else "10.5"
    ts = literal if field == "ts" else '"2026-01-05T10:00:00Z"'
    check(f'{{"type":"purchase",{fields},"amount":{amount},"ts":{ts}}}'.encode())


@pytest.mark.parametrize(
    "payload",
    [
        None,
        b"",
        b"null",
        b"[]",
        b'"touchpoint"',
        b"{",
        b"\xff\xfe{}",
        b'\xef\xbb\xbf{"type":"touchpoint","event_id":"t","customer_id":"c","channel":"e",'
        b'"ts":"2026-01-05T10:00:00Z"}',
        '{"type":"touchpoint","event_id":"t","customer_id":"c","channel":"e",'
        '"ts":"2026-01-05T10:00:00Z"}'.encode("utf-16"),
        b'{"type":"purchase","event_id":"p","customer_id":"c","order_id":"o","amount":NaN,'
        b'"ts":"2026-01-05T10:00:00Z"}',
        b'{"type":"purchase","event_id":"p","customer_id":"c","order_id":"o","amount":1e400,'
        b'"ts":"2026-01-05T10:00:00Z"}',
        b'{"type":"touchpoint","event_id":"\\ud800","customer_id":"c","channel":"e",'
        b'"ts":"2026-01-05T10:00:00Z"}',
        b'{"type":"touchpoint","type":"purchase","event_id":"t","customer_id":"c","channel":"e",'
        b'"ts":"2026-01-05T10:00:00Z"}',
        b'{"type":"touchpoint","event_id":"t","customer_id":"c","channel":"e","ts":'
        b"123456789012345678901234}",
        b'{"type":"rate","event_id":"r","currency":"USD","rate":1.1,"ts":"2026-01-05T10:00:00Z"}',
        b'{"type":"refund","event_id":"r","customer_id":"c","order_id":"o","amount":1,'
        b'"ts":"2026-01-05T10:00:00Z"}',
    ],
)
def test_messages_json_reads_otherwise_go_the_validating_way(payload: bytes | None) -> None:
    assert not check(payload)


def test_a_huge_integer_amount_is_left_to_the_validating_path() -> None:
    """orjson reads an integer beyond 64 bits as a float, json as an int."""
    payload = (
        b'{"type":"purchase","event_id":"p","customer_id":"c","order_id":"o",'
        b'"amount":100000000000000000000000,"ts":"2026-01-05T10:00:00Z"}'
    )
    assert fast_record(payload) is None
    check(payload)


def test_every_message_of_the_generator_takes_the_fast_path() -> None:
    lines = list(generate(GeneratorConfig(customers=40, days=60, seed=3)))
    assert {json.loads(line)["type"] for line in lines} >= {"touchpoint", "purchase", "cost"}
    for line in lines:
        assert check(line.encode()), line
