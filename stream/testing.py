"""Run the stream's whole dataflow over a list of records, without a broker or Faust.

The same batch runner a worker runs (:mod:`stream.processing.runner`) drains an in-memory log
of the input topics; the tables are dicts, and the answers are built by the same functions the
HTTP API uses::

    from stream.testing import TestingLog, run_main

    log = TestingLog(settings)
    log.produce_lines(lines)            # keyed and partitioned as `crm-attribution produce` does
    run = run_main(log, settings)       # every partition drained in batches, then expired
    assert run.attribution() == batch_answer
    run.analytics(); run.dead_letters(); run.attribution_records()

``run_main`` takes the order in which a consumer delivers the records (``arrival_order`` by
default, ``topic_order`` for a backlog whose purchases are read before its touchpoints), the
batch size, whether the runner learns where partitions end (then it holds journeys while a
topic lags, as a worker does), and how often every partition is assigned anew (the memory
indexes are then rebuilt from the tables, as after a rebalance). The log partitions keys with
the Java client's murmur2 by default, or with ``crc32_partition`` as librdkafka does.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from attribution.events import InvalidRecord, parse_record_bytes
from crm_attribution.settings.typed import Settings
from stream.api.merge_analytics import report_from_shares
from stream.api.merge_attribution import attribution_object, credits_with_intervals
from stream.kafka.partitioning import key_partition
from stream.ops.gc_tuning import collect_between_batches
from stream.processing import customer_record
from stream.processing.aggregates import (
    CREDIT_INTERVAL_KINDS,
    Merged,
    items_by_partition,
    merge_partitions,
    stored_journeys,
)
from stream.processing.analytics_shares import partition_shares
from stream.processing.context import Context
from stream.processing.runner import BatchResult, BatchRunner
from stream.processing.ticks import tick_value
from stream.topics import TopicNames, destinations, raw_route
from stream.types import Record, TopicPartition

__all__ = [
    "TestingLog",
    "TestingRun",
    "arrival_order",
    "crc32_partition",
    "run",
    "run_main",
    "stored_partition",
    "topic_order",
]


def crc32_partition(key: bytes, partitions: int) -> int:
    """The partition librdkafka's default partitioner gives a key (confluent-kafka, Go, .NET)."""
    return zlib.crc32(key) % partitions


def stored_partition(key: bytes, value: Any) -> int:
    """The partition a customer's events arrived on, as its record keeps it."""
    partition = customer_record.partition(value)
    if partition is None:
        raise ValueError(f"customer {key!r} has no recorded partition")
    return partition


