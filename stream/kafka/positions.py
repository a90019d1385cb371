"""Where the worker's consumer stands on its input partitions (Faust's aiokafka consumer)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from faust.types import TP

from stream.types import TopicPartition

log = logging.getLogger("crm_attribution.stream")


def consumer_highwater(consumer: Any, tp: Any) -> int | None:
    """The consumer's high watermark of ``tp``; ``None`` when unknown or no longer assigned."""
    try:
        return consumer.highwater(tp)
    except AssertionError:  # aiokafka's answer for a partition not assigned (after a rebalance)
        return None


class ConsumerPositions:
    """Implements :class:`stream.types.InputPositions` over the app's consumer."""

    def __init__(self, consumer: Callable[[], Any]) -> None:
        # A callable: Faust creates its consumer when the app starts.
        self._consumer = consumer

    def highwater(self, topic: str, partition: int) -> int | None:
        """The end offset the consumer has fetched, if any."""
        return consumer_highwater(self._consumer(), TP(topic, partition))

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset as the consumer knows it now (Faust learns it when it
        seeks a new assignment, which may finish after the first batch began)."""
        committed = self._consumer()._committed_offset  # noqa: SLF001 - Faust keeps it here
        offset: int | None = committed.get(TP(topic, partition))
        return offset

    async def starts_and_ends(
        self, partitions: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Committed (else earliest) offsets, and the ends of the partitions not fetched yet.

        A failure answers nothing: unknown means a backlog goes unnoticed, never a wrong number.
        """
        consumer = self._consumer()
        tps = [TP(topic, partition) for topic, partition in partitions]
        never = [tp for tp in tps if self.committed(tp.topic, tp.partition) is None]
        unfetched = [tp for tp in tps if consumer_highwater(consumer, tp) is None]
        try:
            earliest = await consumer.earliest_offsets(*never) if never else {}
            ends = await consumer.highwaters(*unfetched) if unfetched else {}
        except Exception as error:  # noqa: BLE001 - unknown means: hold nothing
            log.debug("offsets of %s unknown: %s", partitions, error)
            return {}, {}
        starts: dict[TopicPartition, int] = {}
        for tp in tps:
            start = self.committed(tp.topic, tp.partition)
            start = earliest.get(tp) if start is None else start
            if start is not None:
                starts[(tp.topic, tp.partition)] = start
        return starts, {(tp.topic, tp.partition): end for tp, end in ends.items()}
