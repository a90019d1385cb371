"""The consumer's view of where input partitions end, as the batch runner asks it."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.kafka.positions import consumer_highwater


def test_an_unassigned_or_unfetched_partition_has_no_known_end() -> None:
    """aiokafka asserts on a partition it no longer holds (after a rebalance): that is unknown."""

    async def ends() -> tuple[int | None, int | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
        tp = TopicPartition("t", 0)
        try:
            unassigned = consumer_highwater(consumer, tp)
            consumer.assign([tp])
            return unassigned, consumer_highwater(consumer, tp)
        finally:
            await consumer.stop()

    assert asyncio.run(ends()) == (None, None)
