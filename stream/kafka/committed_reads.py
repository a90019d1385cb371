"""Faust's consumer reading ``read_committed``, and table recovery that ends despite markers.

Faust sets ``isolation_level="read_committed"`` only with its own ``exactly_once``, whose
transactional producer crashes on table writes (faust-streaming 0.15.3, issue 440). The worker
runs Faust with ``at_least_once`` and makes its own transactions (stream/kafka/transactions.py),
so two things Faust does for ``exactly_once`` are done here instead:

1. The worker's consumer reads ``read_committed`` (``ReadCommittedConsumerThread``): table
   recovery never applies the writes of a batch whose transaction was aborted or never
   committed (a killed or fenced worker's).
2. The end of a changelog partition for recovery. Faust's recovery reads until it has seen the
   record at ``highwater - 1``. With transactions the last offset of a changelog partition is a
   commit marker, which a consumer never receives, so recovery would wait forever (Faust's own
   ``exactly_once`` works around it by polling the position after two 5 s timeouts). Here the
   highwater Faust gets for a changelog partition is one past its last committed *data* record,
   found by reading the partition's tail; and while a transaction of a previous owner is still
   open on it (a killed worker's, until the broker aborts it), recovery waits: the partition's
   committed end is not known before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.consumer_thread import InputConsumerThread
from stream.kafka.outgoing import SEND_FAILED_EXIT, exit_before_commit
from stream.kafka.security import aiokafka_args

# Offsets read back from a partition's end to find its last committed data record, at first
# (a batch's transaction is its records and one marker; an aborted batch may be thousands).
TAIL_WINDOW = 256

log = logging.getLogger("crm_attribution.stream")


async def committed_ends(
    committed: AIOKafkaConsumer,
    uncommitted: AIOKafkaConsumer,
    tps: Iterable[TopicPartition],
    wait_s: float,
) -> dict[TopicPartition, int]:
    """One past the last committed data record of each partition, once no transaction is open.

    ``committed`` and ``uncommitted`` are started, group-less consumers reading
    ``read_committed`` and ``read_uncommitted``. Raises TimeoutError if a transaction stays
    open on one of the partitions for ``wait_s``.
    """
    wanted = sorted(set(tps))
    deadline = time.monotonic() + wait_s
    while True:
        # The last stable offset stops at the first open transaction; the end does not.
        stable = await committed.end_offsets(wanted)
        high = await uncommitted.end_offsets(wanted)
        still_open = [tp for tp in wanted if high[tp] > stable[tp]]
        if not still_open:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"a transaction stayed open on {', '.join(map(str, still_open))} for {wait_s:.0f} s"
            )
        await asyncio.sleep(0.5)
    committed.assign(wanted)
    begins = await committed.beginning_offsets(wanted)
    ends = {tp: begins[tp] for tp in wanted if stable[tp] <= begins[tp]}
    pending = [tp for tp in wanted if tp not in ends]
    window = dict.fromkeys(pending, TAIL_WINDOW)
    while pending:
        last_data: dict[TopicPartition, int] = {}
        for tp in pending:
            committed.seek(tp, max(begins[tp], stable[tp] - window[tp]))
        unread = set(pending)
        while unread:
            batches = await committed.getmany(*unread, timeout_ms=1000)
            for tp, records in batches.items():
                if records:
                    last_data[tp] = max(last_data.get(tp, -1), records[-1].offset)
            unread = {tp for tp in unread if await committed.position(tp) < stable[tp]}
        widen = []
        for tp in pending:
            if tp in last_data:
                ends[tp] = last_data[tp] + 1
            elif stable[tp] - window[tp] <= begins[tp]:
                ends[tp] = begins[tp]  # markers and aborted records only
            else:
                window[tp] *= 8  # a large aborted batch at the end: look further back
                widen.append(tp)
        pending = widen
    return ends


class ReadCommittedConsumerThread(InputConsumerThread):
    """The worker's consumer thread, reading ``read_committed`` (see the module docstring)."""

    # Set by use_input_feed (stream/kafka/feed.py): how long recovery waits for a previous owner's
    # transaction to end, and the consumer settings of the tail reader.
    transaction_wait_s: float = 60.0
    kafka: KafkaSettings = KafkaSettings()

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes read_uncommitted unless its own exactly_once is on; the fetcher is
        # built from this attribute when the consumer starts.
        consumer._isolation_level = "read_committed"
        return consumer

    async def _highwaters(self, partitions: list[Any]) -> Mapping[Any, int]:
        try:
            return await self._committed_highwaters(partitions)
        except (KafkaError, TimeoutError) as error:
            # Faust's recovery calls this after a rebalance. Raised into Faust, the error
            # crashes its Recovery service and the worker ends with status 1 ("We experienced
            # a crash!"), which supervisors and the chaos harness cannot tell from a bug. It
            # comes from the broker (away longer than the request timeout, e.g. stopped during
            # a rebalance) or a transaction left open past the wait; no batch of the new
            # assignment has run, so exiting leaves nothing uncommitted behind, and the worker
            # restarted on its data directory recovers again.
            exit_before_commit(
                SEND_FAILED_EXIT,
                f"table recovery could not read the changelogs' committed ends from Kafka "
                f"({error!r})",
            )
            raise

    async def _committed_highwaters(self, partitions: list[Any]) -> Mapping[Any, int]:
        changelogs = self.app.tables.changelog_topics
        tables = [tp for tp in partitions if tp.topic in changelogs]
        ends: dict[Any, int] = dict(await super()._highwaters(partitions))
        if not tables:
            return ends
        consumer = self._ensure_consumer()
        readers = [
            AIOKafkaConsumer(
                bootstrap_servers=consumer._client._bootstrap_servers,
                enable_auto_commit=False,
                isolation_level=level,
                **aiokafka_args(self.kafka),
            )
            for level in ("read_committed", "read_uncommitted")
        ]
        try:
            for reader in readers:
                await reader.start()
            started = time.monotonic()
            found = await committed_ends(
                readers[0],
                readers[1],
                [TopicPartition(tp.topic, tp.partition) for tp in tables],
                self.transaction_wait_s,
            )
            waited = time.monotonic() - started
            if waited > 2.0:
                log.info("waited %.1f s for open transactions on the changelogs to end", waited)
        finally:
            for reader in readers:
                await reader.stop()
        for tp in tables:
            ends[tp] = found[TopicPartition(tp.topic, tp.partition)]
        return ends
