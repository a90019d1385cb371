"""Input records straight from the consumer to the batch runner, as lists of ``Record``.

Faust delivers each record as an Event through its streams, acks and commit bookkeeping, which
took a large share of the worker's time (py-spy, issue 11) for nothing the runner needs: it
takes a list of ``stream.types.Record`` (stream/processing/runner.py). Here Faust's consumer
(``FeedConsumer``) hands the records of the input topics to an ``InputFeed`` as they are
fetched; the agent takes them in batches and commits their offsets itself. Faust still reads the
table changelogs (recovery), handles rebalances and runs the app.

Flow control: while the feed holds ``max_buffered`` records or more, the consumer leaves the
input partitions out of its fetch requests (as Faust does for a full stream buffer), so a
backlog of millions of records waits in Kafka, not in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord
from aiokafka.structs import TopicPartition as TopicPartition_
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.committed_reads import ReadCommittedConsumerThread
from stream.kafka.consumer_thread import InputConsumerThread
from stream.types import Record, TopicPartition


def to_record(record: ConsumerRecord) -> Record:
    """The runner's view of an aiokafka record (timestamp in seconds, ``None`` when unset)."""
    stamp = record.timestamp
    return Record(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        stamp / 1000.0 if stamp else None,
    )


def consumed_offsets(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """The next offset to read of each topic partition, after ``records``."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        where = (record.topic, record.partition)
        offsets[where] = max(offsets.get(where, 0), record.offset + 1)
    return offsets


class InputFeed:
    """A bounded buffer of input records, kept in order per partition, taken in batches.

    One consumer puts, one agent takes; both on the event loop. A batch taken is "in hand"
    until ``done``: a rebalance waits for it (``wait_idle``) before the partitions go.
    """

    def __init__(self, topics: Iterable[str], max_buffered: int) -> None:
        self.topics = frozenset(topics)
        self.max_buffered = max_buffered
        # Chunks in arrival order; a partition's chunks are taken from the front, so its
        # records leave in offset order.
        self._chunks: deque[list[Record]] = deque()
        self._buffered = 0
        # The next offset expected per partition: a record below it was fetched again after a
        # seek (Faust seeks back to the committed offsets when a fetch ends while its flow is
        # stopped) and is already buffered or processed.
        self._next: dict[TopicPartition, int] = {}
        self._assigned: set[TopicPartition] = set()
        # Bumped by each revocation: records fetched before it are not put.
        self.generation = 0
        self._in_hand = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Cleared by ``hold`` (a stop or rebalance is under way): no batch is handed out until
        # the next ``assign``.
        self._handing_out = asyncio.Event()
        self._handing_out.set()

    def __len__(self) -> int:
        return self._buffered

    def full(self) -> bool:
        """Whether the consumer should stop fetching the input partitions for now."""
        return self._buffered >= self.max_buffered

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Accept records of ``partitions`` (input topics only) from now on."""
        self._assigned.update(tp for tp in partitions if tp[0] in self.topics)
        self._handing_out.set()

    def assigned(self, tp: TopicPartition) -> bool:
        """Whether records of ``tp`` are accepted now."""
        return tp in self._assigned

    def hold(self) -> None:
        """Hand out no batch until the next ``assign`` (the batch in hand still ends)."""
        self._handing_out.clear()

    def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop the buffered records of ``partitions`` and refuse any more of them."""
        gone = set(partitions)
        self.generation += 1
        self._assigned -= gone
        for tp in gone:
            self._next.pop(tp, None)
        kept = [chunk for chunk in self._chunks if (chunk[0].topic, chunk[0].partition) not in gone]
        self._chunks = deque(kept)
        self._buffered = sum(len(chunk) for chunk in kept)
        if not self._buffered:
            self._arrived.clear()
        if not self.full():
            self._room.set()

    def put(self, tp: TopicPartition, records: Sequence[Record], generation: int) -> int:
        """Buffer the records of one partition fetched at ``generation``; return how many."""
        if generation != self.generation or tp not in self._assigned or not records:
            return 0
        expected = self._next.get(tp)
        if expected is not None and records[0].offset < expected:
            records = [record for record in records if record.offset >= expected]
            if not records:
                return 0
        self._next[tp] = records[-1].offset + 1
        self._chunks.append(list(records))
        self._buffered += len(records)
        self._arrived.set()
        if self.full():
            self._room.clear()
        return len(records)

    async def wait_room(self, timeout: float) -> None:
        """Wait until the buffer has room, at most ``timeout`` seconds."""
        if self.full():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), timeout)

    async def take(self, max_events: int, within_s: float) -> list[Record]:
        """The next batch: ``max_events`` records, or fewer once ``within_s`` has passed.

        Waits for at least one record, and while the feed is held. The batch is in hand until
        ``done``.
        """
        while True:
            await self._handing_out.wait()
            await self._gather(max_events, within_s)
            # A hold or revocation may have come while waiting: take nothing then.
            if self._handing_out.is_set() and self._buffered:
                return self._hand_out(max_events)

    async def _gather(self, max_events: int, within_s: float) -> None:
        """Wait until ``max_events`` records are buffered, or some and ``within_s`` has passed."""
        deadline = time.monotonic() + within_s
        while self._buffered < max_events:
            left = deadline - time.monotonic()
            if left <= 0:
                if self._buffered:
                    return
                await self._arrived.wait()
                continue
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def _hand_out(self, max_events: int) -> list[Record]:
        """Take up to ``max_events`` buffered records, in order per partition, into hand."""
        batch: list[Record] = []
        chunks = self._chunks
        while chunks and len(batch) < max_events:
            chunk = chunks.popleft()
            wanted = max_events - len(batch)
            if len(chunk) > wanted:
                chunks.appendleft(chunk[wanted:])
                chunk = chunk[:wanted]
            batch.extend(chunk)
        self._buffered -= len(batch)
        if not self._buffered:
            self._arrived.clear()
        if not self.full():
            self._room.set()
        self._in_hand += 1
        self._idle.clear()
        return batch

    def done(self, records: Sequence[Record]) -> None:
        """The batch taken is finished (committed, or abandoned without committing)."""
        self._in_hand -= 1
        if self._in_hand <= 0:
            self._in_hand = 0
            self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no batch is in hand."""
        await self._idle.wait()


class FeedConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer handing the input topics' records to the transport's feed.

    The hook is ``_getmany``, the fetch Faust's ``getmany`` dispatches from: records of the
    input topics go to the feed, the rest (table changelogs during recovery) go back to Faust.
    """

    @property
    def feed(self) -> InputFeed:
        """The feed the input records go to."""
        return self.transport.feed  # type: ignore[attr-defined]

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        if self.transport.read_committed:  # type: ignore[attr-defined]
            return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)
        return InputConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        feed = self.feed
        if active_partitions is not None and feed.full():
            # Left out of the request, aiokafka keeps at most its one prefetched response per
            # partition: the backlog stays in Kafka until the agent makes room.
            active_partitions = {tp for tp in active_partitions if tp.topic not in feed.topics}
            if not active_partitions:
                await feed.wait_room(timeout)
                return {}
        generation = feed.generation
        records = await super()._getmany(active_partitions, timeout)
        if not self.flow_active:
            # Faust's getmany seeks back to the committed offsets and drops these.
            return records
        rest = {}
        refused: list[TP] = []
        for tp, fetched in records.items():
            if tp.topic not in feed.topics:
                rest[tp] = fetched
                continue
            where = (tp.topic, tp.partition)
            taken = feed.put(where, [to_record(r) for r in fetched], generation)
            if not taken and fetched and generation != feed.generation and feed.assigned(where):
                refused.append(tp)
        if refused:
            # A rebalance came during this fetch, and the partition is ours again: the records
            # may be the new assignment's, fetched from its committed offset, and the consumer
            # has moved past them. Read them again rather than leave a gap (the runner would
            # refill it, stream/processing/offsets.py, but only on the partition's next record).
            await self._thread.call_thread(self._seek_back, refused)
        return rest

    async def _seek_back(self, tps: list[TP]) -> None:
        """Seek ``tps`` to their committed offsets, or their beginning when none is committed."""
        consumer = self._thread._ensure_consumer()
        parts = [TopicPartition_(tp.topic, tp.partition) for tp in tps]
        committed = await consumer.seek_to_committed(*parts)
        # aiokafka seeks only to a committed offset above 0.
        unset = [tp for tp, offset in committed.items() if not offset]
        if unset:
            await self._seek_to_beginning(unset)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's seek to the committed offsets, then the input partitions without one to their
        beginning.

        Faust seeks back so after dropping a fetch (its flow stopped: a rebalance, a recovery)
        and after each assignment, but aiokafka seeks only to a committed offset above 0, so a
        partition never committed stayed past the dropped records. When they were the whole
        partition (a 1,000-customer log's touchpoints fit one fetch), no later record came to
        reveal the gap and the partition was never read (CI, 2026-12-07: the chaos test's
        broker outage, 102 orders credited without their touches).
        """
        committed = await super().seek_to_committed()
        never = [
            tp for tp, offset in committed.items() if not offset and tp.topic in self.feed.topics
        ]
        if never:
            await self._thread.call_thread(self._seek_to_beginning, never)
        return committed

    async def _seek_to_beginning(self, tps: Sequence[Any]) -> None:
        """Seek ``tps`` (still assigned) to their first offset, as an explicit position.

        Not aiokafka's ``seek_to_beginning``: it leaves the position unset until the next fetch
        resolves it, and Faust's slow-processing check reads the position of every assigned
        partition (an AssertionError there stopped a worker in the real-broker suite).
        """
        consumer = self._thread._ensure_consumer()
        parts = [TopicPartition_(tp.topic, tp.partition) for tp in tps]
        starts = await consumer.beginning_offsets(parts)
        assigned = consumer.assignment()
        for tp, offset in starts.items():
            if tp in assigned:  # a rebalance may have come meanwhile
                consumer.seek(tp, offset)

    async def wait_empty(self) -> None:
        """Faust's wait for the work in hand (stop, rebalance): hold the feed, end its batch."""
        # Faust's own wait sees no input record unacknowledged (none goes through its streams);
        # without this a stop would close the tables under a batch in hand.
        self.feed.hold()
        await self.feed.wait_idle()
        await super().wait_empty()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Drop the feed's records of ``revoked`` and let the batch in hand end, then Faust's."""
        self.feed.revoke((tp.topic, tp.partition) for tp in revoked)
        # The equivalent of Faust's stream_wait_empty: the batch in hand is sent and committed
        # (or the process exits, committing nothing) before the partitions go, so the next
        # owner finds it either not started or fully written.
        await self.feed.wait_idle()
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        """Accept the input records of ``assigned`` (before Faust may fetch them), then Faust's."""
        self.feed.assign((tp.topic, tp.partition) for tp in assigned)
        await super().on_partitions_assigned(assigned, generation_id)

    def note_committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record offsets the worker's transaction committed, as Faust does after a commit.

        Faust commits nothing of the input partitions itself (no input record is acknowledged
        through its streams); recorded, its positions and slow-processing checks see them
        progressing.
        """
        assignment = self.assignment()
        tps = {TP(t, p): o for (t, p), o in offsets.items() if TP(t, p) in assignment}
        if not tps:
            return
        self._committed_offset.update(tps)
        now = time.monotonic()
        self._thread.tp_last_committed_at.update(dict.fromkeys(tps, now))
        self._mark_processing(tps, now)
        self.app.monitor.on_tp_commit(tps)

    async def commit_consumed(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit ``offsets`` to the consumer group (partitions still assigned only)."""
        tps = {TP(t, p): o for (t, p), o in offsets.items()}
        if not tps:
            return False
        self._mark_processing(tps, time.monotonic())
        # Faust's own commit step: drops revoked partitions, flushes its producer, commits and
        # records the committed offsets.
        return await self._commit_offsets(tps)

    def _mark_processing(self, tps: Iterable[TP], now: float) -> None:
        # Faust's slow-processing check reads when a stream last took an event of a partition.
        monitor = self.app.monitor
        if monitor is not None:
            monitor.stream_inbound_time.update(dict.fromkeys(tps, now))


class FeedTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the consumer above; set by ``use_input_feed``."""

    Consumer = FeedConsumer
    feed: InputFeed
    read_committed: bool = False


def use_input_feed(
    app: Any,
    feed: InputFeed,
    *,
    read_committed: bool,
    transaction_wait_s: float = 60.0,
    kafka: KafkaSettings | None = None,
    fetch_max_wait_ms: int,
) -> None:
    """Make ``app`` (before its topics are declared) hand its input records to ``feed``.

    A fetch waits at most ``fetch_max_wait_ms`` at the broker (stream/kafka/consumer_thread.py).

    With ``read_committed`` (exactly_once) the consumer reads ``read_committed`` and recovers
    the tables up to the changelogs' committed ends (stream/kafka/committed_reads.py).
    """
    InputConsumerThread.fetch_max_wait_ms = fetch_max_wait_ms
    if read_committed:
        ReadCommittedConsumerThread.transaction_wait_s = transaction_wait_s
        ReadCommittedConsumerThread.kafka = kafka or KafkaSettings()
    transport = FeedTransport(app.conf.broker_consumer, app)
    transport.feed = feed
    transport.read_committed = read_committed
    app.transport = transport
