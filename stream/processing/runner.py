"""The batch runner: one batch of input records in, table writes and output records out.

A worker hands it each batch Faust takes from the input topics; :mod:`stream.testing` hands it
lists of records. Per batch, in order:

1. each record: an event first has any offsets before it that the partition never recorded
   read and processed (:meth:`fill_gap`), then is inserted into its customer's state
   (:mod:`stream.processing.records`); a tick rebuilds the journeys of the customers touched
   so far, then expires the partition's due open journeys;
2. where the batch's customer topic partitions start and end is learned once per assignment,
   and which of them lag (:mod:`stream.processing.backlog`);
3. the customers whose held journeys the credit horizon now reaches join those touched, and
   all their journeys are rebuilt with one call of the journey kernel
   (:mod:`stream.processing.batch_customers`), each customer's record written once;
4. every journey change of the batch is credited at once (:mod:`stream.processing.crediting`).

The tables are mutable mappings: Faust tables behind write-back buffers in a worker, dicts in
tests. The runner imports nothing of Faust or Kafka.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.processing.aggregates import note_event, note_tick, stored_watermark
from stream.processing.backlog import Backlog
from stream.processing.batch_customers import BatchCustomers
from stream.processing.context import Context
from stream.processing.crediting import PendingChanges
from stream.processing.offsets import OffsetBook, missing_range
from stream.processing.outcome import Outcome
from stream.processing.partition_indexes import PartitionIndexes
from stream.processing.records import process_record
from stream.processing.ticks import tick_as_of
from stream.topics import TICKS
from stream.types import GapSource, InputPositions, Record

log = logging.getLogger("crm_attribution.stream")


@dataclass
class BatchResult:
    """What one batch produced, in processing order, and what to count."""

    outcomes: list[Outcome] = field(default_factory=list)
    events_in: Counter[str] = field(default_factory=Counter)  # records per input topic
    refilled: Counter[str] = field(default_factory=Counter)  # read directly, per topic
    emitted: int = 0
    retracted: int = 0
    # Broker timestamps of the purchases credited in this batch (latency metric).
    purchase_timestamps: list[float] = field(default_factory=list)
    # Customer records the batch decoded, and customers whose journeys it rebuilt (each at
    # most once per flush: a batch flushes at its end and before each expiry tick).
    customers_decoded: int = 0
    journeys_rebuilt: int = 0

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-letter records, in order."""
        return [o.dead_letter for o in self.outcomes if o.dead_letter is not None]

    def attribution_records(self) -> list[dict[str, Any]]:
        """The attribution records (retractions included), in order."""
        return [record for o in self.outcomes for record in o.attribution_records]

    def too_late(self) -> int:
        """How many events arrived too late to be placed."""
        return sum(1 for o in self.outcomes if o.too_late)


