"""Customers whose journeys wait for a lagging input topic, per partition, earliest first.

See :meth:`stream.processing.context.Context.credit_through` for why journeys are held. The index is
memory only: a customer's state keeps its own ``held_since_ms``, and the index of a partition is
rebuilt from the customers table when the partition is (re)assigned.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class HeldIndex:
    """Per partition: customer id -> end time of its first held journey, with a min-heap."""

    def __init__(self) -> None:
        self.since: dict[int, dict[str, int]] = {}
        self.heaps: dict[int, list[tuple[int, str]]] = {}

    def known(self, partition: int) -> bool:
        """True when the partition's index was built since its assignment."""
        return partition in self.since

    def rebuild(self, partition: int, entries: Iterable[tuple[str, int]]) -> None:
        """Start the partition's index from (customer id, held since) pairs."""
        since = dict(entries)
        heap = [(ms, customer_id) for customer_id, ms in since.items()]
        heapq.heapify(heap)
        self.since[partition] = since
        self.heaps[partition] = heap

    def update(self, partition: int, customer_id: str, held_since_ms: int | None) -> None:
        """Record a customer's current held time (``None``: nothing held)."""
        since = self.since.get(partition)
        if since is None:
            return
        if held_since_ms is None:
            since.pop(customer_id, None)
        elif since.get(customer_id) != held_since_ms:
            since[customer_id] = held_since_ms
            heapq.heappush(self.heaps[partition], (held_since_ms, customer_id))

    def due(self, partition: int, through_ms: int | None) -> list[str]:
        """Customers whose held journeys end at or before ``through_ms`` (``None``: all).

        They leave the index; :meth:`update` puts back any that still hold something.
        """
        since = self.since.get(partition)
        if not since:
            return []
        heap = self.heaps[partition]
        found = []
        while heap and (through_ms is None or heap[0][0] <= through_ms):
            ms, customer_id = heapq.heappop(heap)
            if since.get(customer_id) == ms:  # older heap entries of a customer are stale
                del since[customer_id]
                found.append(customer_id)
        return found

    def partitions(self) -> list[int]:
        """Partitions with at least one held customer."""
        return [partition for partition, since in self.since.items() if since]

    def forget(self, partition: int) -> None:
        """Drop a partition's index (revoked or reassigned: the table is the truth)."""
        self.since.pop(partition, None)
        self.heaps.pop(partition, None)

    def __len__(self) -> int:
        return sum(len(since) for since in self.since.values())
