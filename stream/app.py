"""The Faust application: topics, tables and the settings they come from."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faust

from attribution.journeys import JourneyRules
from attribution.models.options import ModelOptions
from config.settings import Settings
from stream.aggregates import aggregate_partition
from stream.codecs import raw_key, table_json
from stream.held import HeldIndex
from stream.metrics import WorkerMetrics
from stream.outgoing import Outgoing
from stream.partitioning import key_partition
from stream.write_back import WriteBack

TICKS_SUFFIX = "ticks"
# Record batches of the worker's own sends (stream.outgoing): a few per partition and batch of
# events, well under the broker's default message.max.bytes (1 MiB).
RECORD_BATCH_BYTES = 512 * 1024


@dataclass
class Topics:
    """The Faust topic objects the pipeline reads (it writes through stream.outgoing)."""

    touchpoints: Any
    purchases: Any
    costs: Any
    assignments: Any
    ticks: Any
    inputs: Any


class Pipeline:
    """Everything a worker runs, built from settings (agents and views attach themselves)."""

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
        attr = settings.attribution
        self.rules = JourneyRules.from_days(
            attr.lookback_days, attr.timeout_days, attr.allowed_lateness_hours
        )
        self.options = ModelOptions(
            attr.markov_order, None, attr.direct_channel, attr.half_life_days
        )
        self.models = list(attr.models)
        self.retention_ms = max(24 * 3_600_000, self.rules.allowed_lateness_ms)
        self.tick_seconds = tick_seconds
        self.partitions = settings.topics.partitions
        self.metrics = WorkerMetrics()
        worker = settings.worker
        datadir = data_dir or worker.data_dir or tempfile.mkdtemp(prefix="crm-attribution-")
        self.app = faust.App(
            worker.app_id,
            broker=f"kafka://{bootstrap}",
            store=worker.store,
            processing_guarantee=worker.processing_guarantee,
            datadir=str(Path(datadir)),
            topic_partitions=self.partitions,
            topic_replication_factor=1,
            topic_allow_declare=True,
            web_host=worker.web_host,
            web_port=worker.web_port if web_port is None else web_port,
            web_enabled=True,
            key_serializer="raw",
            value_serializer="raw",
            # A rebalance or stop waits for the event in hand: without it, a tick still
            # writing after the pre-revoke flush could leave the next owner a changelog with
            # half of that tick (seen as a Markov mismatch in the restart test).
            stream_wait_empty=True,
            table_standby_replicas=0,
            broker_commit_every=1000,
            broker_commit_interval=1.0,
            producer_linger=0.005,
            producer_max_batch_size=RECORD_BATCH_BYTES,
        )
        self.topics = self._topics()
        # Customer keys are raw bytes, exactly as producers key the input topics, so that
        # table_route sends a customer's query to the worker that owns its partition.
        self.customers_table = self.app.Table(
            "customers", default=None, partitions=self.partitions, key_type=bytes
        )
        # Aggregate keys carry their partition in the key; they are never routed.
        self.aggregates_table = self.app.Table(
            "aggregates", default=None, partitions=self.partitions, key_type=str
        )
        # Processing reads and writes through per-key write buffers, sent after each batch.
        self.customers = WriteBack(
            self.customers_table, partial(key_partition, partitions=self.partitions)
        )
        self.aggregates = WriteBack(self.aggregates_table, aggregate_partition)
        # The messages of the batch in hand (changelogs, records, dead letters), sent together.
        self.outgoing = Outgoing(self._kafka_producer)
        # customer id -> start of its open journey, per partition (rebuilt after recovery).
        self.open_index: dict[int, dict[str, int]] = {}
        # Customers whose journeys wait for a lagging input topic (rebuilt after recovery).
        self.held = HeldIndex()
        self.markov_solution: Any = None
        self.markov_solved_at: float | None = None

    def _topics(self) -> Topics:
        t = self.settings.topics
        app = self.app

        def raw(*names: str, **extra: Any) -> Any:
            return app.topic(
                *names,
                key_serializer="raw",
                value_serializer="raw",
                partitions=self.partitions,
                **extra,
            )

        ticks = f"{self.settings.worker.app_id}-{TICKS_SUFFIX}"
        return Topics(
            touchpoints=raw(t.touchpoints),
            purchases=raw(t.purchases),
            costs=raw(t.costs),
            assignments=raw(t.assignments),
            ticks=raw(ticks),
            # One agent reads every input topic (and the expiry ticks) so that Faust assigns
            # partition P of all of them to the same worker: aggregates are kept per partition.
            inputs=raw(t.touchpoints, t.purchases, t.costs, t.assignments, ticks),
        )

    def _kafka_producer(self) -> Any:
        # The aiokafka producer inside Faust's (public record-batch API; Faust has no wrapper).
        return self.app.producer._ensure_producer()  # type: ignore[attr-defined]

    def queue_table_writes(self) -> None:
        """Put the held writes of both tables into the outgoing messages (after each batch)."""
        self.customers.flush(self._changelog_sender(self.customers_table, raw_key))
        self.aggregates.flush(self._changelog_sender(self.aggregates_table, table_json))

    def store_table_writes(self) -> None:
        """Write the sent values into the table stores (once Kafka has acknowledged them)."""
        self.customers.store_sent()
        self.aggregates.store_sent()

    def _changelog_sender(self, table: Any, encode_key: Any) -> Any:
        topic = table.changelog_topic.get_topic_name()
        outgoing = self.outgoing
        # Faust's changelog callback does this for its own writes: a RocksDB store keeps the
        # newest changelog offset it holds, so that recovery reads only what came after.
        persisted = table.data.set_persisted_offset

        def send(partition: int, key: Any, value: Any) -> None:
            outgoing.add(topic, partition, encode_key(key), table_json(value), persisted)

        return send

    def assigned_partitions(self) -> set[int]:
        """Partitions of the customer topics this worker actively owns now."""
        names = {self.settings.topics.touchpoints, self.settings.topics.purchases}
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:  # noqa: BLE001 - not assigned yet
            return set()
        return {tp.partition for tp in actives if tp.topic in names}

    def journey_rules(self) -> JourneyRules:
        """The journey rules of this pipeline."""
        return self.rules


def build_pipeline(settings: Settings, bootstrap: str, **kwargs: Any) -> Pipeline:
    """Create the app and attach agents and views."""
    from stream import agents, views

    pipeline = Pipeline(settings, bootstrap, **kwargs)
    agents.attach(pipeline)
    views.attach(pipeline)
    return pipeline
