"""The values of ``P|conv`` and ``P|null`` keys: kept journeys as one compressed block each.

A worker holds every converted journey of its partitions (and, with credit intervals, every
null path) in the aggregates table; with the memory store that is most of its memory. A key's
value is therefore one block of text (the aggregates table's changelog is JSON, so text rather
than bytes)::

    "j1:" + base64(raw deflate, preset dictionary 1, of the JSON list [[customer_id, row], ...])

``row`` is :func:`stream.processing.journey_rows.journey_to_row`'s; a journey's id (the
purchase event id, or a null path's first touch event id) is in its row, so it is not written
twice. The marker names the version: a later format gets a new marker and this module goes on
reading ``j1``. Values written before blocks (2026-12-06) still read, and are rewritten as a
block on their key's next change:

- a dict of id -> JSON text of ``[customer_id, row]`` (2026-12 until blocks), and
- a dict of id -> ``[customer_id, row]`` lists (before that).

Every reader and writer of these values goes through here. Writers edit a key once per batch
(:func:`edit`: one decode and one encode however many of the key's journeys the batch changes).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import orjson

MARKER = "j1:"
# Version 1's preset dictionary: the JSON around a row, common channel and interaction names,
# and the id prefixes of the demo generator's events. A block holds a few journeys (about 9 at
# 20,000 customers x 180 days), too few for deflate alone to find much to refer to. Never
# change it: blocks written with it must decode; a new dictionary needs a new marker. The
# level may change freely (any raw deflate stream decodes).
_DICTIONARY = (
    b'"click","open","view","delivered","sent","visit","impression",null]'
    b'["referral",["affiliate",["organic",["display",["social",["paid_social",'
    b'["paid_search",["direct",["push",["whatsapp",["sms",["email",'
    b'[["n",[["c","o-","p-","t-",'
)
_WBITS = -15  # raw deflate: no zlib header and checksum (6 bytes of every block)
_LEVEL = 6

Pair = list[Any]  # [customer_id, row]
Edit = tuple[int, str, Pair | None]  # (sign, journey id, its pair when kept)


def encode(rows: Mapping[str, Pair]) -> str:
    """The block of ``rows`` (journey id -> ``[customer_id, row]``)."""
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, zdict=_DICTIONARY)
    packed = packer.compress(orjson.dumps(list(rows.values()))) + packer.flush()
    return MARKER + base64.b64encode(packed).decode("ascii")


def _unpack(block: str) -> list[Pair]:
    if not block.startswith(MARKER):
        raise ValueError(f"not a journey block: {block[:8]!r}")
    unpacker = zlib.decompressobj(_WBITS, zdict=_DICTIONARY)
    data = unpacker.decompress(binascii.a2b_base64(block[len(MARKER) :])) + unpacker.flush()
    pairs: list[Pair] = orjson.loads(data)
    return pairs


def journey_id(pair: Pair) -> str:
    """The id a journey is kept under: its purchase event id, or its first touch's."""
    row = pair[1]
    return str(row[2] if row[0] == "c" else row[1][0][2])


def decode(value: Any) -> dict[str, Pair]:
    """A new dict of journey id -> ``[customer_id, row]`` from a value of any format (or None)."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {journey_id(pair): pair for pair in _unpack(value)}
    return {
        event_id: orjson.loads(item) if isinstance(item, str) else list(item)
        for event_id, item in value.items()
    }


def pairs(value: Any) -> list[str | Pair]:
    """The ``[customer_id, row]`` pairs of a value: decoded, or as JSON text (older values),
    which :func:`stream.processing.aggregates.converted_table` parses in one call."""
    if value is None:
        return []
    if isinstance(value, str):
        return list(_unpack(value))
    return list(value.values())


def find(value: Any, journey: str) -> Pair | None:
    """The ``[customer_id, row]`` of journey id ``journey`` in a value (None: not there)."""
    if value is None:
        return None
    if isinstance(value, str):
        return decode(value).get(journey)
    item = value.get(journey)
    if item is None:
        return None
    return orjson.loads(item) if isinstance(item, str) else list(item)


def edit(table: MutableMapping[str, Any], key: str, edits: Iterable[Edit]) -> list[str]:
    """Apply ``edits`` in order to the block of ``key`` (a pair kept, or dropped when its sign is
    negative) and write it once; return the ids dropped.

    Nothing is written when nothing changed: a retraction of a journey the block does not keep
    (an older key holds it, or none) must not add a key.
    """
    current = table.get(key)
    rows: dict[str, Pair] | None = None
    dropped: list[str] = []
    changed = False
    for sign, journey, pair in edits:
        if sign > 0:
            assert pair is not None
            if rows is None:
                rows = decode(current)
            rows[journey] = pair
            changed = True
            continue
        dropped.append(journey)
        if rows is None:
            # An older dict value answers without decoding; a block is decoded once.
            if current is None or (not isinstance(current, str) and journey not in current):
                continue
            rows = decode(current)
        if rows.pop(journey, None) is not None:
            changed = True
    if changed:
        assert rows is not None
        table[key] = encode(rows)
    return dropped
