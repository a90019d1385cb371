"""Dead-letter records: what failed, where it came from, and the original bytes (or their start)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

# What a dead letter keeps of the original value and key, and of its reason. A dead letter
# carries the value twice (base64 and text), and the broker takes about 1 MiB per record
# batch: whole, a 900 KB record became a 2.1 MB dead letter that Kafka refused, which stopped
# the worker (status 4) and kept the record out of the dead-letter topic. Beyond these sizes
# the start is kept, with the full size and a SHA-256 to find the record again; the
# coordinates (topic, partition, offset) always say where the whole record is.
KEPT_VALUE_BYTES = 64 * 1024
KEPT_KEY_BYTES = 1024
KEPT_REASON_CHARS = 1000


def dead_letter_record(
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> dict[str, Any]:
    """JSON-ready dead-letter value: the original bytes exactly (base64), or their start."""
    if len(reason) > KEPT_REASON_CHARS:
        reason = f"{reason[:KEPT_REASON_CHARS]}... ({len(reason):,} characters)"
    record: dict[str, Any] = {
        "reason": reason,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": _text(key[:KEPT_KEY_BYTES]) if key is not None else None,
        "value_base64": None,
    }
    if key is not None and len(key) > KEPT_KEY_BYTES:
        record["key_truncated"] = True
        record["key_bytes"] = len(key)
    if value is None:
        return record
    kept = value[:KEPT_VALUE_BYTES]
    record["value_base64"] = base64.b64encode(kept).decode("ascii")
    whole_text = _utf8(value)
    if len(kept) == len(value):
        record["value_text"] = whole_text
        return record
    # Truncated: the text of the kept start (a character cut in two at its end is dropped).
    record["value_text"] = kept.decode("utf-8", "ignore") if whole_text is not None else None
    record["truncated"] = True
    record["value_bytes"] = len(value)
    record["value_sha256"] = hashlib.sha256(value).hexdigest()
    return record


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
