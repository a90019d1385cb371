"""The customers table's values: one customer's state as stored, read and written here only.

A record is bytes whose first byte is its format version.

**Version 2** (written since 2026-12-06), little-endian, a fixed header then four sections::

    header   u8 version=2, u8 flags (bit 0: string references are u32, else u16; bit 1: the
             analytics section is LZ4-compressed), u16 partition (0xFFFF: none),
             i64 newest event time, i64 expiry clock, i64 start of the open journey,
             i64 earliest held decision time, i64 time of the last compacted event
             (each i64: -2**63 for none), u32 length of the analytics section as stored,
             u32 length of its JSON
    analytics  the customer's analytics parts (stream.processing.analytics_parts) as JSON
               (orjson), compressed as one LZ4 block (raw, no frame) when that is shorter
    strings    u32 count, u32 byte length of the text, the length of each string in characters
               (u16/u32), then the text: every event id, channel, order id, campaign and
               interaction of the record once, UTF-8
    events     u32 count n, then columns of n: i64 event time, u8 kind (bit 0 purchase, bit 1
               retained; a row only a stored journey needs is not retained), string references
               to event id, channel or order id, campaign and interaction (0xFFFF.../none),
               then one f64 amount per purchase row, in row order
    memory     string reference to the last compacted event id (none: all ones), u32 count m
               of the compacted events kept for de-duplication, m u64 digests of their ids
               (customer_state.id_digest), m i32 days (time // 86,400,000 ms since the epoch)
               of the compaction horizon that compacted each, u32 count of the emitted
               journeys, per journey its purchase row (all ones: a null path) and its touch
               count, then the touch rows of every journey in order

The events are columns in event-time order: exactly what a columnar journey kernel takes per
customer (:func:`event_columns`). The header alone answers :func:`open_since`,
:func:`held_since` and :func:`partition`, which scans of the whole table use.

What version 2 changed, and why (issue 11, a worker at most 2 KB per customer): version 1 kept
the last 256 compacted ids as text, a ring that grew with the customer's history (28.8 ids, about
530 bytes, at 180 days of the benchmark log), and the analytics parts as plain JSON (about 950
bytes at 180 days). The ids are now 8-byte digests kept only for the days a copy can still come
(customer_state.RECENT_IDS_DAYS), and the parts' JSON is compressed (about half its size; the
parts' content is the same JSON, see docs/benchmarks.md).

**Version 1** (2026-12-05 to 2026-12-06, kept readable) was version 2 with a 40-byte header
(no JSON length, flags bit 1 never set), the analytics parts as plain JSON, and in the memory
section the compacted ids as u32 count and string references into the string table (the ids'
text). Read, its ids become digests dated on the last compacted event's day: the horizon that
compacted them was at or after it, so they are forgotten at most that much sooner than
version 2 would have.

**Version 0** (until 2026-12) was a JSON object, kept readable: ``e`` retained event rows,
``j`` emitted journey rows (:mod:`stream.processing.journey_rows`), ``r`` compacted ids, ``n``
newest event time, ``a`` expiry clock, ``o`` open journey start, ``c`` (time, id) of the last
compacted event, ``x`` analytics parts, ``h`` held decision time, ``p`` partition (absent
before the arrival partition was recorded). It starts with ``{``; a Faust table recovered by
the old JSON serializer holds it as a dict.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import Any

import orjson
import pyarrow as pa

from attribution.journeys import ConvertedJourney, EventRow, Journey, NullJourney, Touch
from stream.processing.customer_state import DAY_MS, CustomerState, id_digest
from stream.processing.journey_rows import row_to_journey

VERSION = 2
_V1 = 1
_HEADER = struct.Struct("<BBHqqqqqII")
_HEADER_V1 = struct.Struct("<BBHqqqqqI")  # same fields 0-8
_COUNT = struct.Struct("<I")
_COUNTS = struct.Struct("<II")
_NONE_MS = -(2**63)
_NO_PARTITION = 0xFFFF
_WIDE = 1  # flags bit: string and row references are u32
_LZ4 = 2  # flags bit: the analytics section is an LZ4 block
_CODEC = pa.Codec("lz4_raw")
_PURCHASE, _RETAINED = 1, 2


@dataclass(frozen=True)
class EventColumns:
    """A customer's retained events as columns, in event-time order."""

    ts_ms: Sequence[int]
    event_id: Sequence[str]
    is_purchase: Sequence[bool]
    channel_or_order: Sequence[str]
    amount: Sequence[float]  # 0.0 for a touchpoint
    campaign: Sequence[str | None]
    interaction: Sequence[str | None]


