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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress, repeat
from operator import truth
from typing import Any, cast

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
_PURCHASE_BIT = bytes(kind & _PURCHASE for kind in range(256))  # bytes.translate tables
_RETAIN = bytes(kind | _RETAINED for kind in range(256))
_RETAINED_BIT = bytes(kind & _RETAINED for kind in range(256))
# Compiled struct layouts by their format ("<5q5x20H"): a record's layouts depend on its counts.
_LAYOUTS: dict[str, struct.Struct] = {}
_LAYOUTS_KEPT = 4096


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
    # Column-wise: each column is built by one C-level pass (zip, map, array), not per row.
    rows: list[EventRow] = state.events
    retained = len(rows)
    emitted = state.emitted
    touch_count = sum(len(j.touches) for j in emitted) if emitted else 0
    # Every reference fits in u16 unless the record could hold 0xFFFF strings or rows.
    wide = 4 * (retained + touch_count + len(emitted)) + 1 >= 0xFFFF
    code, none = ("I", 0xFFFFFFFF) if wide else ("H", 0xFFFF)
    shapes: list[int] = []
    touch_refs: list[int] = []
    if emitted:
        rows = list(rows)
        _journey_rows(emitted, rows, none, shapes, touch_refs)
    n = len(rows)
    compacted = state.compacted_through
    ts: Sequence[int] = ()
    bought: Sequence[float] = ()
    flat: list[str | None] = []
    kinds = b""
    if n:
        ts, ids, purchase, channels, amounts, campaigns, interactions = zip(*rows, strict=True)
        # Reference order: each row's event id, channel or order id, campaign, interaction.
        flat = list(chain.from_iterable(zip(ids, channels, campaigns, interactions, strict=True)))
        bits = bytes(map(truth, purchase))
        kinds = (
            bits.translate(_RETAIN)
            if retained == n
            else bits[:retained].translate(_RETAIN) + bits[retained:]
        )
        bought = tuple(compress(amounts, bits))
    if compacted is not None:
        flat.append(compacted[1])
    # Strings in order of first reference, each once (a dict keeps insertion order).
    order = dict.fromkeys(flat)
    order.pop(None, None)
    texts = cast(list[str], list(order))  # None popped
    index: dict[str | None, int] = dict(zip(texts, range(len(texts)), strict=True))
    index[None] = none
    refs = list(map(index.__getitem__, flat))
    memory = none if compacted is None else refs.pop()
    text = "".join(texts).encode("utf-8")
    parts_json = orjson.dumps(state.analytics) if state.analytics is not None else b""
    analytics, flags = parts_json, _WIDE if wide else 0
    if parts_json:
        packed = _CODEC.compress(parts_json, asbytes=True)
        if len(packed) < len(parts_json):
            analytics, flags = packed, flags | _LZ4
    remembered = state.compacted_ids
    m = len(remembered)
    days, digests = zip(*remembered, strict=True) if m else ((), ())
    # struct packs whole columns (an array converts item by item through argument parsing).
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
                _NONE_MS if compacted is None else compacted[0],
                len(analytics),
                len(parts_json),
            ),
            analytics,
            _layout(f"<II{len(texts)}{code}").pack(len(texts), len(text), *map(len, texts)),
            text,
            _layout(f"<I{n}q{n}s{4 * n}{code}").pack(n, *ts, kinds, *refs),
            _layout(f"<{len(bought)}d{code}I{m}Q{m}iI").pack(
                *bought, memory, m, *digests, *days, len(emitted)
            ),
            _layout(f"<{len(shapes) + len(touch_refs)}{code}").pack(*shapes, *touch_refs)
            if emitted
            else b"",
        )
    )


def _journey_rows(
    emitted: Sequence[Journey], rows: list[EventRow], none: int, shapes: list[int], refs: list[int]
) -> None:
    """Each journey's purchase row and touch count into ``shapes``, its touch rows into
    ``refs``; an event of a journey that is no longer retained is appended to ``rows``."""
    row_of = {row.event_id: i for i, row in enumerate(rows)}

    def row_ref(event_id: str, make: Callable[[], EventRow]) -> int:
        found = row_of.get(event_id)
        if found is None:  # an event of a stored journey that is no longer retained
            found = row_of[event_id] = len(rows)
            rows.append(make())
        return found

    for journey in emitted:
        refs += [row_ref(t.event_id, partial(_touch_row, t)) for t in journey.touches]
        purchase = none
        if isinstance(journey, ConvertedJourney):
            purchase = row_ref(journey.event_id, partial(_purchase_row, journey))
        shapes += (purchase, len(journey.touches))


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


def _layout(layout: str) -> struct.Struct:
    """A struct layout (little-endian), compiled once."""
    compiled = _LAYOUTS.get(layout)
    if compiled is None:
        if len(_LAYOUTS) >= _LAYOUTS_KEPT:
            _LAYOUTS.clear()
        compiled = _LAYOUTS[layout] = struct.Struct(layout)
    return compiled


def _unpack(layout: str, value: bytes, offset: int) -> tuple[Any, ...]:
    """The values of a struct layout at ``offset``."""
    return _layout(layout).unpack_from(value, offset)


