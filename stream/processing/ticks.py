"""The expiry tick: the group's newest event time, sent by the leader to every partition."""

from __future__ import annotations

import json


def tick_value(as_of_ms: int) -> bytes:
    """The message value of a tick."""
    return json.dumps({"as_of": as_of_ms}).encode()


def tick_as_of(value: bytes | None) -> int:
    """The event time a tick carries."""
    return int(json.loads(value or b"{}")["as_of"])
