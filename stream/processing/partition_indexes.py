"""Per partition, the customers with an open journey and those with held journeys.

Memory only, rebuilt from the customers table on a partition's first record or tick after an
assignment (a customer's record keeps its own open and held times).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attribution.journeys import JourneyRules
from stream.processing import customer_record
from stream.processing.held import HeldIndex
from stream.processing.open_index import OpenIndex


class PartitionIndexes:
    """Open journeys (customer id -> start) and held journeys, per partition."""

    def __init__(
        self, customers: Mapping[bytes, Any], partition_of: Callable[[bytes, Any], int]
    ) -> None:
        self.customers = customers
        # The partition a stored customer belongs to, from its key and table value.
        self.partition_of = partition_of
        self.open: dict[int, OpenIndex] = {}
        self.held = HeldIndex()

    def known(self, partition: int) -> bool:
        """True when the partition's indexes were built since its assignment."""
        return partition in self.open and self.held.known(partition)

    def rebuild(self, partition: int) -> None:
        """Index the partition's open and held journeys from the customers table."""
        opened: dict[str, int] = {}
        holding: list[tuple[str, int]] = []
        for key, value in self.customers.items():
            since = customer_record.open_since(value)
            held = customer_record.held_since(value)
            if since is None and held is None:
                continue
            if self.partition_of(key, value) != partition:
                continue
            customer_id = key.decode("utf-8")
            if since is not None:
                opened[customer_id] = since
            if held is not None:
                holding.append((customer_id, held))
        self.open[partition] = OpenIndex(opened.items())
        self.held.rebuild(partition, holding)

    def track(self, partition: int, customer_id: str) -> None:
        """Bring the partition's indexes in step with a customer's stored state."""
        if not self.known(partition):
            self.rebuild(partition)  # the scan sees this customer's new state too
            return
        value = self.customers.get(customer_id.encode("utf-8"))
        self.held.update(partition, customer_id, customer_record.held_since(value))
        self.open[partition].set(customer_id, customer_record.open_since(value))

    def due_to_expire(self, partition: int, as_of_ms: int, rules: JourneyRules) -> list[str]:
        """Customers of the partition whose open journey becomes a null path at ``as_of_ms``."""
        if not self.known(partition):
            self.rebuild(partition)
        return self.open[partition].due(as_of_ms, rules)

    def forget(self, partition: int) -> None:
        """Drop a partition's indexes (revoked or reassigned: the table is the truth)."""
        self.open.pop(partition, None)
        self.held.forget(partition)

    def open_count(self) -> int:
        """Customers with an open journey, over every indexed partition."""
        return sum(len(index) for index in self.open.values())
