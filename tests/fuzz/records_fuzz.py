"""Arbitrary records in the input topics, through the broker-free runner, and what they cost.

Each round mixes fuzzed records (arbitrary bytes, or JSON objects with event fields of any
JSON value) into a good log, runs the whole dataflow (``stream.testing``), and counts a record
as lost when it is invalid and no dead letter names its place, or when the tables differ from
the batch engine's answer for the log's valid records (then every fuzzed record of the round
counts as lost: which one broke it is for the failing example to tell).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from attribution.events import InvalidRecord, parse_event_bytes
from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import Settings
from stream.testing import TestingLog, run_main
from stream.topics import raw_route
from tests.compare import assert_same
from tests.stream.batch_answers import batch_attribution

GOOD_LINES = list(generate(GeneratorConfig(customers=15, days=8, seed=9)))
CUSTOMERS = sorted({json.loads(line).get("customer_id", "") for line in GOOD_LINES} - {""})

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
EVENT_FIELDS = (
    "type",
    "event_id",
    "customer_id",
    "channel",
    "ts",
    "order_id",
    "amount",
    "campaign",
)
event_like = st.dictionaries(
    st.sampled_from(EVENT_FIELDS) | st.text(max_size=8),
    json_values
    | st.sampled_from(
        ["touchpoint", "purchase", "cost", "assignment", "email", "2026-01-06T10:00:00Z"]
    )
    | st.sampled_from(CUSTOMERS),
    max_size=9,
).map(lambda d: json.dumps(d, default=str).encode())
fuzzed_values = st.binary(max_size=300) | event_like
fuzzed_keys = st.none() | st.binary(max_size=20) | st.sampled_from(CUSTOMERS).map(str.encode)
# (topic index, key, value, position in the good log)
fuzzed_records = st.lists(
    st.tuples(st.integers(0, 3), fuzzed_keys, fuzzed_values, st.integers(0, len(GOOD_LINES))),
    min_size=1,
    max_size=12,
)


@dataclass
class RoundCounts:
    """Fuzzed records sent in a round, and how many of them were lost."""

    tried: int
    lost: int


def fuzz_round(
    records: list[tuple[int, bytes | None, bytes, int]], settings: Settings
) -> RoundCounts:
    """Run the good log with ``records`` mixed in; count the fuzzed records lost."""
    topics = settings.topics
    names = [topics.touchpoints, topics.purchases, topics.costs, topics.assignments]
    at: dict[int, list[tuple[int, bytes | None, bytes]]] = {}
    for topic, key, value, position in records:
        at.setdefault(position, []).append((topic, key, value))
    log = TestingLog(settings)
    valid_lines = list(GOOD_LINES)
    expected_letters: set[tuple[str, int, int]] = set()
    for position in range(len(GOOD_LINES) + 1):
        for topic, key, value in at.get(position, []):
            line = _valid_line(value)
            if line is not None:
                # A valid event is sent as `produce` sends it: its topic, keyed by its owner.
                route_topic, route_key = raw_route(line, settings)
                log.produce(route_topic, route_key, value)
                valid_lines.append(line)
            else:
                sent = log.produce(names[topic], key, value)
                expected_letters.add((sent.topic, sent.partition, sent.offset))
        if position < len(GOOD_LINES):
            log.produce_lines([GOOD_LINES[position]], settings)
    run = run_main(log, settings)
    lettered = {(d["topic"], d["partition"], d["offset"]) for d in run.dead_letters()}
    lost = len(expected_letters - lettered)
    expected = batch_attribution(valid_lines, settings)
    expected["totals"]["invalid_records"] = len(expected_letters) + _invalid(GOOD_LINES)
    try:
        assert_same(run.attribution(), expected)
    except AssertionError:
        lost = len(records)
    return RoundCounts(len(records), lost)


def _valid_line(value: bytes) -> str | None:
    """The value as a line of a log the batch engine reads, if it is a valid event."""
    try:
        parse_event_bytes(value)
        line = value.decode("utf-8")
    except (InvalidRecord, UnicodeDecodeError):
        return None
    return line if "\n" not in line else None


def _invalid(lines: list[str]) -> int:
    count = 0
    for line in lines:
        try:
            parse_event_bytes(line.encode())
        except InvalidRecord:
            count += 1
    return count


def describe(records: list[Any]) -> str:
    """A short description of a failing round's records."""
    return "; ".join(f"{t} {k!r} {v[:60]!r}" for t, k, v, _ in records)