def encode(state: CustomerState) -> bytes:
    """The table value of a customer's state (version 2)."""
    rows: list[EventRow] = list(state.events)
    retained = len(rows)
    touch_count = sum(len(j.touches) for j in state.emitted)
    # Every reference fits in u16 unless the record could hold 0xFFFF strings or rows.
    bound = 4 * (retained + touch_count + len(state.emitted)) + 1
    wide = bound >= 0xFFFF
    code, none = ("I", 0xFFFFFFFF) if wide else ("H", 0xFFFF)
    strings: dict[str | None, int] = {None: none}
    intern = strings.setdefault

    row_of = {row.event_id: i for i, row in enumerate(rows)}

    def row_ref(event_id: str, make: Callable[[], EventRow]) -> int:
        found = row_of.get(event_id)
        if found is None:  # an event of a stored journey that is no longer retained
            found = row_of[event_id] = len(rows)
            rows.append(make())
        return found

    shapes: list[int] = []
    touch_refs: list[int] = []
    for journey in state.emitted:
        touch_refs += [row_ref(t.event_id, partial(_touch_row, t)) for t in journey.touches]
        purchase = none
        if isinstance(journey, ConvertedJourney):
            purchase = row_ref(journey.event_id, partial(_purchase_row, journey))
        shapes += (purchase, len(journey.touches))
    event_refs = array(code)
    for r in rows:
        event_refs += array(
            code,
            (
                intern(r.event_id, len(strings) - 1),
                intern(r.channel_or_order, len(strings) - 1),
                intern(r.campaign, len(strings) - 1),
                intern(r.interaction, len(strings) - 1),
            ),
        )
    memory = array(code, [none if state.compacted_through is None else 0])
    if state.compacted_through is not None:
        memory[0] = intern(state.compacted_through[1], len(strings) - 1)
    texts = [t for t in strings if t is not None]  # in reference order
    text = "".join(texts).encode("utf-8")
    analytics_json = orjson.dumps(state.analytics) if state.analytics is not None else b""
    analytics, flags = analytics_json, _WIDE if wide else 0
    if analytics_json:
        packed = _CODEC.compress(analytics_json, asbytes=True)
        if len(packed) < len(analytics_json):
            analytics, flags = packed, flags | _LZ4
    return b"".join(
        (
            _HEADER.pack(
                VERSION,
                flags,
                _NO_PARTITION if state.partition is None else state.partition,
                _ms(state.newest_ms),
                _ms(state.as_of_ms),
                _ms(state.open_since_ms),
                _ms(state.held_since_ms),
                _ms(state.compacted_through[0] if state.compacted_through else None),
                len(analytics),
                len(analytics_json),
            ),
            analytics,
            _COUNTS.pack(len(texts), len(text)),
            array(code, [len(t) for t in texts]).tobytes(),
            text,
            _COUNT.pack(len(rows)),
            array("q", [r.ts_ms for r in rows]).tobytes(),
            bytes(
                (_PURCHASE if r.is_purchase else 0) | (_RETAINED if i < retained else 0)
                for i, r in enumerate(rows)
            ),
            event_refs.tobytes(),
            array("d", [r.amount for r in rows if r.is_purchase]).tobytes(),
            memory.tobytes(),
            _COUNT.pack(len(state.compacted_ids)),
            array("Q", [digest for _, digest in state.compacted_ids]).tobytes(),
            array("i", [day for day, _ in state.compacted_ids]).tobytes(),
            _COUNT.pack(len(state.emitted)),
            array(code, shapes).tobytes(),
            array(code, touch_refs).tobytes(),
        )
    )


def _ms(value: int | None) -> int:
    return _NONE_MS if value is None else value


def _or_none(value: int) -> int | None:
    return None if value == _NONE_MS else value


def _touch_row(touch: Touch) -> EventRow:
    return EventRow(
        touch.ts_ms, touch.event_id, False, touch.channel, 0.0, touch.campaign, touch.interaction
    )


