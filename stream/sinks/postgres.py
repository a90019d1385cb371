"""Keep PostgreSQL tables current from the stream: ``crm-attribution sink postgres``.

The sink reads the attributions topic from the offsets it stored in PostgreSQL and applies
each batch of records in one transaction with the new offsets, so a restart (or a crash)
neither loses nor repeats a record. An emitted record replaces the order's rows for its model;
a retraction removes them only if they are still the version it retracts (its journey's
fingerprint), so a late retraction never removes a newer emission. ``credits_daily`` is
recomputed for the days a batch touched. The snapshot tables are replaced whole, in one
transaction, from a worker's ``GET /analytics?customers=1`` every ``snapshot_seconds``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from attribution.warehouse import (
    ATTRIBUTIONS,
    CREDITS_DAILY,
    SNAPSHOT_TABLES,
    TABLES,
    attribution_rows,
    create_statements,
    journey_fingerprint,
    snapshot_rows,
)
from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.security import kafka_python_args

log = logging.getLogger("crm_attribution.sink")

BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS sink_offsets (topic text, partition integer, "
    "next_offset bigint NOT NULL, updated_at timestamptz NOT NULL, PRIMARY KEY (topic, partition))",
    "CREATE TABLE IF NOT EXISTS sink_snapshots (name text PRIMARY KEY, as_of timestamptz, "
    "refreshed_at timestamptz NOT NULL, source text)",
)


class SinkError(Exception):
    """The sink cannot go on (database or broker unreachable, bad DSN): one line for people."""


@dataclass
class SinkStats:
    """What the sink has done since it started."""

    records: int = 0
    skipped: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    last_error: str | None = None
    days: set[date] = field(default_factory=set)


def connect(dsn: str) -> Any:
    """A psycopg connection, or a SinkError that says why not."""
    try:
        import psycopg
    except ImportError:
        raise SinkError(
            "the PostgreSQL sink needs psycopg: pip install 'crm-attribution[sql]'"
        ) from None
    try:
        # Autocommit: every write is inside an explicit `with con.transaction()`, which is then
        # a real transaction rather than a savepoint of an implicit one that is never committed.
        return psycopg.connect(dsn, connect_timeout=10, autocommit=True)
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SinkError(f"cannot connect to PostgreSQL ({reason})") from None


def prepare(con: Any) -> None:
    """Create every table and index that is missing (safe at every start)."""
    with con.transaction(), con.cursor() as cur:
        for table in TABLES:
            for statement in create_statements(table, "postgres"):
                cur.execute(statement)
        for statement in BOOKKEEPING:
            cur.execute(statement)


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


INSERT_ATTRIBUTION = (
    f"INSERT INTO attributions ({', '.join(ATTRIBUTIONS.names)}) "
    f"VALUES ({_placeholders(len(ATTRIBUTIONS.names))})"
)


def apply_records(cur: Any, records: Iterable[dict[str, Any]]) -> set[date]:
    """Apply attribution records in order; the days whose credits they changed."""
    days: set[date] = set()
    for record in records:
        rows = attribution_rows(record)
        ts = datetime.fromtimestamp(int(record["ts"]) / 1000, tz=UTC)
        days.add(ts.date())
        key = (record["purchase_event_id"], record["model"])
        if record.get("retracted"):
            fingerprint = journey_fingerprint(
                record.get("path") or [], int(record["ts"]), float(record["value"])
            )
            cur.execute(
                "DELETE FROM attributions WHERE purchase_event_id = %s AND model = %s "
                "AND journey = %s",
                (*key, fingerprint),
            )
            continue
        cur.execute("DELETE FROM attributions WHERE purchase_event_id = %s AND model = %s", key)
        if rows:
            cur.executemany(
                INSERT_ATTRIBUTION, [tuple(r[n] for n in ATTRIBUTIONS.names) for r in rows]
            )
    return days


def refresh_daily(cur: Any, days: set[date]) -> None:
    """Recompute ``credits_daily`` for ``days`` from ``attributions``."""
    if not days:
        return
    wanted = sorted(days)
    cur.execute("DELETE FROM credits_daily WHERE day = ANY(%s)", (wanted,))
    cur.execute(
        f"INSERT INTO credits_daily ({', '.join(CREDITS_DAILY.names)}) "
        "SELECT day, model, channel, sum(conversions), sum(value), "
        "count(DISTINCT purchase_event_id) FROM attributions WHERE day = ANY(%s) "
        "GROUP BY day, model, channel",
        (wanted,),
    )


def replace_snapshot(con: Any, report: dict[str, Any], source: str) -> None:
    """Replace every snapshot table with the report's rows, in one transaction."""
    tables = snapshot_rows(report)
    as_of = datetime.fromisoformat(report["as_of"].replace("Z", "+00:00"))
    with con.transaction(), con.cursor() as cur:
        for table in SNAPSHOT_TABLES:
            cur.execute(f"DELETE FROM {table.name}")
            rows = tables[table.name]
            if rows:
                cur.executemany(
                    f"INSERT INTO {table.name} ({', '.join(table.names)}) "
                    f"VALUES ({_placeholders(len(table.names))})",
                    [tuple(r.get(n) for n in table.names) for r in rows],
                )
            cur.execute(
                "INSERT INTO sink_snapshots (name, as_of, refreshed_at, source) "
                "VALUES (%s, %s, now(), %s) ON CONFLICT (name) DO UPDATE SET "
                "as_of = excluded.as_of, refreshed_at = excluded.refreshed_at, "
                "source = excluded.source",
                (table.name, as_of, source),
            )


