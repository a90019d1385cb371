"""Read a skipped range of an input partition directly from Kafka (outside the consumer group)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.security import aiokafka_args
from stream.types import Record

FETCH_TIMEOUT_MS = 1_000
MAX_EMPTY_FETCHES = 30


class GapReader:
    """A group-less consumer that fetches ``[start, end)`` of one topic partition on demand.

    Implements :class:`stream.types.GapSource`.
    """

    def __init__(self, bootstrap: str, kafka: KafkaSettings) -> None:
        self.bootstrap = bootstrap
        self.kafka = kafka
        self._consumer: Any = None

    async def _get(self) -> Any:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                # As the worker's own consumer: a transactional producer's aborted records
                # are offsets the group skipped, not events to process.
                isolation_level="read_committed",
                **aiokafka_args(self.kafka),
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def read(self, topic: str, partition: int, start: int, end: int) -> AsyncIterator[Record]:
        """Yield the records of ``topic``/``partition`` with ``start <= offset < end``, in order."""
        consumer = await self._get()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        empty = 0
        while empty < MAX_EMPTY_FETCHES:
            batches = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS)
            records = batches.get(tp, [])
            if not records:
                # The range exists (the group consumer is past it), so only log retention or
                # transaction markers leave nothing to read; stop once the position passes it.
                if await consumer.position(tp) >= end:
                    return
                empty += 1
                continue
            empty = 0
            for record in records:
                if record.offset >= end:
                    return
                yield Record(
                    topic,
                    partition,
                    record.offset,
                    record.key,
                    record.value,
                    record.timestamp / 1000,
                )
            if records[-1].offset + 1 >= end:
                return
        raise TimeoutError(f"could not read {topic}[{partition}] offsets {start}..{end - 1}")

    async def close(self) -> None:
        """Stop the consumer if it was started."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
