"""What the analytics report needs from a worker's tables, per partition it owns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from stream.processing import customer_record
from stream.processing.aggregates import analytics_items


def partition_shares(
    customer_items: Iterable[tuple[bytes, Any]],
    aggregate_items: Iterable[tuple[str, Any]],
    partitions: set[int],
    partition_of: Callable[[bytes, Any], int],
) -> dict[str, dict[str, Any]]:
    """Per partition: customers' analytics parts, cost events, converted journey rows."""
    out: dict[str, dict[str, Any]] = {
        str(p): {"customers": {}, **items}
        for p, items in analytics_items(aggregate_items, partitions).items()
    }
    for key, value in customer_items:
        parts = customer_record.analytics_parts(value)
        if not parts:
            continue
        partition = partition_of(key, value)
        if partition in partitions:
            out[str(partition)]["customers"][key.decode("utf-8")] = parts
    return out