def fetch_report(
    worker_url: str, timeout: float = 120.0, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The worker's analytics report with every customer's scores (``headers``: its token)."""
    url = f"{worker_url.rstrip('/')}/analytics?customers=1"
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as error:
        try:
            reason = json.loads(error.read()).get("error", error.reason)
        except (ValueError, AttributeError):
            reason = error.reason
        raise SinkError(f"{url} answered HTTP {error.code}: {reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise SinkError(f"no worker answers at {worker_url} ({error})") from None


class PostgresSink:
    """The attributions topic and a worker's analytics, kept in PostgreSQL tables."""

    def __init__(
        self,
        dsn: str,
        bootstrap: str,
        topic: str,
        kafka: KafkaSettings,
        worker_url: str | None = None,
        snapshot_seconds: float = 60.0,
        batch_records: int = 5000,
        worker_headers: dict[str, str] | None = None,
    ) -> None:
        self.dsn = dsn
        self.worker_headers = worker_headers or {}
        self.bootstrap = bootstrap
        self.topic = topic
        self.kafka = kafka
        self.worker_url = worker_url
        self.snapshot_seconds = snapshot_seconds
        self.batch_records = batch_records
        self.stats = SinkStats()
        self._con: Any = None
        self._consumer: Any = None
        self._partitions: list[Any] = []

    def start(self, wait_for_topic_s: float = 60.0) -> None:
        """Connect, create missing tables, and position the consumer at the stored offsets."""
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        self._con = connect(self.dsn)
        prepare(self._con)
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                enable_auto_commit=False,
                group_id=None,
                # Workers write each batch in a Kafka transaction; a worker killed mid-batch
                # leaves that batch's records on the topic, aborted, and writes them again.
                isolation_level="read_committed",
                max_poll_records=self.batch_records,
                request_timeout_ms=30_000,
                **kafka_python_args(self.kafka),
            )
        except KafkaError as error:
            raise SinkError(f"cannot reach Kafka at {self.bootstrap} ({error})") from None
        deadline = time.monotonic() + wait_for_topic_s
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions:
            if time.monotonic() > deadline:
                consumer.close()
                raise SinkError(
                    f"topic {self.topic} does not exist on {self.bootstrap}: start a worker "
                    "first (it creates its topics), or pass --topic"
                )
            time.sleep(0.5)
            partitions = consumer.partitions_for_topic(self.topic)
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._partitions)
        stored = self._stored_offsets()
        for tp in self._partitions:
            if tp.partition in stored:
                consumer.seek(tp, stored[tp.partition])
            else:
                consumer.seek_to_beginning(tp)
        self._consumer = consumer

    def _stored_offsets(self) -> dict[int, int]:
        with self._con.cursor() as cur:
            cur.execute(
                "SELECT partition, next_offset FROM sink_offsets WHERE topic = %s", (self.topic,)
            )
            return {int(p): int(o) for p, o in cur.fetchall()}

    def consume_once(self, timeout_ms: int = 1000) -> int:
        """Apply one polled batch (records and offsets in one transaction); records applied."""
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=self.batch_records)
        if not polled:
            return 0
        records: list[dict[str, Any]] = []
        next_offsets: dict[int, int] = {}
        for tp, messages in sorted(polled.items(), key=lambda kv: kv[0].partition):
            for message in messages:
                next_offsets[tp.partition] = message.offset + 1
                record = self._decode(message)
                if record is not None:
                    records.append(record)
        with self._con.transaction(), self._con.cursor() as cur:
            days = apply_records(cur, records)
            refresh_daily(cur, days)
            cur.executemany(
                "INSERT INTO sink_offsets (topic, partition, next_offset, updated_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (topic, partition) DO UPDATE SET "
                "next_offset = excluded.next_offset, updated_at = excluded.updated_at",
                [(self.topic, p, o) for p, o in sorted(next_offsets.items())],
            )
        self.stats.records += len(records)
        self.stats.days |= days
        return len(records)

    def _decode(self, message: Any) -> dict[str, Any] | None:
        try:
            record = json.loads(message.value)
            attribution_rows(record)  # every field the tables need is there and typed
            return dict(record)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            self.stats.skipped += 1
            log.warning(
                "skipped attribution record %s[%d]@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                error,
            )
            return None

    def caught_up(self) -> bool:
        """Whether every partition has been read to its current end."""
        ends = self._consumer.end_offsets(self._partitions)
        return all(self._consumer.position(tp) >= ends[tp] for tp in self._partitions)

    def catch_up(self) -> int:
        """Consume until every partition is read to the end it had when asked; records applied."""
        ends = self._consumer.end_offsets(self._partitions)
        applied = 0
        while any(self._consumer.position(tp) < ends[tp] for tp in self._partitions):
            applied += self.consume_once()
        return applied

    def refresh_snapshot(self) -> bool:
        """Replace the snapshot tables from the worker; False (and logged) when it fails."""
        if not self.worker_url:
            return False
        try:
            report = fetch_report(self.worker_url, headers=self.worker_headers)
            replace_snapshot(self._con, report, self.worker_url)
        except SinkError as error:
            self.stats.snapshot_failures += 1
            self.stats.last_error = str(error)
            log.warning("snapshot not refreshed: %s", error)
            return False
        self.stats.snapshots += 1
        return True

    def run(self, stop: threading.Event) -> None:
        """Consume and refresh snapshots until ``stop`` is set."""
        next_snapshot = time.monotonic()
        while not stop.is_set():
            self.consume_once()
            if self.worker_url and time.monotonic() >= next_snapshot:
                self.refresh_snapshot()
                next_snapshot = time.monotonic() + self.snapshot_seconds

    def close(self) -> None:
        """Close the consumer and the connection."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._con is not None:
            self._con.close()
            self._con = None
