"""What the analytics report needs from a worker's tables, per partition it owns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from attribution.money import DEFAULT_BASE_CURRENCY
from stream.processing import customer_record
from stream.processing.aggregates import analytics_items
from stream.processing.analytics_columns import share_columns, split_funnel
from stream.processing.analytics_parts import FUNNEL


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
    customers: dict[int, list[tuple[str, Any, bytes | None]]] = {p: [] for p in partitions}
    for key, value in customer_items:
        read = _parts_and_funnel(value)
        if read is None:
            continue
        parts, funnel = read
        partition = partition_of(key, value)
        if partition in partitions:
            customers[partition].append((key.decode("utf-8"), parts, funnel))
    shares: dict[str, dict[str, Any]] = {}
    for p, items in analytics_items(aggregate_items, partitions).items():
        # Used here, not shipped: the share carries the counts share_columns chose.
        funnel_sums = items.pop("funnel_sums")
        listed = sorted(customers[p], key=_customer_id)
        columns = share_columns(
            [(customer, parts) for customer, parts, _ in listed],
            base_currency,
            funnel_sums if funnel_sums_exact else None,
            [funnel for _, _, funnel in listed if funnel is not None],
        )
        shares[str(p)] = {**columns, **items}
    return shares


def _customer_id(item: tuple[str, Any, bytes | None]) -> str:
    return item[0]


def _parts_and_funnel(value: Any) -> tuple[dict[str, Any], bytes | None] | None:
    """A customer record's analytics parts without their funnel part, and the funnel part as
    JSON (``None``: no funnel part); ``None`` when the record holds no parts.

    The funnel part stays text: a share parses it only when ``P|funnel`` does not cover it,
    and it was most of the parts' parsing (see ``analytics_columns.split_funnel``).
    """
    text = customer_record.analytics_json(value)
    if text is not None:
        if not text:
            return None
        split = split_funnel(text)
        if split is not None:
            rest, funnel = split
            kept: dict[str, Any] = orjson.loads(rest)
            return kept, funnel
        parts: dict[str, Any] | None = orjson.loads(text)
    else:  # version 0
        parts = customer_record.analytics_parts(value)
    if not parts:
        return None
    if FUNNEL not in parts:
        return parts, None
    parts = dict(parts)  # a version 0 record's own dict: not changed in place
    return parts, orjson.dumps(parts.pop(FUNNEL))