def decode(customer_id: str, value: Any) -> CustomerState:
    """The state of a table value (``None``: a customer never seen); any version."""
    if not value:
        return CustomerState(customer_id)
    if type(value) is not bytes and isinstance(value, Mapping):
        return _decode_v0(customer_id, value)
    if value[0] == VERSION:
        header: tuple[Any, ...] = _HEADER.unpack_from(value)
        offset = _HEADER.size
    elif value[0] == _V1:
        header = _HEADER_V1.unpack_from(value)
        offset = _HEADER_V1.size
    else:
        return _decode_v0(customer_id, _v0(value))
    # Column-wise: one struct unpack per run of columns, one C-level pass per column.
    _, flags, partition, newest, as_of, open_since, held, compacted_ms, stored = header[:9]
    code, size, none = ("I", 4, 0xFFFFFFFF) if flags & _WIDE else ("H", 2, 0xFFFF)
    analytics = _analytics(value, header) if stored else None
    offset += stored
    n, text_size = _COUNTS.unpack_from(value, offset)
    offset += _COUNTS.size
    lengths = _unpack(f"<{n}{code}", value, offset)
    offset += n * size
    # One decode of the whole text, then cuts by characters.
    text = value[offset : offset + text_size].decode("utf-8")
    offset += text_size
    texts: list[str] = []
    cut = texts.append
    start = 0
    for length in lengths:
        cut(text[start : start + length])
        start += length
    lookup: dict[int, str | None] = dict(enumerate(texts))
    lookup[none] = None
    (n,) = _COUNT.unpack_from(value, offset)
    offset += _COUNT.size
    columns = _unpack(f"<{n}q{n}x{4 * n}{code}", value, offset)
    kinds = value[offset + 8 * n : offset + 9 * n]
    offset += (9 + 4 * size) * n
    bits = kinds.translate(_PURCHASE_BIT)
    bought = bits.count(1)
    memory = _unpack(f"<{bought}d{code}I", value, offset)
    offset += 8 * bought + size + _COUNT.size
    if bought == n:
        amounts: Sequence[float] = memory[:n]
    elif bought:
        paid = iter(memory[:bought])
        amounts = [next(paid) if bit else 0.0 for bit in bits]
    else:
        amounts = [0.0] * n
    strings = list(map(lookup.__getitem__, columns[n:]))
    rows: list[EventRow] = list(
        map(
            tuple.__new__,
            repeat(EventRow),
            zip(
                columns[:n],
                strings[0::4],
                map(bool, bits),
                strings[1::4],
                amounts,
                strings[2::4],
                strings[3::4],
                strict=True,
            ),
        )
    )
    compacted_ref, m = memory[bought:]
    if value[0] == _V1:  # the ids as text: dated on the last compacted event's day
        cut_day = compacted_ms // DAY_MS if compacted_ref != none else 0
        refs = _unpack(f"<{m}{code}I", value, offset)
        offset += m * size + _COUNT.size
        remembered = [(cut_day, id_digest(texts[i])) for i in refs[:m]]
        journeys = refs[m]
    else:
        ids = _unpack(f"<{m}Q{m}iI", value, offset)
        offset += 12 * m + _COUNT.size
        remembered = list(zip(ids[m : 2 * m], ids[:m], strict=True))
        journeys = ids[2 * m]
    state = CustomerState(
        customer_id,
        # Rows only a stored journey needs are not events (all are, but for a rare journey).
        rows
        if 0 not in kinds.translate(_RETAINED_BIT)
        else [row for row, kind in zip(rows, kinds, strict=True) if kind & _RETAINED],
        [],
        remembered,
        _or_none(newest),
        _or_none(as_of),
        _or_none(open_since),
        None if compacted_ref == none else (compacted_ms, texts[compacted_ref]),
        analytics,
        _or_none(held),
        None if partition == _NO_PARTITION else partition,
    )
    if journeys:
        shapes = _unpack(f"<{2 * journeys}{code}", value, offset)
        offset += 2 * journeys * size
        touch_rows = _unpack(f"<{sum(shapes[1::2])}{code}", value, offset)
        state.emitted = _journeys(customer_id, rows, shapes, touch_rows, none, state.touch_cache)
    return state


def _journeys(
    customer_id: str,
    rows: list[EventRow],
    shapes: Sequence[int],
    touch_rows: Sequence[int],
    none: int,
    touch_cache: dict[str, Touch],
) -> list[Journey]:
    """The stored journeys: per journey its purchase row (``none``: a null path) and touch
    count in ``shapes``, the touch rows of all in order in ``touch_rows``."""

    def touch(i: int) -> Touch:
        row = rows[i]
        made = touch_cache.get(row.event_id)
        if made is None:
            made = touch_cache[row.event_id] = Touch(
                row.channel_or_order, row.ts_ms, row.event_id, row.campaign, row.interaction
            )
        return made

    emitted: list[Journey] = []
    start = 0
    for purchase, count in zip(shapes[::2], shapes[1::2], strict=True):
        touches = tuple(map(touch, touch_rows[start : start + count]))
        start += count
        if purchase == none:
            emitted.append(NullJourney(customer_id, touches))
        else:
            p = rows[purchase]
            emitted.append(
                ConvertedJourney(
                    customer_id, p.channel_or_order, p.event_id, p.ts_ms, p.amount, touches
                )
            )
    return emitted


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
    stored = _analytics_json(value, header)
    if not stored:
        return None
    parts: dict[str, Any] = orjson.loads(stored)
    return parts


def _analytics_json(value: bytes, header: tuple[Any, ...]) -> bytes:
    """The analytics parts' JSON of a version 2 or 1 value (empty: none)."""
    size = header[8]
    if not size:
        return b""
    start = _analytics_start(value)
    stored = value[start : start + size]
    if header[1] & _LZ4:
        # A header that overstates the size gives a zero-padded block (pyarrow): orjson then
        # refuses the trailing bytes, so a corrupt record fails loudly either way.
        stored = _CODEC.decompress(stored, decompressed_size=header[9], asbytes=True)
    return stored


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


def analytics_json(value: Any) -> bytes | None:
    """The customer's analytics parts as the JSON orjson wrote (empty: none yet), unparsed;
    ``None`` for a version 0 value (read it with :func:`analytics_parts`)."""
    if not value:
        return b""
    header = _header(value)
    return None if header is None else _analytics_json(value, header)


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