def _purchase_row(journey: ConvertedJourney) -> EventRow:
    return EventRow(
        journey.ts_ms, journey.event_id, True, journey.order_id, journey.value, None, None
    )


class _Reader:
    """Sequential reads of a version 1 or 2 record's sections."""

    def __init__(self, value: bytes, header: tuple[Any, ...]) -> None:
        self.value = value
        self.header = header
        self.code = "I" if self.header[1] & _WIDE else "H"
        self.offset = _analytics_start(value) + self.header[8]

    def count(self) -> int:
        (n,) = _COUNT.unpack_from(self.value, self.offset)
        self.offset += 4
        return int(n)

    def column(self, code: str, n: int) -> list[Any]:
        out = array(code)
        end = self.offset + n * out.itemsize
        out.frombytes(self.value[self.offset : end])
        self.offset = end
        return out.tolist()

    def strings(self) -> list[str]:
        n, size = _COUNTS.unpack_from(self.value, self.offset)
        self.offset += _COUNTS.size
        lengths = self.column(self.code, n)
        # One decode of the whole text, then cuts by characters.
        text = self.value[self.offset : self.offset + size].decode("utf-8")
        self.offset += size
        out: list[str] = []
        start = 0
        for length in lengths:
            out.append(text[start : start + length])
            start += length
        return out


def decode(customer_id: str, value: Any) -> CustomerState:
    """The state of a table value (``None``: a customer never seen); any version."""
    if not value:
        return CustomerState(customer_id)
    if isinstance(value, Mapping):
        return _decode_v0(customer_id, value)
    header = _header(value)
    if header is None:
        return _decode_v0(customer_id, _v0(value))
    reader = _Reader(value, header)
    _, flags, partition, newest, as_of, open_since, held, compacted_ms = reader.header[:8]
    none = 0xFFFFFFFF if flags & _WIDE else 0xFFFF
    analytics = _analytics(value, reader.header)
    texts = reader.strings()
    texts_or_none: dict[int, str | None] = dict(enumerate(texts))
    texts_or_none[none] = None
    n = reader.count()
    ts = reader.column("q", n)
    kinds = value[reader.offset : reader.offset + n]
    reader.offset += n
    refs = reader.column(reader.code, 4 * n)
    purchases = [bool(k & _PURCHASE) for k in kinds]
    bought = iter(reader.column("d", sum(purchases)))
    amounts = [next(bought) if purchase else 0.0 for purchase in purchases]
    lookup = texts_or_none.__getitem__
    rows: list[EventRow] = list(
        map(
            tuple.__new__,
            repeat(EventRow),
            zip(
                ts,
                map(lookup, refs[0::4]),
                purchases,
                map(lookup, refs[1::4]),
                amounts,
                map(lookup, refs[2::4]),
                map(lookup, refs[3::4]),
                strict=True,
            ),
        )
    )
    (compacted_ref,) = reader.column(reader.code, 1)
    cut_day = compacted_ms // DAY_MS if compacted_ref != none else 0
    if value[0] == _V1:  # the ids as text: dated on the last compacted event's day
        ids = [id_digest(texts[i]) for i in reader.column(reader.code, reader.count())]
        remembered = [(cut_day, digest) for digest in ids]
    else:
        m = reader.count()
        digests = reader.column("Q", m)
        remembered = list(zip(reader.column("i", m), digests, strict=True))
    shapes = reader.column(reader.code, 2 * reader.count())
    touch_rows = iter(reader.column(reader.code, sum(shapes[1::2])))
    touch_cache: dict[str, Touch] = {}

    def touch(i: int) -> Touch:
        row = rows[i]
        made = touch_cache.get(row.event_id)
        if made is None:
            made = touch_cache[row.event_id] = Touch(
                row.channel_or_order, row.ts_ms, row.event_id, row.campaign, row.interaction
            )
        return made

    emitted: list[Journey] = []
    for purchase, count in zip(shapes[::2], shapes[1::2], strict=True):
        touches = tuple(touch(next(touch_rows)) for _ in range(count))
        if purchase == none:
            emitted.append(NullJourney(customer_id, touches))
        else:
            p = rows[purchase]
            emitted.append(
                ConvertedJourney(
                    customer_id, p.channel_or_order, p.event_id, p.ts_ms, p.amount, touches
                )
            )
    state = CustomerState(
        customer_id,
        [row for row, kind in zip(rows, kinds, strict=True) if kind & _RETAINED],
        emitted,
        remembered,
        _or_none(newest),
        _or_none(as_of),
        _or_none(open_since),
        None if compacted_ref == none else (compacted_ms, texts[compacted_ref]),
        analytics,
        _or_none(held),
        None if partition == _NO_PARTITION else partition,
    )
    state.touch_cache = touch_cache
    return state


