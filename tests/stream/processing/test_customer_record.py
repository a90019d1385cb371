"""The customers table's record: version 1 bytes, and today's JSON records still read.

``customer_records_v0.jsonl`` holds eleven values of a real worker's customers changelog from
before version 1 (a 300-customer log: open, held, compacted, converted, null, analytics parts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attribution.events import Touchpoint
from attribution.journeys import ConvertedJourney, EventRow, JourneyRules, NullJourney, Touch
from stream.processing import customer_record
from stream.processing.customer_state import CustomerState
from stream.processing.journey_rows import journey_to_row

SAVED = Path(__file__).with_name("customer_records_v0.jsonl")
RULES = JourneyRules.from_days(2.0, None, 1.0)


def saved() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAVED.read_text().splitlines()]


def test_the_saved_records_cover_every_part_of_a_state() -> None:
    features = {f for record in saved() for f in record["features"]}
    assert {"open", "held", "compacted", "conv", "null", "xl", "xh", "xf"} <= features


@pytest.mark.parametrize("record", saved(), ids=lambda r: r["key"])
def test_a_version_0_record_reads_as_it_was_written(record: dict[str, Any]) -> None:
    """As the raw serializer now recovers it (bytes) and as the JSON one did (a dict)."""
    raw = record["value"].encode()
    fields = json.loads(raw)
    for value in (raw, fields):
        state = customer_record.decode(record["key"], value)
        assert [list(e) for e in state.events] == fields["e"]
        assert [journey_to_row(j) for j in state.emitted] == fields["j"]
        assert state.recent_ids == fields["r"]
        assert (state.newest_ms, state.as_of_ms, state.open_since_ms) == (
            fields["n"],
            fields["a"],
            fields["o"],
        )
        assert state.compacted_through == (tuple(fields["c"]) if fields["c"] else None)
        assert state.analytics == fields["x"] and state.held_since_ms == fields["h"]
        assert state.partition is None  # not recorded then: read as the key's murmur2 partition
        assert customer_record.open_since(value) == fields["o"]
        assert customer_record.held_since(value) == fields["h"]
        assert customer_record.analytics_parts(value) == fields["x"]
        assert customer_record.partition(value) is None


@pytest.mark.parametrize("record", saved(), ids=lambda r: r["key"])
def test_a_version_0_state_is_migrated_to_version_1_and_goes_on_the_same(
    record: dict[str, Any],
) -> None:
    key = record["key"]
    old = customer_record.decode(key, record["value"].encode())
    old.partition = 3
    value = customer_record.encode(old)
    assert value[0] == customer_record.VERSION == 1
    assert len(value) < len(record["value"])
    new = customer_record.decode(key, value)
    assert new == old
    assert customer_record.encode(new) == value
    assert customer_record.open_since(value) == old.open_since_ms
    assert customer_record.held_since(value) == old.held_since_ms
    assert customer_record.partition(value) == 3
    assert customer_record.analytics_parts(value) == old.analytics
    # The next event changes both the same way (journeys, retractions, compaction).
    after = max(e.ts_ms for e in old.events) if old.events else old.newest_ms or 0
    touch = Touchpoint(event_id=f"next-{key}", customer_id=key, channel="email", ts=after + 60_000)
    compact = after - 24 * 3_600_000
    assert new.add(touch, RULES, compact) == old.add(touch, RULES, compact)
    assert customer_record.encode(new) == customer_record.encode(old)


def test_journey_events_no_longer_retained_non_ascii_and_missing_fields_round_trip() -> None:
    touch = Touch("pücht", 1_000, "t-ü-1", None, "öffnen")
    old_touch = Touch("email", 500, "t-gone", "camp", None)  # compacted from the events
    state = CustomerState(
        "kündin-1",
        events=[
            EventRow(1_000, "t-ü-1", False, "pücht", 0.0, None, "öffnen"),
            EventRow(2_000, "p-1", True, "order-€", 12.5, None, None),
            EventRow(3_000, "t-2", False, "sms", 0.0, "camp", None),
        ],
        emitted=[
            NullJourney("kündin-1", (old_touch,)),
            ConvertedJourney("kündin-1", "order-€", "p-1", 2_000, 12.5, (touch,)),
            ConvertedJourney("kündin-1", "o-gone", "p-gone", 400, 3.0, ()),
        ],
        recent_ids=["t-gone", "p-gone", "日本"],
        newest_ms=3_000,
        open_since_ms=3_000,
        compacted_through=(500, "t-gone"),
        analytics={"t": 3_000, "f": {"camp": ["click"]}},
    )
    value = customer_record.encode(state)
    again = customer_record.decode("kündin-1", value)
    assert again == state
    assert again.events == state.events  # rows only a journey needs are not retained events
    columns = customer_record.event_columns(value)
    assert columns.ts_ms == [1_000, 2_000, 3_000] and columns.amount == [0.0, 12.5, 0.0]
    assert columns.campaign == [None, None, "camp"] and columns.is_purchase == [False, True, False]


def test_a_customer_with_more_strings_than_16_bit_references_round_trips() -> None:
    events = [
        EventRow(i, f"e{i}", False, f"ch{i}", 0.0, f"camp{i}", f"int{i}") for i in range(17_000)
    ]
    state = CustomerState("heavy", events=events, newest_ms=16_999)
    value = customer_record.encode(state)
    assert value[1] & 1  # u32 references
    assert customer_record.decode("heavy", value) == state


def test_a_record_of_an_unknown_version_says_so() -> None:
    value = bytes([7]) + customer_record.encode(CustomerState("c"))[1:]
    with pytest.raises(ValueError, match="unknown format version 7"):
        customer_record.decode("c", value)


def test_a_customer_never_seen_is_an_empty_state() -> None:
    assert customer_record.decode("c", None) == CustomerState("c")
    assert customer_record.open_since(None) is None and customer_record.partition(b"") is None
