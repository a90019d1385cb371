"""Version 2 records are written byte for byte as the first version 2 encoder wrote them.

``customer_records_v2.jsonl`` holds 61 states, each as a version 0 object with ``p`` (the
partition) and ``r`` as [day, digest] pairs, beside the version 2 value (base64) that the
encoder of ffc658c wrote for it: 31 states a worker wrote while draining a 150-day log (200
customers, generator seed 5, default settings; per combination of features, the first state
written and the largest), and 30 made at random (seed 11) for what the log has not: non-ASCII,
empty and shared strings, rows only a journey needs, purchases no longer retained, -0.0, 256
compacted ids, no analytics parts, parts stored plain, no partition. A state too large to save
(u32 references) is built here, and its value's SHA-256 is the one that encoder gave.

Any rewrite of the encoder or decoder must keep these: the records already in changelogs are
read by the new decoder, and the old and new workers of a rolling upgrade write the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.journeys import ConvertedJourney, EventRow, Journey, NullJourney, Touch
from stream.processing import customer_record
from stream.processing.customer_state import CustomerState, id_digest
from stream.processing.journey_rows import row_to_journey

SAVED_V2 = Path(__file__).with_name("customer_records_v2.jsonl")
WIDE_SHA256 = "5432fd86ebb5c41a043561aa70035530fc5fb52f901bfd96d806d48b7264d5cc"


def saved() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAVED_V2.read_text().splitlines()]


def state_of(key: str, fields: dict[str, Any]) -> CustomerState:
    """The state a saved object describes (independently of the decoder)."""
    return CustomerState(
        key,
        [EventRow(*row) for row in fields["e"]],
        [row_to_journey(key, row) for row in fields["j"]],
        [(day, digest) for day, digest in fields["r"]],
        fields["n"],
        fields["a"],
        fields["o"],
        (fields["c"][0], fields["c"][1]) if fields["c"] else None,
        fields["x"],
        fields["h"],
        fields["p"],
    )


def test_the_saved_records_cover_every_part_of_a_state() -> None:
    records = saved()
    features = {f for record in records for f in record["features"]}
    assert {"open", "held", "compacted", "ids", "conv", "null", "purchase"} <= features
    assert {"gone-touch", "gone-purchase", "lz4", "plain-parts", "no-parts"} <= features
    assert max(len(r["state"]["r"]) for r in records) == 256
    assert {r["state"]["p"] for r in records} >= {None, 0, 0xFFFE}


@pytest.mark.parametrize("record", saved(), ids=lambda r: r["key"])
def test_a_state_is_written_as_the_first_version_2_encoder_wrote_it_and_read_back(
    record: dict[str, Any],
) -> None:
    key = record["key"]
    value = base64.b64decode(record["v2"])
    state = state_of(key, record["state"])
    assert customer_record.encode(state) == value
    decoded = customer_record.decode(key, value)
    assert decoded == state
    assert [type(e.amount) for e in decoded.events] == [float] * len(decoded.events)
    assert customer_record.encode(decoded) == value
    assert customer_record.open_since(value) == state.open_since_ms
    assert customer_record.held_since(value) == state.held_since_ms
    assert customer_record.partition(value) == state.partition
    assert customer_record.analytics_parts(value) == state.analytics
    columns = customer_record.event_columns(value)
    assert columns.event_id == [e.event_id for e in state.events]
    assert columns.amount == [e.amount for e in state.events]


def wide_state() -> CustomerState:
    """More strings than u16 references can name, journeys and a full memory of ids."""
    events = [
        EventRow(
            i,
            f"e{i}",
            i % 7 == 0,
            f"ch{i % 300}",
            0.5 * i if i % 7 == 0 else 0.0,
            None if i % 3 else f"camp{i}",
            None if i % 5 else "int",
        )
        for i in range(17_000)
    ]
    gone = Touch("email", -5, "t-gone", None, "open")
    emitted: list[Journey] = [
        NullJourney("heavy", (gone, Touch("ch1", 1, "e1", None, None))),
        ConvertedJourney("heavy", "ch0", "e0", 0, 0.0, (gone,)),
        ConvertedJourney("heavy", "o-gone", "p-gone", -1, 2.5, ()),
    ]
    ids = [(i, id_digest(f"x{i}")) for i in range(256)]
    return CustomerState(
        "heavy", events, emitted, ids, 16_999, 17_000, 16_999, (-5, "t-gone"), {"t": 1}, None, 7
    )


def test_a_state_with_u32_references_is_written_as_the_first_version_2_encoder_wrote_it() -> None:
    state = wide_state()
    value = customer_record.encode(state)
    assert value[1] & 1  # u32 references
    assert hashlib.sha256(value).hexdigest() == WIDE_SHA256
    assert customer_record.decode("heavy", value) == state


_TEXT = st.text(st.characters(codec="utf-8"), max_size=6)
_IDS = st.sampled_from(["a", "b", "p", "ü", "😀", "t-1"]) | _TEXT.filter(
    lambda text: bool(text) and not text.startswith("gone")
)
# Events of stored journeys that are no longer retained (each id always the same event).
_GONE_TOUCHES = [Touch("email", -5, "gone-t1", None, "open"), Touch("sms ü", 7, "gone-t2", "")]
_GONE_PURCHASE: tuple[str, str, int, float] = ("o-gone", "gone-p1", -3, 2.5)


@st.composite
def states(draw: st.DrawFn) -> CustomerState:
    """Any state the encoder takes: shared and non-ASCII strings, rows only a journey needs."""
    ids = draw(st.lists(_IDS, unique=True, max_size=8))
    rows = sorted(
        EventRow(
            draw(st.integers(-(2**62), 2**62)),
            event_id,
            purchase := draw(st.booleans()),
            draw(_TEXT),
            draw(st.floats(0, 1e18)) if purchase else 0.0,
            None if purchase else draw(st.none() | _TEXT),
            None if purchase else draw(st.none() | _TEXT),
        )
        for event_id in ids
    )
    touches = st.sampled_from(
        _GONE_TOUCHES
        + [
            Touch(r.channel_or_order, r.ts_ms, r.event_id, r.campaign, r.interaction)
            for r in rows
            if not r.is_purchase
        ]
    )
    purchases = [_GONE_PURCHASE] + [
        (r.channel_or_order, r.event_id, r.ts_ms, r.amount) for r in rows if r.is_purchase
    ]
    journeys = st.builds(
        NullJourney, st.just("c"), st.lists(touches, max_size=3).map(tuple)
    ) | st.builds(
        lambda p, touched: ConvertedJourney("c", p[0], p[1], p[2], p[3], tuple(touched)),
        st.sampled_from(purchases),
        st.lists(touches, max_size=3),
    )
    times = st.none() | st.integers(-(2**62), 2**62)
    parts = st.dictionaries(_TEXT, st.integers(-(2**53), 2**53) | _TEXT, max_size=4)
    return CustomerState(
        "c",
        rows,
        draw(st.lists(journeys, max_size=3)),
        draw(st.lists(st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**64 - 1)))),
        draw(times),
        draw(times),
        draw(times),
        draw(st.none() | st.tuples(st.integers(-(2**62), 2**62), _IDS)),
        draw(st.none() | parts),
        draw(times),
        draw(st.none() | st.integers(0, 0xFFFE)),
    )


@settings(max_examples=300, deadline=None)
@given(states())
def test_any_state_reads_back_as_written(state: CustomerState) -> None:
    value = customer_record.encode(state)
    decoded = customer_record.decode("c", value)
    assert decoded == state
    assert customer_record.encode(decoded) == value
