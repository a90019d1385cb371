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
    funnel_sums_exact: bool = True,
) -> dict[str, dict[str, Any]]:
    """Per partition: its customers' analytics parts as columns and sums
    (:func:`~stream.processing.analytics_columns.share_columns`), cost events, converted
    journey rows. ``funnel_sums_exact``: the partitions' ``P|funnel`` sums may be used (a batch's
    customer and aggregate writes commit together: ``exactly_once``)."""
    customers: dict[int, list[tuple[str, Any]]] = {p: [] for p in partitions}
    for key, value in customer_items:
        parts = customer_record.analytics_parts(value)
        if not parts:
            continue
        partition = partition_of(key, value)
        if partition in partitions:
            customers[partition].append((key.decode("utf-8"), parts))
    shares: dict[str, dict[str, Any]] = {}
    for p, items in analytics_items(aggregate_items, partitions).items():
        # Used here, not shipped: the share carries the counts share_columns chose.
        funnel_sums = items.pop("funnel_sums")
        columns = share_columns(
            sorted(customers[p]), base_currency, funnel_sums if funnel_sums_exact else None
        )
        shares[str(p)] = {**columns, **items}
    return shares
