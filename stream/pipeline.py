"""What a worker runs: the Faust app, its topics and tables, and the batch runner over them.

Built from settings; the agents, timers and web views (``stream.worker``, ``stream.api``)
register themselves on ``pipeline.app`` and use its declared fields only.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.types import TopicT

from attribution.journeys import JourneyRules
from attribution.models.options import ModelOptions
from crm_attribution.settings.typed import Settings
from stream.kafka.codecs import raw_key, raw_value, table_json
from stream.kafka.feed import FeedConsumer, InputFeed, use_input_feed
from stream.kafka.gaps import GapReader
from stream.kafka.outgoing import Outgoing
from stream.kafka.partitioning import key_partition
from stream.kafka.positions import ConsumerPositions
from stream.kafka.security import faust_args
from stream.kafka.ticks import TickSender
from stream.kafka.transactions import GroupMetadata, TransactionalProducer, worker_id
from stream.ops.metrics import WorkerMetrics
from stream.processing import aggregate_keys, customer_record
from stream.processing.context import Context
from stream.processing.runner import BatchRunner
from stream.processing.write_back import WriteBack
from stream.stores import FaustTableStore
from stream.topics import TopicNames
from stream.types import MarkovSolution
from stream.versioned_cache import VersionedCache

# Record batches of the worker's own sends (stream.kafka.outgoing): a few per partition and
# batch of events, well under the broker's default message.max.bytes (1 MiB).
RECORD_BATCH_BYTES = 512 * 1024

# How many batches of input records the feed holds before the consumer stops fetching them.
FEED_BATCHES = 4

# How old the consumer's cluster metadata may get before aiokafka asks again (see the app).
METADATA_MAX_AGE_MS = 10_000


@dataclass(frozen=True)
class Topics:
    """The Faust topics the pipeline reads (it writes through stream.kafka.outgoing)."""

    touchpoints: TopicT
    purchases: TopicT
    costs: TopicT
    assignments: TopicT
    ticks: TopicT
    # One agent reads every input topic (and the expiry ticks) so that Faust assigns
    # partition P of all of them to the same worker: aggregates are kept per partition.
    inputs: TopicT


def rocksdb_options(settings: Settings) -> dict[str, Any] | None:
    """Faust's RocksDB options from the worker settings (``None`` for the memory store)."""
    worker = settings.worker
    if not worker.store.startswith("rocksdb://"):
        return None
    mb = 1024 * 1024
    # A fresh dict per table: Faust's store pops keys ("driver") from the one it is given.
    return {
        # The `rocksdb` extra's binding (stream.stores writes its batches); Faust would take
        # python-rocksdb instead if only that were installed.
        "driver": "rocksdict",
        "block_cache_size": int(worker.rocksdb_block_cache_mb * mb),
        "write_buffer_size": int(worker.rocksdb_write_buffer_mb * mb),
        "max_write_buffer_number": 2,
    }


