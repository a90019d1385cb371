"""What the analytics report needs from a worker's tables, per partition it owns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from attribution.money import DEFAULT_BASE_CURRENCY
from stream.processing import customer_record
from stream.processing.aggregates import analytics_items
from stream.processing.analytics_columns import share_columns


def partition_shares(
    customer_items: Iterable[tuple[bytes, Any]],
    aggregate_items: Iterable[tuple[str, Any]],
    partitions: set[int],
    partition_of: Callable[[bytes, Any], int],
    base_currency: str = DEFAULT_BASE_CURRENCY,
) -> dict[str, dict[str, Any]]:
    """Per partition: its customers' analytics parts as columns and sums
    (:func:`~stream.processing.analytics_columns.share_columns`), cost events, converted
    journey rows."""
    customers: dict[int, list[tuple[str, Any]]] = {p: [] for p in partitions}
    for key, value in customer_items:
        parts = customer_record.analytics_parts(value)
        if not parts:
            continue
        partition = partition_of(key, value)
        if partition in partitions:
            customers[partition].append((key.decode("utf-8"), parts))
    return {
        str(p): {
            **share_columns(sorted(customers[p]), base_currency, items["funnel_sums"]),
            **items,
        }
        for p, items in analytics_items(aggregate_items, partitions).items()
    }
