"""A worker recovers customers a worker before the version 1 record wrote (JSON), and goes on.

The eleven values of ``tests/stream/processing/customer_records_v0.jsonl`` were read from a real
worker's customers changelog; here they are that changelog again, at the partition the workers
then gave a key (the Java client's murmur2).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from crm_attribution.settings.typed import load_settings
from stream.kafka.admin import ensure_topics, wait_until_listed
from stream.kafka.partitioning import key_partition
from stream.kafka.producer import EventProducer, produce_lines
from tests.integration.stream_harness import (
    Worker,
    get_json,
    read_to_end,
    unique_env,
    wait_until,
)

pytestmark = pytest.mark.kafka

SAVED = Path(__file__).parents[1] / "stream" / "processing" / "customer_records_v0.jsonl"
PARTITIONS = 4


def test_version_0_changelog_values_are_recovered_and_processing_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = unique_env(partitions=PARTITIONS)
    settings = load_settings(environ=env)
    records = [json.loads(line) for line in SAVED.read_text().splitlines()]
    changelog = f"{settings.worker.app_id}-customers-changelog"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        compacted = {"cleanup.policy": "compact"}
        admin.create_topics([NewTopic(changelog, PARTITIONS, 1, topic_configs=compacted)])
        wait_until_listed(admin, [changelog], timeout_s=30)
    finally:
        admin.close()
    # The other topics, as a deployment that wrote the old changelog has them (ensure_topics
    # also creates missing changelogs, so it comes after the one written here).
    ensure_topics(kafka_bootstrap, settings)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for record in records:
            key = record["key"].encode()
            producer.send(
                changelog,
                key=key,
                value=record["value"].encode(),
                partition=key_partition(key, PARTITIONS),
            )
        producer.flush(timeout=60)
    finally:
        producer.close()

    worker = Worker(kafka_bootstrap, env, tmp_path, "w0").start()
    try:
        wait_until(lambda: get_json(f"{worker.url}/ready")[0] == 200, 180, "ready", [worker])
        for record in records:
            status, customer = get_json(f"{worker.url}/customers/{record['key']}")
            assert status == 200, customer
            ids = [row[1] for row in json.loads(record["value"])["e"]]
            assert [e["event_id"] for e in customer["retained_events"]] == ids

        # A new touch of a recovered customer: the state goes on, written as version 1.
        first = records[0]
        newest = json.loads(first["value"])["n"]
        ts = datetime.fromtimestamp((newest + 60_000) / 1000, tz=UTC).isoformat()
        touch = {
            "type": "touchpoint",
            "event_id": "after-migration",
            "customer_id": first["key"],
            "channel": "sms",
            "ts": ts.replace("+00:00", "Z"),
        }
        with EventProducer(kafka_bootstrap, settings.kafka) as events:
            produce_lines([(1, json.dumps(touch))], events, settings)

        def has_touch() -> bool:
            status, customer = get_json(f"{worker.url}/customers/{first['key']}")
            return status == 200 and any(
                e["event_id"] == "after-migration" for e in customer["retained_events"]
            )

        wait_until(has_touch, 120, "the new touch in the recovered state", [worker])
        assert worker.stop() == 0, worker.log_tail()
    finally:
        if worker.alive():
            worker.stop()
    key = first["key"].encode()
    # The worker has stopped: its changelog partition is read to its end, no idle wait.
    tp = TopicPartition(changelog, key_partition(key, PARTITIONS))
    values = [m.value for m in read_to_end(kafka_bootstrap, [tp]) if m.key == key]
    assert values[0][:1] == b"{" and values[-1][0] == 1  # version 0 then version 1
