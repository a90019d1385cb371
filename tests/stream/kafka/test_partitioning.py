"""Key partitioning: the same murmur2 as Kafka's Java client, kafka-python and aiokafka."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from stream.kafka.partitioning import key_partition


def test_key_partition_is_the_producers_partitioner() -> None:
    """aiokafka's (Faust's producer) default partitioner; kafka-python's uses the same murmur2."""
    partitions = list(range(6))
    for i in range(200):
        key = f"c{i:06d}".encode()
        assert key_partition(key, 6) == DefaultPartitioner()(key, partitions, partitions)
