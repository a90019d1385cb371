"""Dead-letter records: what failed, where it came from, and the original bytes."""

from __future__ import annotations

import base64
from typing import Any


def dead_letter_record(
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> dict[str, Any]:
    """JSON-ready dead-letter value; the original bytes are kept exactly (base64)."""
    record: dict[str, Any] = {
        "reason": reason,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "value_base64": base64.b64encode(value).decode("ascii") if value is not None else None,
    }
    if value is not None:
        try:
            record["value_text"] = value.decode("utf-8")
        except UnicodeDecodeError:
            record["value_text"] = None
    return record
