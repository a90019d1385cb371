"""Bytes of the messages the worker writes: table changelogs and output records.

Faust's json codec uses orjson when it is installed (it is a dependency), with the options below;
changelog messages written here must decode the same way when Faust recovers a table, and a test
holds them equal to Faust's own encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

_FAUST_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def table_json(value: Any) -> bytes:
    """A table key or value as Faust's ``json`` serializer writes it."""
    return orjson.dumps(value, option=_FAUST_JSON)


def raw_key(key: bytes) -> bytes:
    """A table key under Faust's ``raw`` serializer: the bytes themselves."""
    return key


def raw_value(value: bytes) -> bytes:
    """A table value under Faust's ``raw`` serializer: the bytes themselves."""
    return value


def record_json(record: Mapping[str, Any]) -> bytes:
    """Compact JSON of an output record, keys sorted so equal records are equal bytes."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
