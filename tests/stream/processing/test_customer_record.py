"""The customers table's record: version 2 bytes, and version 1 and 0 records still read.

``customer_records_v0.jsonl`` holds eleven values of a real worker's customers changelog from
before version 1 (a 300-customer log: open, held, compacted, converted, null, analytics parts).
``customer_records_v1.jsonl`` holds sixteen version 1 values as the version 1 encoder (bcc32fe)
wrote them, each with its state as a version 0 object plus ``p``: the eleven above with
partition 3, and five customers of a 150-day log with long rings of compacted ids and large
analytics parts (60 customers, generator seed 5, default settings, drained by bcc32fe's
``stream.testing.run_main``: the three longest rings and the two largest parts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attribution.events import Touchpoint
from attribution.journeys import ConvertedJourney, EventRow, JourneyRules, NullJourney, Touch
from stream.processing import customer_record
from stream.processing.customer_state import DAY_MS, CustomerState, id_digest
from stream.processing.journey_rows import journey_to_row

SAVED = Path(__file__).with_name("customer_records_v0.jsonl")
SAVED_V1 = Path(__file__).with_name("customer_records_v1.jsonl")
RULES = JourneyRules.from_days(2.0, None, 1.0)


def saved(path: Path = SAVED) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def remembered(fields: dict[str, Any]) -> list[tuple[int, int]]:
    """The compacted ids of a version 0 object as a state keeps them: digests, dated on the
    last compacted event's day (the text has no date)."""
    cut_day = fields["c"][0] // DAY_MS if fields["c"] else 0
    return [(cut_day, id_digest(event_id)) for event_id in fields["r"]]


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
        assert state.compacted_ids == remembered(fields)
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
def test_a_version_0_state_is_migrated_to_version_2_and_goes_on_the_same(
    record: dict[str, Any],
) -> None:
    key = record["key"]
    old = customer_record.decode(key, record["value"].encode())
    old.partition = 3
    value = customer_record.encode(old)
    assert value[0] == customer_record.VERSION == 2
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


def test_the_saved_version_1_records_cover_what_version_2_changed() -> None:
    records = saved(SAVED_V1)
    assert all(bytes.fromhex(r["v1"])[0] == 1 for r in records)
    assert max(len(r["state"]["r"]) for r in records) >= 40  # a long ring of compacted ids
    assert max(len(json.dumps(r["state"]["x"])) for r in records) >= 900  # large parts
    assert any(r["state"]["h"] is not None for r in records)
    v1 = sum(len(r["v1"]) // 2 for r in records)
    v2 = sum(
        len(customer_record.encode(customer_record.decode(r["key"], bytes.fromhex(r["v1"]))))
        for r in records
    )
    assert v2 < 0.75 * v1, (v1, v2)


@pytest.mark.parametrize("record", saved(SAVED_V1), ids=lambda r: r["key"])
def test_a_version_1_record_reads_as_it_was_written_and_migrates_to_version_2(
    record: dict[str, Any],
) -> None:
    """A version 1 value decodes to the state it was written from, which re-encodes as
    version 2 to the same state (and reads the same from its header), and goes on the same."""
    key, fields = record["key"], record["state"]
    v1 = bytes.fromhex(record["v1"])
    old = customer_record.decode(key, v1)
    assert old == customer_record.decode(key, fields)  # as the object it was written from
    assert [list(e) for e in old.events] == fields["e"]
    assert [journey_to_row(j) for j in old.emitted] == fields["j"]
    assert old.compacted_ids == remembered(fields)
    assert old.analytics == fields["x"] and old.partition == fields["p"] is not None
    value = customer_record.encode(old)
    assert value[0] == customer_record.VERSION == 2
    assert len(value) <= len(v1) + 4  # the header's one more field (the analytics JSON length)
    new = customer_record.decode(key, value)
    assert new == old
    assert customer_record.encode(new) == value
    for stored in (v1, value):
        assert customer_record.open_since(stored) == fields["o"]
        assert customer_record.held_since(stored) == fields["h"]
        assert customer_record.partition(stored) == fields["p"]
        assert customer_record.analytics_parts(stored) == fields["x"]
        assert customer_record.event_columns(stored).event_id == [e[1] for e in fields["e"]]
    # The next event changes both the same way (journeys, retractions, compaction); a copy of
    # a compacted event is still recognised after the migration.
    after = max(e.ts_ms for e in old.events) if old.events else old.newest_ms or 0
    touch = Touchpoint(event_id=f"next-{key}", customer_id=key, channel="email", ts=after + 60_000)
    compact = after - 24 * 3_600_000
    assert new.add(touch, RULES, compact) == old.add(touch, RULES, compact)
    assert customer_record.encode(new) == customer_record.encode(old)
    for event_id in fields["r"]:
        assert new.knows(event_id)


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
        compacted_ids=[(-1, id_digest("t-gone")), (0, id_digest("p-gone")), (0, 2**64 - 1)],
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


def test_analytics_parts_are_compressed_only_when_shorter_and_checked_when_read() -> None:
    """Parts that compress are stored as an LZ4 block (flags bit 1), others as plain JSON; a
    header that overstates the block's length makes the read fail, not return padded parts."""
    plain = CustomerState("c", analytics={"t": 1})
    assert customer_record.encode(plain)[1] & 2 == 0
    assert customer_record.analytics_parts(customer_record.encode(plain)) == {"t": 1}
    parts = {"f": {f"campaign-{i}": ["open", "click", "send"] for i in range(40)}}
    packed = bytearray(customer_record.encode(CustomerState("c", analytics=parts)))
    assert packed[1] & 2 and len(packed) < len(json.dumps(parts))
    assert customer_record.analytics_parts(bytes(packed)) == parts
    json_length = int.from_bytes(packed[48:52], "little")  # the header's last u32
    packed[48:52] = (json_length + 5).to_bytes(4, "little")
    with pytest.raises(ValueError):
        customer_record.analytics_parts(bytes(packed))