class BatchRunner:
    """Processes batches of records against the customers and aggregates tables."""

    def __init__(
        self,
        ctx: Context,
        customers: MutableMapping[bytes, Any],
        aggregates: MutableMapping[str, Any],
        *,
        customer_topics: Mapping[str, str],
        customer_partition: Callable[[bytes, Any], int],
        gaps: GapSource,
        positions: InputPositions | None = None,
        backlog_records: int = 500,
        markov_effects: Callable[[], Mapping[str, Any] | None] = lambda: None,
    ) -> None:
        self.ctx = ctx
        self.customers = customers
        self.aggregates = aggregates
        self.gaps = gaps
        self.markov_effects = markov_effects
        self.offsets = OffsetBook()
        self.indexes = PartitionIndexes(customers, customer_partition)
        self.backlog = Backlog(customer_topics, positions, backlog_records)
        self.pending = PendingChanges()
        self.batch = BatchCustomers(ctx, customers, self.indexes, self.pending)

    async def process(self, batch: Sequence[Record]) -> BatchResult:
        """Process a batch's records in order and credit every journey change they make."""
        result = BatchResult()
        decoded, rebuilt = self.batch.decoded, self.batch.rebuilt
        purchases: list[tuple[Outcome, float]] = []
        # A batch may flush before its end: a tick (the expiry reads the indexes) and a refund
        # (it reads the journeys rebuilt so far) rebuild the customers read so far. Those
        # flushes credit with what is known of the backlog, so it is learnt first, for every
        # partition of the batch. Marked only at the batch's end, a worker's first batch
        # credited every order read ahead of its touches whenever it held a tick or a refund;
        # a batch of 2,000 nearly always does, and the real-broker backlog test re-credited
        # 0.9-6.0% of its journeys.
        kinds = self.ctx.topic_kinds
        partitions = {r.partition for r in batch if kinds[r.topic] != TICKS}
        await self.learn_backlog(partitions)
        for record in batch:
            if kinds[record.topic] == TICKS:
                result.outcomes += self.batch.flush()
                result.outcomes += self.expire(record.partition, tick_as_of(record.value))
                continue
            await self.fill_gap(record, result)
            outcome = self.apply(record, result)
            if outcome.purchase and record.timestamp:
                purchases.append((outcome, record.timestamp))
        await self.learn_backlog(partitions)
        self.release_held()
        result.outcomes += self.batch.flush()
        for partition in partitions:
            # With the batch's writes: a partition's next owner starts where this batch ended,
            # not at the last tick (it read again up to 5 s of records, or the whole backlog
            # read before a new worker's first tick: 10,336 touchpoints in the two-worker test).
            self.offsets.persist(self.aggregates, partition)
        result.purchase_timestamps = [ts for outcome, ts in purchases if not outcome.held]
        result.emitted, result.retracted = self.pending.counts()
        self.pending.apply(self.ctx, self.aggregates, self.markov_effects())
        result.customers_decoded = self.batch.decoded - decoded
        result.journeys_rebuilt = self.batch.rebuilt - rebuilt
        return result

    async def learn_backlog(self, partitions: set[int]) -> None:
        """Mark which customer topics of ``partitions`` (and those marked before) lag now."""
        await self.backlog.learn(partitions, self.offsets.next_offsets)
        self.backlog.mark(self.ctx.lagging, partitions, self.offsets.next_offsets)

    def apply(self, record: Record, result: BatchResult) -> Outcome:
        """Apply one input event record to its customer's state, note its offset."""
        result.events_in[record.topic] += 1
        outcome = process_record(self.ctx, self.batch, self.aggregates, record)
        result.outcomes.append(outcome)
        self.offsets.processed(record.topic, record.partition, record.offset)
        return outcome

    async def fill_gap(self, record: Record, result: BatchResult) -> None:
        """Read and process the offsets before ``record`` that its partition never recorded."""
        topic, partition = record.topic, record.partition
        expected = self.offsets.expected(self.aggregates, topic, partition)
        gap = missing_range(expected, record.offset)
        if gap is None:
            return
        start, end = gap
        log.info(
            "%s[%d]: offsets %d..%d were not recorded as processed; reading them directly",
            topic,
            partition,
            start,
            end - 1,
        )
        result.refilled[topic] += end - start
        async for missed in self.gaps.read(topic, partition, start, end):
            self.apply(missed, result)

    def expire(self, partition: int, as_of_ms: int) -> list[Outcome]:
        """An expiry tick: advance the clock of the partition's customers whose journey is due."""
        ctx = self.ctx
        stored = stored_watermark(self.aggregates, partition)
        ctx.note_partition_time(partition, stored)  # after recovery: start from the stored one
        for customer_id in self.indexes.due_to_expire(partition, as_of_ms, ctx.rules):
            self.batch.advance(customer_id, partition, as_of_ms)
        outcomes = self.batch.flush()
        note_tick(self.aggregates, partition, as_of_ms)
        note_event(self.aggregates, partition, ctx.watermarks.get(partition))
        self.offsets.persist(self.aggregates, partition)
        return outcomes

    def release_held(self) -> None:
        """Have the batch rebuild the customers whose held journeys the horizon reaches now."""
        held = self.indexes.held
        for partition in held.partitions():
            for customer_id in held.due(partition, self.ctx.credit_through(partition)):
                self.batch.release(customer_id, partition)

    def watermark(self, partition: int) -> int:
        """The partition's newest event time as processed so far (0: none)."""
        return self.ctx.watermarks.get(partition, 0)

    def revoked(self, partition: int) -> None:
        """The partition went to another worker: forget what memory holds of it."""
        self.indexes.forget(partition)
        self.backlog.forget(partition)
        self.ctx.forget_partition(partition)

    def assigned(self, partition: int) -> None:
        """The partition was (re)assigned: its tables are the truth, not memory."""
        self.revoked(partition)
        self.offsets.forget(partition)