def _decode_v0(customer_id: str, value: Mapping[str, Any]) -> CustomerState:
    compacted = (value["c"][0], value["c"][1]) if value.get("c") else None
    cut_day = compacted[0] // DAY_MS if compacted else 0
    return CustomerState(
        customer_id,
        [EventRow(*row) for row in value["e"]],
        [row_to_journey(customer_id, row) for row in value["j"]],
        [(cut_day, id_digest(event_id)) for event_id in value["r"]],
        value["n"],
        value["a"],
        value["o"],
        compacted,
        value.get("x"),
        value.get("h"),
        value.get("p"),
    )


def _header(value: Any) -> tuple[Any, ...] | None:
    """The header of a version 2 or 1 value (fields 0-8 alike), ``None`` for version 0."""
    if isinstance(value, Mapping):
        return None
    if value[0] == VERSION:
        return _HEADER.unpack_from(value)
    if value[0] == _V1:
        return _HEADER_V1.unpack_from(value)
    return None


def _analytics_start(value: bytes) -> int:
    """Where the analytics section of a version 2 or 1 value starts."""
    return _HEADER.size if value[0] == VERSION else _HEADER_V1.size


def _analytics(value: bytes, header: tuple[Any, ...]) -> dict[str, Any] | None:
    """The analytics parts of a version 2 or 1 value."""
    size = header[8]
    if not size:
        return None
    start = _analytics_start(value)
    stored = value[start : start + size]
    if header[1] & _LZ4:
        # A header that overstates the size gives a zero-padded block (pyarrow): orjson then
        # refuses the trailing bytes, so a corrupt record fails loudly either way.
        stored = _CODEC.decompress(stored, decompressed_size=header[9], asbytes=True)
    parts: dict[str, Any] = orjson.loads(stored)
    return parts


def _v0(value: Any) -> Mapping[str, Any]:
    """A version 0 value as a mapping (a JSON object's bytes, or as Faust's JSON serializer
    recovered it)."""
    if isinstance(value, Mapping):
        return value
    if value[:1] != b"{":
        raise ValueError(
            f"customer record of unknown format version {value[0]} (this worker reads 0, "
            f"{_V1} and {VERSION}): was it written by a newer worker?"
        )
    parsed: Mapping[str, Any] = orjson.loads(value)
    return parsed


def open_since(value: Any) -> int | None:
    """Start of the customer's open journey (``None``: no journey open)."""
    if not value:
        return None
    header = _header(value)
    return _v0(value).get("o") if header is None else _or_none(header[5])


def held_since(value: Any) -> int | None:
    """Decision time of the customer's earliest journey held back from crediting."""
    if not value:
        return None
    header = _header(value)
    return _v0(value).get("h") if header is None else _or_none(header[6])


def partition(value: Any) -> int | None:
    """The input partition the customer's events arrive on (``None``: not recorded)."""
    if not value:
        return None
    header = _header(value)
    if header is None:
        return _v0(value).get("p")
    return None if header[2] == _NO_PARTITION else int(header[2])


def analytics_parts(value: Any) -> dict[str, Any] | None:
    """The customer's analytics parts (``None``: none yet)."""
    if not value:
        return None
    header = _header(value)
    if header is None:
        return _v0(value).get("x")
    return _analytics(value, header)


def event_columns(value: Any) -> EventColumns:
    """The customer's retained events as columns (what a columnar journey kernel takes)."""
    rows = decode("", value).events
    return EventColumns(
        [r.ts_ms for r in rows],
        [r.event_id for r in rows],
        [r.is_purchase for r in rows],
        [r.channel_or_order for r in rows],
        [r.amount for r in rows],
        [r.campaign for r in rows],
        [r.interaction for r in rows],
    )
