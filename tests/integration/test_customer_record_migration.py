"""A worker recovers customers that workers before the version 2 record wrote, and goes on.

The eleven values of ``tests/stream/processing/customer_records_v0.jsonl`` were read from a real
worker's customers changelog; here they are that changelog again, at the partition the workers
then gave a key (the Java client's murmur2). Beside them, five version 1 values of
``customer_records_v1.jsonl`` (as the version 1 encoder wrote them, with their partition).
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
SAVED_V1 = SAVED.with_name("customer_records_v1.jsonl")
PARTITIONS = 4


def test_version_0_and_1_changelog_values_are_recovered_and_processing_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = unique_env(partitions=PARTITIONS)
    settings = load_settings(environ=env)
    records = [json.loads(line) for line in SAVED.read_text().splitlines()]
    # The version 1 values of a log of their own (the others are the eleven above, again).
    v1_records = [
        json.loads(line)
        for line in SAVED_V1.read_text().splitlines()
        if not json.loads(line)["from"].endswith(".jsonl")
    ]
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
        for record in v1_records:
            producer.send(
                changelog,
                key=record["key"].encode(),
                value=bytes.fromhex(record["v1"]),
                partition=record["state"]["p"],
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
        for record in v1_records:
            status, customer = get_json(f"{worker.url}/customers/{record['key']}")
            assert status == 200, customer
            ids = [row[1] for row in record["state"]["e"]]
            assert [e["event_id"] for e in customer["retained_events"]] == ids

        # A new touch of a recovered customer of each version: the state goes on, written as
        # version 2; before it, a copy of an event the version 1 record had compacted (its id
        # kept as text then), which is recognised, not dead-lettered as too late.
        first, second = records[0], max(v1_records, key=lambda r: len(r["state"]["r"]))
        copy_ms = second["state"]["c"][0] - 86_400_000
        newest = json.loads(first["value"])["n"]
        touches = [
            touch(first["key"], "after-migration", newest),
            touch(second["key"], second["state"]["r"][-1], copy_ms - 60_000),
            touch(second["key"], "after-migration-1", second["state"]["n"]),
        ]
        lines = [(number, json.dumps(t)) for number, t in enumerate(touches, start=1)]
        with EventProducer(kafka_bootstrap, settings.kafka) as events:
            produce_lines(lines, events, settings)

        def has_touches() -> bool:
            found = []
            for key, event_id in ((first["key"], "after-migration"),
                                  (second["key"], "after-migration-1")):  # fmt: skip
                status, customer = get_json(f"{worker.url}/customers/{key}")
                found.append(
                    status == 200
                    and any(e["event_id"] == event_id for e in customer["retained_events"])
                )
            return all(found)

        wait_until(has_touches, 120, "the new touches in the recovered states", [worker])
        assert worker.stop() == 0, worker.log_tail()
    finally:
        if worker.alive():
            worker.stop()
    # The worker has stopped: its changelog partitions are read to their end, no idle wait.
    for key, partition, was in (
        (first["key"], key_partition(first["key"].encode(), PARTITIONS), b"{"),
        (second["key"], second["state"]["p"], b"\x01"),
    ):
        tp = TopicPartition(changelog, partition)
        values = [m.value for m in read_to_end(kafka_bootstrap, [tp]) if m.key == key.encode()]
        assert values[0][:1] == was and values[-1][0] == 2  # version 0 or 1, then version 2
    dead = [TopicPartition(settings.topics.dead_letter, p) for p in range(PARTITIONS)]
    assert read_to_end(kafka_bootstrap, dead) == []  # the copy was not too late


def touch(customer_id: str, event_id: str, after_ms: int) -> dict[str, str]:
    """A touchpoint of the customer a minute after ``after_ms``."""
    ts = datetime.fromtimestamp((after_ms + 60_000) / 1000, tz=UTC).isoformat()
    return {
        "type": "touchpoint",
        "event_id": event_id,
        "customer_id": customer_id,
        "channel": "sms",
        "ts": ts.replace("+00:00", "Z"),
    }
