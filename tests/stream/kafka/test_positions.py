"""The consumer's view of where input partitions start and end, as the batch runner asks it."""

from __future__ import annotations

import asyncio

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from stream.kafka.positions import ConsumerPositions, consumer_highwater


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


def test_the_committed_offset_is_what_faust_learnt_when_it_sought_the_assignment() -> None:
    """Unknown until Faust's seek to the committed offsets, then that offset; asking adds no
    entry to Faust's table of committed offsets (a defaultdict it commits from)."""
    app = faust.App("positions-test", broker="kafka://127.0.0.1:1")
    consumer = app.consumer
    positions = ConsumerPositions(lambda: app.consumer)

    async def committed_offsets() -> dict[TP, int]:
        return {TP("t", 0): 880}

    consumer.seek_to_committed = committed_offsets  # the broker's answer
    before = positions.committed("t", 0)
    assert dict(consumer._committed_offset) == {}  # noqa: SLF001
    asyncio.run(consumer.perform_seek())
    assert (before, positions.committed("t", 0), positions.committed("t", 1)) == (None, 880, None)