class TestingLog:
    """The input topics in memory: per topic partition, its records in offset order.

    Implements :class:`stream.types.GapSource` and :class:`stream.types.InputPositions`.
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        settings: Settings,
        partitioner: Callable[[bytes, int], int] = key_partition,
    ) -> None:
        self.topics = TopicNames.from_settings(settings)
        self.partitions = settings.topics.partitions
        self.partitioner = partitioner
        self.records: dict[TopicPartition, list[Record]] = {}
        self.produced: list[Record] = []  # every record, in the order it was produced
        # The group's committed offsets, as a test sets them (none: the group never committed).
        self.committed_offsets: dict[TopicPartition, int] = {}
        self._spread = 0

    def produce(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> Record:
        """Append a record; its partition comes from the key (key-less: round robin)."""
        if partition is None:
            if key is None:
                partition, self._spread = self._spread % self.partitions, self._spread + 1
            else:
                partition = self.partitioner(key, self.partitions)
        log = self.records.setdefault((topic, partition), [])
        record = Record(topic, partition, len(log), key, value, float(len(self.produced)))
        log.append(record)
        self.produced.append(record)
        return record

    def produce_lines(self, lines: Iterable[str], settings: Settings) -> None:
        """Send JSON lines to their topics as ``crm-attribution produce --send-invalid`` does
        (a rate to every partition of the purchases and costs topics)."""
        for line in lines:
            where: list[tuple[str, bytes | None, int | None]]
            try:
                where = list(destinations(parse_record_bytes(line), settings))
            except InvalidRecord:
                where = [(*raw_route(line, settings), None)]
            for topic, key, partition in where:
                self.produce(topic, key, line.encode("utf-8"), partition)

    async def read(self, topic: str, partition: int, start: int, end: int) -> AsyncIterator[Record]:
        """The records with ``start <= offset < end``."""
        for record in self.records.get((topic, partition), [])[start:end]:
            yield record

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset after the partition's last record."""
        return len(self.records.get((topic, partition), []))

    def highwater(self, topic: str, partition: int) -> int | None:
        """The partition's end offset, as a consumer that fetched it knows it."""
        return self.end_offset(topic, partition)

    async def starts_and_ends(
        self, partitions: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Each partition starts at its committed offset (else 0) and ends after its last
        record."""
        starts = {tp: self.committed_offsets.get(tp, 0) for tp in partitions}
        return starts, {tp: self.end_offset(*tp) for tp in partitions}

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of the partition, as the test set it."""
        return self.committed_offsets.get((topic, partition))


def arrival_order(log: TestingLog) -> list[Record]:
    """The records in the order they were produced (a stream read as it is written)."""
    return list(log.produced)


def topic_order(*first: str) -> Callable[[TestingLog], list[Record]]:
    """The records of the ``first`` topics before all others (a backlog drained unevenly)."""

    def order(log: TestingLog) -> list[Record]:
        return sorted(log.produced, key=lambda r: r.topic not in first)

    return order


@dataclass
class TestingRun:
    """The tables and outputs after a run, and the answers the API would give for them."""

    __test__ = False

    settings: Settings
    ctx: Context
    customers: dict[bytes, Any]
    aggregates: dict[str, Any]
    results: list[BatchResult] = field(default_factory=list)

    def merged(self) -> Merged:
        """Every partition's aggregates summed."""
        partitions = set(range(self.settings.topics.partitions))
        return merge_partitions(items_by_partition(self.aggregates.items(), partitions))

    def attribution(self) -> dict[str, Any]:
        """What ``/attribution`` answers (the ``attribute --events --format json`` object)."""
        return attribution_object(self.merged(), self.ctx.models, self.ctx.options)

    def credits(self, ci: float, resamples: int = 200, seed: int = 0) -> dict[str, Any]:
        """What ``/credits?ci=...&resamples=...&seed=...`` answers (with
        ``attribution.credit_intervals`` on): all-time credits with bootstrap intervals."""
        partitions = set(range(self.settings.topics.partitions))
        items = items_by_partition(self.aggregates.items(), partitions, CREDIT_INTERVAL_KINDS)
        journeys = stored_journeys(i for share in items.values() for i in share.items())
        return credits_with_intervals(
            self.merged(), journeys, self.ctx.models, self.ctx.options, ci, resamples, seed
        )

    def analytics(
        self, customer_scores: bool = False, compare_days: float = 30.0
    ) -> dict[str, Any]:
        """What ``/analytics`` answers (the ``report --format json`` object)."""
        shares = partition_shares(
            self.customers.items(),
            self.aggregates.items(),
            set(range(self.settings.topics.partitions)),
            stored_partition,
            self.settings.business.base_currency,
        )
        return report_from_shares(
            shares,
            self.merged(),
            self.settings,
            self.ctx.models,
            self.ctx.options,
            customer_scores,
            compare_days,
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead-letter record sent."""
        return [letter for result in self.results for letter in result.dead_letters()]

    def attribution_records(self) -> list[dict[str, Any]]:
        """Every attribution record sent (retractions included)."""
        return [record for result in self.results for record in result.attribution_records()]

    def retracted(self) -> int:
        """Journeys retracted (credited, then changed by a later event)."""
        return sum(result.retracted for result in self.results)

    def customers_decoded(self) -> int:
        """Customer records decoded (a worker's ``crm_customer_records_decoded_total``)."""
        return sum(result.customers_decoded for result in self.results)

    def journeys_rebuilt(self) -> int:
        """Customers whose journeys were rebuilt (``crm_journey_rebuilds_total``)."""
        return sum(result.journeys_rebuilt for result in self.results)


async def run(
    log: TestingLog,
    settings: Settings,
    *,
    order: Callable[[TestingLog], Sequence[Record]] = arrival_order,
    batch_events: int | None = None,
    backlog_records: int | None = None,
    hold_backlog: bool = True,
    expire: bool = True,
    reassign_every: int | None = None,
) -> TestingRun:
    """Drain ``log`` through a batch runner; with ``expire``, tick every partition at the end
    with the newest event time, as the leader worker does; with ``reassign_every``, assign
    every partition anew after that many batches. ``batch_events`` and ``backlog_records``
    default to the settings' (``worker.*``)."""
    size = batch_events or settings.worker.batch_events
    names = log.topics
    ctx = Context.from_settings(settings, names.kinds())

    out = TestingRun(settings, ctx, {}, {})
    runner = BatchRunner(
        ctx,
        out.customers,
        out.aggregates,
        customer_topics=names.customer_topics(),
        customer_partition=stored_partition,
        gaps=log,
        positions=log if hold_backlog else None,
        backlog_records=backlog_records or settings.worker.backlog_records,
    )
    records = list(order(log))
    for number, start in enumerate(range(0, len(records), size), start=1):
        out.results.append(await runner.process(records[start : start + size]))
        collect_between_batches()  # as a worker does (stream.ops.gc_tuning)
        if reassign_every and number % reassign_every == 0:
            for partition in range(log.partitions):
                runner.assigned(partition)
    if expire and ctx.watermarks:
        as_of = max(ctx.watermarks.values())
        ticks = [
            Record(names.ticks, partition, 0, None, tick_value(as_of))
            for partition in range(log.partitions)
        ]
        out.results.append(await runner.process(ticks))
    return out


def run_main(
    log: TestingLog,
    settings: Settings,
    *,
    order: Callable[[TestingLog], Sequence[Record]] = arrival_order,
    batch_events: int | None = None,
    backlog_records: int | None = None,
    hold_backlog: bool = True,
    expire: bool = True,
    reassign_every: int | None = None,
) -> TestingRun:
    """:func:`run`, from synchronous code."""
    drained: list[TestingRun] = []

    async def drain() -> None:
        drained.append(
            await run(
                log,
                settings,
                order=order,
                batch_events=batch_events,
                backlog_records=backlog_records,
                hold_backlog=hold_backlog,
                expire=expire,
                reassign_every=reassign_every,
            )
        )

    # The run is handed over outside the main task's result: on Python 3.11 asyncio.run's
    # restoring of the SIGINT handler formats the finished main task with repr(), result
    # included, which for a large drain took seconds (1.6 s of a 14 s drain at 2,000 customers).
    asyncio.run(drain())
    return drained[0]
