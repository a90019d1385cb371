"""The messages one batch of events makes, sent to Kafka as a few record batches.

Faust's ``send_soon`` costs about 100 µs a message (a future message, its callbacks, a hop
through the producer buffer, then aiokafka's own per-message send). A batch of events writes
about two messages per event (table changelogs, attribution records, dead letters), which made
sending the largest cost of the worker. Here each message is appended to an aiokafka record
batch of its topic partition (a few µs), the record batches go out with ``send_batch``, and the
agent awaits their delivery before it commits the offsets of the events that made them: a
failed send stops the agent instead of letting an offset commit skip the events.

With transactions (``worker.processing_guarantee = "exactly_once"``, the default), the record
batches and the input offsets the batch consumed are one Kafka transaction
(stream/kafka/transactions.py): a crash at any moment leaves all of the batch or none of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from itertools import count
from typing import Any, TypeVar

from stream.kafka.partitioning import key_partition
from stream.kafka.transactions import GroupFenced, TransactionalProducer

T = TypeVar("T")

# Exit status of a worker whose batch could not be sent (see send_or_exit).
SEND_FAILED_EXIT = 4

# Called with (topic partition, offset of the last message delivered there).
OnDelivered = Callable[[Any, int], None]


class Outgoing:
    """Messages held per topic partition until :meth:`send`; order within a partition kept."""

    def __init__(
        self, producer: Callable[[], Any], transactions: TransactionalProducer | None = None
    ) -> None:
        # A callable, because Faust's aiokafka producer exists only once the app has started.
        # With transactions, the record batches are the transactional producer's own.
        self._transactions = transactions
        self._producer = producer if transactions is None else transactions.started
        self._batches: dict[tuple[str, int], list[Any]] = {}
        self._on_delivered: dict[tuple[str, int], OnDelivered] = {}
        # Messages whose partition the topic's partition count decides, at send time.
        self._keyed: dict[str, list[tuple[bytes | None, bytes]]] = {}
        self._spread = count()
        self.messages = 0

    def __len__(self) -> int:
        return self.messages

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        """Hold one message for ``topic``/``partition``."""
        where = (topic, partition)
        builders = self._batches.get(where)
        if builders is None:
            builders = self._batches[where] = [self._producer().create_batch()]
        if builders[-1].append(timestamp=None, key=key, value=value) is None:
            # Full: a fresh record batch takes any first message (an oversized one is then
            # refused by the broker, and the send raises).
            fresh = self._producer().create_batch()
            fresh.append(timestamp=None, key=key, value=value)
            builders.append(fresh)
        if on_delivered is not None:
            self._on_delivered[where] = on_delivered
        self.messages += 1

    def add_keyed(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Hold one message for the partition Kafka's default partitioner gives its key.

        Key-less messages are spread over the partitions in turn.
        """
        self._keyed.setdefault(topic, []).append((key, value))
        self.messages += 1

    async def _place_keyed(self) -> None:
        keyed, self._keyed = self._keyed, {}
        for topic, messages in keyed.items():
            partitions = len(await self._producer().partitions_for(topic))
            self.messages -= len(messages)
            for key, value in messages:
                if key is None:
                    partition = next(self._spread) % partitions
                else:
                    partition = key_partition(key, partitions)
                self.add(topic, partition, key, value)

    async def send(self, offsets: Mapping[tuple[str, int], int] | None = None) -> int:
        """Send every held message and wait until Kafka has them all; return how many.

        With transactions, the messages and ``offsets`` (the next offset to read of each input
        topic partition the batch consumed) are committed as one transaction.
        """
        if self._keyed:
            await self._place_keyed()
        batches, self._batches = self._batches, {}
        on_delivered, self._on_delivered = self._on_delivered, {}
        count, self.messages = self.messages, 0
        if not batches:
            # Nothing written: the agent commits the batch's offsets to the group instead.
            return 0
        producer = self._producer()
        await keep_in_metadata(producer, {topic for topic, _ in batches})
        transactions = self._transactions
        if transactions is not None:
            await transactions.begin()
        deliveries = []
        for (topic, partition), builders in batches.items():
            for builder in builders:
                builder.close()
                future = await producer.send_batch(builder, topic, partition=partition)
                deliveries.append((topic, partition, builder.record_count(), future))
        delivered = []
        for topic, partition, records, future in deliveries:
            delivered.append((topic, partition, records, await future))
        if transactions is not None:
            await transactions.commit(offsets or {})
        for topic, partition, records, metadata in delivered:
            callback = on_delivered.get((topic, partition))
            if callback is not None:
                callback(metadata.topic_partition, metadata.offset + records - 1)
        return count


async def keep_in_metadata(producer: Any, topics: set[str]) -> None:
    """Make the producer's metadata refreshes ask for each of ``topics`` from now on.

    aiokafka's ``send_batch`` adds a topic to the topics its refreshes ask for only when its
    metadata lacks the topic. After a refresh of every topic (one happens while a
    transactional producer retries InitProducerId on a fresh broker), a known topic is never
    added; once another topic is, the refreshes ask for that one alone, the known topic's
    leader becomes unknown and its queued record batches wait until the transaction times
    out (tests/stream/kafka/test_outgoing_metadata.py).
    """
    for topic in sorted(topics):
        await producer.client.add_topic(topic)


async def send_or_exit(
    outgoing: Outgoing,
    delivered: Callable[[], None] | None = None,
    exit: Callable[[int], Any] = os._exit,
    offsets: Mapping[tuple[str, int], int] | None = None,
) -> int:
    """Send the batch's messages, then call ``delivered``; if Kafka refuses them, exit at once.

    On a failure the process ends without any offset commit: carrying on would commit the
    failed batch's offsets with the next batch's and skip its events. With transactions the
    open transaction is never committed (the broker aborts it, at once when the worker
    restarts on its data directory); without them Kafka may have taken part of the batch (each
    partition's record batch succeeds or fails alone), the gap docs/stream.md describes.
    """
    try:
        count = await outgoing.send(offsets)
    except GroupFenced as error:
        exit_before_commit(
            SEND_FAILED_EXIT,
            f"this worker was fenced: its consumer group has moved on ({error}); its batch "
            "was not committed and its partitions' new owners read it again",
            exit=exit,
        )
        return 0
    except Exception as error:  # noqa: BLE001 - any failure to deliver means the same
        exit_before_commit(
            SEND_FAILED_EXIT,
            f"could not send a batch's table writes and records to Kafka ({error!r})",
            exit=exit,
        )
        return 0
    if delivered is not None:
        delivered()
    return count


async def finish_before_cancel(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile (then re-raise).

    A graceful stop cancels the agent: a batch cut short there would leave its writes unsent
    (and Faust's stop first waits for the batch in hand, FeedConsumer.wait_empty).
    """
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def exit_before_commit(
    status: int, why: str, exit: Callable[[int], Any] = os._exit, exc_info: bool = False
) -> None:
    """Log ``why`` and end the process at once, so that no offset commit follows."""
    logging.getLogger("crm_attribution.stream").critical(
        "%s; exiting with status %d before any offset commit, so that the batch is read again",
        why,
        status,
        exc_info=exc_info,
    )
    logging.shutdown()
    exit(status)