class Pipeline:
    """Everything a worker runs, built from settings."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        *,
        web_port: int | None = None,
        data_dir: str | None = None,
        tick_seconds: float = 5.0,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.tick_seconds = tick_seconds
        self.partitions = settings.topics.partitions
        self.topic_names = TopicNames.from_settings(settings)
        self.metrics = WorkerMetrics()
        worker = settings.worker
        datadir = data_dir or worker.data_dir or tempfile.mkdtemp(prefix="crm-attribution-")
        self.app = faust.App(
            worker.app_id,
            broker=f"kafka://{bootstrap}",
            store=worker.store,
            # Faust's own exactly_once crashes on table writes (faust-streaming issue 440):
            # the worker makes the transactions itself (self.transactions below).
            processing_guarantee="at_least_once",
            datadir=str(Path(datadir)),
            topic_partitions=self.partitions,
            topic_replication_factor=settings.topics.replication_factor,
            topic_allow_declare=True,
            web_host=worker.web_host,
            web_port=worker.web_port if web_port is None else web_port,
            web_enabled=True,
            # Faust's own pages (/router, /table/{name}/{key}, /graph, statistics) would show
            # the cluster and any table entry: the API serves what analysts need, behind its
            # token (stream/api/access.py).
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
            web_metrics_enabled=False,
            key_serializer="raw",
            value_serializer="raw",
            # A rebalance or stop waits for any event in hand. The input records (ticks too)
            # come through self.feed, whose batch in hand FeedConsumer.wait_empty waits for:
            # without that, a tick still writing after the pre-revoke flush could leave the
            # next owner a changelog with half of that tick (a Markov mismatch in the restart
            # test).
            stream_wait_empty=True,
            table_standby_replicas=0,
            # The group leader assigns from its consumer's metadata, which aiokafka refreshes
            # every 5 minutes by default. Metadata fetched while the broker was away or before
            # it listed a new topic left topics out of the assignment (Faust's "Ignoring
            # missing topic"): a table never recovered, or nothing assigned at all. Refreshed
            # this often, the leader sees the topics within seconds and aiokafka rebalances.
            consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
            # A draining worker holds about one fetch of each input partition as records.
            consumer_max_fetch_size=worker.fetch_max_kb_per_partition * 1024,
            broker_commit_every=1000,
            broker_commit_interval=1.0,
            producer_linger=0.005,
            producer_max_batch_size=RECORD_BATCH_BYTES,
            # TLS and SASL of Faust's consumer and producer (through which the batches of
            # stream.kafka.outgoing go too), from the [kafka] settings.
            **faust_args(settings.kafka),
        )
        self.exactly_once = worker.processing_guarantee == "exactly_once"
        # The input records go from the consumer to this feed as lists of records, not through
        # Faust's streams; it holds a few batches, then the consumer stops fetching them.
        self.feed = InputFeed(self.topic_names.inputs(), FEED_BATCHES * worker.batch_events)
        # Before any topic is declared: the transport is made on first use. With exactly_once
        # the consumer reads read_committed (stream/kafka/committed_reads.py).
        use_input_feed(
            self.app,
            self.feed,
            read_committed=self.exactly_once,
            transaction_wait_s=2 * worker.transaction_timeout_seconds,
            kafka=settings.kafka,
            fetch_max_wait_ms=worker.fetch_max_wait_ms,
        )
        self.topics = self._topics()
        # Customer keys are raw bytes, exactly as producers key the input topics. A customer's
        # changelog partition is the partition its events arrive on, whatever partitioner the
        # producer used, so that the worker owning that partition recovers its state.
        # Values are the bytes of stream.processing.customer_record, raw in the changelog too.
        self.customers_table = self.app.Table(
            "customers",
            default=None,
            partitions=self.partitions,
            key_type=bytes,
            value_type=bytes,
            options=rocksdb_options(settings),
        )
        # Aggregate keys carry their partition in the key; they are never routed.
        self.aggregates_table = self.app.Table(
            "aggregates",
            default=None,
            partitions=self.partitions,
            key_type=str,
            options=rocksdb_options(settings),
        )
        self.customers_store = FaustTableStore(lambda: self.customers_table.data)
        self.aggregates_store = FaustTableStore(lambda: self.aggregates_table.data)
        # Processing reads and writes through per-key write buffers, sent after each batch.
        self.customers = WriteBack(self.customers_store, self.customer_partition)
        self.aggregates = WriteBack(
            self.aggregates_store, lambda key, value: aggregate_keys.partition_of(key)
        )
        # Changelog offsets Kafka acknowledged in the batch in hand, recorded once the stores
        # hold the values (a RocksDB store then reads only what came after on recovery).
        self._delivered: list[tuple[FaustTableStore, Any, int]] = []
        # One transaction per batch (exactly_once): the transactional id is kept in the data
        # directory, so a worker restarted on it aborts its killed predecessor's transaction.
        self.transactions = (
            TransactionalProducer(
                bootstrap,
                f"{worker.app_id}-{worker_id(datadir)}",
                self.group_metadata,
                max_batch_size=RECORD_BATCH_BYTES,
                transaction_timeout_ms=int(worker.transaction_timeout_seconds * 1000),
                kafka=settings.kafka,
            )
            if self.exactly_once
            else None
        )
        # The messages of the batch in hand (changelogs, records, dead letters), sent together.
        self.outgoing = Outgoing(self._kafka_producer, self.transactions)
        self.gap_reader = GapReader(bootstrap, settings.kafka)
        self.tick_sender = TickSender(bootstrap, settings.kafka)
        # The latest Markov solution (stream.worker.timers) and analytics snapshot.
        self.markov_solution: MarkovSolution | None = None
        # Headers a worker's requests to the others carry (the shared secret; stream.api.views).
        self.internal_headers: dict[str, str] = {}
        self.analytics_snapshot: dict[str, Any] | None = None
        # The version of what this worker's tables hold (stream.api.shares.local_version):
        # this process, and how many batches changed what its stores hold. Bumped only once the
        # stores hold a batch's values, so an answer read at a version is never older than it.
        self.instance = uuid.uuid4().hex
        self.changes_stored = 0
        # /analytics answers per group data version and query, rebuilt within a share of the
        # worker's time (stream.api.queries).
        self.analytics_cache = VersionedCache(share=settings.analytics.rebuild_cpu_share)
        self.ctx = Context.from_settings(settings, self.topic_names.kinds())
        self.runner = BatchRunner(
            self.ctx,
            self.customers,
            self.aggregates,
            customer_topics=self.topic_names.customer_topics(),
            customer_partition=self.customer_partition,
            gaps=self.gap_reader,
            positions=ConsumerPositions(lambda: self.app.consumer),
            backlog_records=worker.backlog_records,
            markov_effects=self._markov_effects,
        )

    @property
    def rules(self) -> JourneyRules:
        """The journey rules of this pipeline."""
        return self.ctx.rules

    @property
    def options(self) -> ModelOptions:
        """The models' options."""
        return self.ctx.options

    @property
    def models(self) -> list[str]:
        """The models this pipeline credits."""
        return self.ctx.models

    def customer_partition(self, key: bytes, value: Any) -> int:
        """The input partition a stored customer's events arrive on.

        Entries written before the partition was recorded fall back to the Java client's
        murmur2 of the key, which is what the workers assumed then.
        """
        partition = customer_record.partition(value)
        return key_partition(key, self.partitions) if partition is None else partition

    def _markov_effects(self) -> dict[str, Any] | None:
        solution = self.markov_solution
        return None if solution is None else dict(solution.effects)

    def _topics(self) -> Topics:
        names = self.topic_names

        def raw(*topics: str) -> TopicT:
            return self.app.topic(
                *topics, key_serializer="raw", value_serializer="raw", partitions=self.partitions
            )

        return Topics(
            touchpoints=raw(names.touchpoints),
            purchases=raw(names.purchases),
            costs=raw(names.costs),
            assignments=raw(names.assignments),
            ticks=raw(names.ticks),
            inputs=raw(*names.inputs()),
        )

    def input_offsets(self) -> FeedConsumer:
        """The consumer the agent commits or reports its batches' offsets to."""
        consumer = self.app.consumer
        assert isinstance(consumer, FeedConsumer)
        return consumer

    def group_metadata(self) -> GroupMetadata:
        """The worker consumer's group id, generation and member id now (for fencing)."""
        consumer = self.app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
        coordinator = consumer._coordinator
        return GroupMetadata(
            self.app.conf.id,
            coordinator.generation,
            coordinator.member_id,
            self.app.conf.consumer_group_instance_id,
        )

    def _kafka_producer(self) -> Any:
        # The aiokafka producer inside Faust's (public record-batch API; Faust has no wrapper).
        return self.app.producer._ensure_producer()  # type: ignore[attr-defined]

    def queue_table_writes(self) -> None:
        """Put the held writes of both tables into the outgoing messages (after each batch)."""
        self.customers.flush(
            self._changelog_sender(self.customers_table, self.customers_store, raw_key, raw_value)
        )
        self.aggregates.flush(
            self._changelog_sender(
                self.aggregates_table, self.aggregates_store, table_json, table_json
            )
        )

    def store_table_writes(self) -> None:
        """Write the sent values into the table stores (once Kafka has acknowledged them)."""
        # A customer is written only when one of its events or its clock changed it; the
        # aggregates are rewritten by every tick, mostly unchanged: compared to the store.
        changed = bool(self.customers.unstored) or self.aggregates.changes_unstored(
            aggregate_keys.is_bookkeeping
        )
        self.customers.store_sent()
        self.aggregates.store_sent()
        if changed:
            self.changes_stored += 1
        delivered, self._delivered = self._delivered, []
        for store, tp, offset in delivered:
            store.set_persisted_offset(tp, offset)

    def _changelog_sender(
        self,
        table: Any,
        store: FaustTableStore,
        encode_key: Callable[[Any], bytes],
        encode_value: Callable[[Any], bytes],
    ) -> Callable[[int, Any, Any], None]:
        topic = table.changelog_topic.get_topic_name()
        outgoing = self.outgoing
        delivered = self._delivered

        # Faust's changelog callback does this for its own writes: a RocksDB store keeps the
        # newest changelog offset it holds, so that recovery reads only what came after.
        def persisted(tp: Any, offset: int) -> None:
            delivered.append((store, tp, offset))

        def send(partition: int, key: Any, value: Any) -> None:
            outgoing.add(topic, partition, encode_key(key), encode_value(value), persisted)

        return send

    def assigned_partitions(self) -> set[int]:
        """Partitions of the customer topics this worker actively owns now."""
        names = set(self.topic_names.customer_topics().values())
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:  # noqa: BLE001 - not assigned yet
            return set()
        return {tp.partition for tp in actives if tp.topic in names}
