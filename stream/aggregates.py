"""Aggregates kept per source partition, and their merge into the batch engine's JSON.

Every aggregate key starts with the number of the partition whose events wrote it. A partition is
processed by exactly one worker at a time and its table changelog lives in the same partition, so
two workers, one worker, or a restarted worker all end with the same per-partition values; a query
sums the partitions. Keys:

``P|totals``        conversions, value, null paths, unattributed conversions, invalid records,
                    and ``wm``: the newest event time seen in the partition (epoch ms)
``P|credits``       model -> channel -> [conversions, value], all time
``P|daily|DAY``     ``totals`` and model -> channel -> [conversions, value] for that UTC day
``P|conv|DAY|B``    converted journeys of that day (bucket B of 32), for the customer analytics
``P|markov|STATE``  out-edges of a Markov state: {"to": {state: weight}, "cv": v, "cc": c}
``P|tick``          the expiry clock last applied to the partition

Few, larger keys rather than many small ones: every write is a changelog message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from stream.contributions import Contribution
from stream.write_back import editable

TOTAL_FIELDS = ("conversions", "value", "null", "unattributed_conversions")


def _add_credits(
    target: dict[str, list[float]], credits: Mapping[str, tuple[float, float]], sign: int
) -> None:
    for channel, (conv, value) in credits.items():
        slot = target.setdefault(channel, [0.0, 0.0])
        slot[0] += sign * conv
        slot[1] += sign * value


def _add_totals(target: dict[str, float], delta: Contribution) -> None:
    s = delta.sign
    target["conversions"] = target.get("conversions", 0.0) + s * delta.conversions
    target["value"] = target.get("value", 0.0) + s * delta.value
    target["null"] = target.get("null", 0.0) + s * delta.nulls
    target["unattributed_conversions"] = (
        target.get("unattributed_conversions", 0.0) + s * delta.unattributed
    )


def apply_contribution(
    table: MutableMapping[str, Any], partition: int, delta: Contribution
) -> None:
    """Add a signed journey contribution to the partition's aggregate keys."""
    p = str(partition)
    _add_totals(editable(table, f"{p}|totals", dict), delta)
    if delta.conversions:
        day = editable(table, f"{p}|daily|{delta.day}", dict)
        _add_totals(day.setdefault("totals", {}), delta)
        for model, credits in delta.credits.items():
            _add_credits(day.setdefault(model, {}), credits, delta.sign)
    if delta.credits:
        all_time = editable(table, f"{p}|credits", dict)
        for model, credits in delta.credits.items():
            _add_credits(all_time.setdefault(model, {}), credits, delta.sign)
    if delta.transitions is not None:
        _apply_transitions(table, p, delta)


def _new_state() -> dict[str, Any]:
    return {"to": {}, "cv": 0.0, "cc": 0.0}


def _apply_transitions(table: MutableMapping[str, Any], p: str, delta: Contribution) -> None:
    counts = delta.transitions
    assert counts is not None
    sign = delta.sign
    for (src, dst), weight in counts.edges.items():
        to = editable(table, f"{p}|markov|{src}", _new_state)["to"]
        new = to.get(dst, 0.0) + sign * weight
        if new:
            to[dst] = new
        else:
            to.pop(dst, None)
    for state, value in counts.conversion_value.items():
        editable(table, f"{p}|markov|{state}", _new_state)["cv"] += sign * value
    for state, count in counts.conversion_count.items():
        editable(table, f"{p}|markov|{state}", _new_state)["cc"] += sign * count


def note_event(table: MutableMapping[str, Any], partition: int, ts_ms: int | None) -> None:
    """Move the partition's newest event time (one write)."""
    key = f"{partition}|totals"
    totals = dict(table.get(key) or {})
    if ts_ms is not None and ts_ms > totals.get("wm", 0):
        totals["wm"] = ts_ms
        table[key] = totals


def note_invalid(table: MutableMapping[str, Any], partition: int, topic: str, offset: int) -> bool:
    """Count an invalid record once; False when this offset was already counted.

    After a restart Faust redelivers the records after the last committed offset; counting
    (and dead-lettering) a record again would make the totals differ from the batch engine.
    """
    key = f"{partition}|totals"
    totals = dict(table.get(key) or {})
    seen = dict(totals.get("invalid_offsets") or {})
    if offset <= seen.get(topic, -1):
        return False
    seen[topic] = offset
    totals["invalid_offsets"] = seen
    totals["invalid"] = totals.get("invalid", 0) + 1
    table[key] = totals
    return True


def aggregate_partition(key: str) -> int:
    """The partition an aggregate key belongs to (its ``P|`` prefix)."""
    return int(key.partition("|")[0])


def split_key(key: str) -> tuple[int, str]:
    """(partition, rest of the key)."""
    head, _, rest = key.partition("|")
    return int(head), rest


def local_items(
    items: Iterable[tuple[str, Any]], partitions: set[int]
) -> dict[str, dict[str, Any]]:
    """The aggregate items of the given partitions, grouped by partition (a worker's share)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in items:
        partition, rest = split_key(key)
        if partition in partitions:
            out.setdefault(str(partition), {})[rest] = value
    return out
