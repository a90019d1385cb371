"""Which partition a key goes to: Kafka's default partitioner, as the producers use it."""

from __future__ import annotations

from kafka.partitioner.default import murmur2


def key_partition(key: bytes, partitions: int) -> int:
    """Partition Kafka's default partitioner gives ``key`` (murmur2, positive, modulo)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def customer_partition(customer_id: str, partitions: int) -> int:
    """Partition of a customer's events (they are keyed by the UTF-8 customer id)."""
    return key_partition(customer_id.encode("utf-8"), partitions)
