"""Which input offsets each partition has processed, so that a skipped range is noticed.

Faust can hand an agent a partition's messages with a hole in them after a rebalance or a
stop (seen in the restart test: the last few purchases before the stop were never delivered,
yet their offsets were committed). The pipeline therefore keeps its own next expected offset
per input topic partition: in memory for speed, and in the partition's ``P|offsets`` aggregate
key at the end of every batch and expiry tick, written with the batch's other table writes, so
that the next owner of the partition inherits it. The stored value may lag what was processed
(one written by a worker before 2026-12-08, which stored it only at ticks); reading a range
again is harmless because processing is idempotent (customer states drop known event ids,
invalid records are counted once per offset). It may also be ahead of the group's committed
offset: when the batch's writes went out but its commit did not (a rebalance), or, with
``at_least_once`` only, when Kafka took part of a batch's writes (docs/stream.md, "Crashes").
Either way the consumer redelivers from the committed offset and those records are processed as
usual: a stored offset ahead only means no extra range is read.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from stream.processing import aggregate_keys as keys


@dataclass
class OffsetBook:
    """Next expected offset per (topic, partition), as this worker knows it."""

    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def forget(self, partition: int) -> None:
        """Drop what memory holds for a partition (it was reassigned: the table is the truth)."""
        for key in [k for k in self.next_offsets if k[1] == partition]:
            del self.next_offsets[key]

    def expected(self, aggregates: Mapping[str, Any], topic: str, partition: int) -> int | None:
        """Next offset to process on the topic partition; ``None`` if nothing was ever recorded."""
        key = (topic, partition)
        if key not in self.next_offsets:
            stored = (aggregates.get(keys.offsets(partition)) or {}).get(topic)
            if stored is None:
                return None
            self.next_offsets[key] = int(stored)
        return self.next_offsets[key]

    def processed(self, topic: str, partition: int, offset: int) -> None:
        """Record that the message at ``offset`` was processed."""
        key = (topic, partition)
        if offset + 1 > self.next_offsets.get(key, 0):
            self.next_offsets[key] = offset + 1

    def persist(self, aggregates: MutableMapping[str, Any], partition: int) -> None:
        """Write the partition's offsets into its ``P|offsets`` key (one write, only on change)."""
        key = keys.offsets(partition)
        stored = dict(aggregates.get(key) or {})
        merged = dict(stored)
        for (topic, part), offset in self.next_offsets.items():
            if part == partition and offset > merged.get(topic, -1):
                merged[topic] = offset
        if merged != stored:
            aggregates[key] = merged


def missing_range(expected: int | None, offset: int) -> tuple[int, int] | None:
    """The offsets ``[start, end)`` skipped before ``offset``, or ``None`` if nothing was.

    With no record at all the partition's history is unknown: everything before is re-read.
    """
    start = 0 if expected is None else expected
    return (start, offset) if offset > start else None
