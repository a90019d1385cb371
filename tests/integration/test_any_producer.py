"""Customers keyed by a producer that partitions with CRC32 (librdkafka: confluent-kafka, the Go
and .NET clients) are served like any other, with two workers and after one of them stops.

The workers once derived a customer's partition from its key with the Java client's murmur2:
such customers' states went to another changelog partition than their events, and fell out of
``/analytics``, of the open-journey index rebuilt after a rebalance, and of a recovery.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from attribution.events import InvalidRecord, parse_event
from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import Settings, load_settings
from stream.kafka.admin import ensure_topics
from stream.kafka.partitioning import key_partition
from stream.topics import event_key, route
from tests.compare import assert_same
from tests.integration.stream_harness import Worker, get_json, unique_env, wait_until
from tests.stream.batch_answers import batch_attribution, batch_report

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4
LOOKBACK_DAYS = "3"


def produce_with_librdkafka(bootstrap: str, lines: list[str], settings: Settings) -> dict[str, int]:
    """Send the valid events with confluent-kafka's default partitioner; customer -> partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    partition_of: dict[str, int] = {}
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))
        elif message.topic() in (settings.topics.touchpoints, settings.topics.purchases):
            partition_of[message.key().decode()] = message.partition()

    for line in lines:
        try:
            event = parse_event(json.loads(line))
        except InvalidRecord:
            continue
        producer.produce(
            route(event, settings), line.encode(), event_key(event).encode(), on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and failures == [], failures
    return partition_of


def answers_equal_batch(url: str, attribution: dict[str, Any], report: dict[str, Any]) -> None:
    status, stream = get_json(f"{url}/attribution", timeout=120)
    assert status == 200, stream
    assert_same(stream, attribution)
    status, analytics = get_json(f"{url}/analytics?fresh=1", timeout=180)
    assert status == 200, analytics
    assert_same(analytics, report)


def test_customers_partitioned_by_crc32_are_served_by_two_workers_and_after_a_stop(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        **unique_env(partitions=PARTITIONS),
        "CRM_ATTRIBUTION__LOOKBACK_DAYS": LOOKBACK_DAYS,
    }
    settings = load_settings(environ=env)
    ensure_topics(kafka_bootstrap, settings)
    lines = list(generate(GeneratorConfig(customers=2_000, days=10, seed=23)))
    attribution, report = batch_attribution(lines, settings), batch_report(lines, settings)
    # One worker reads the first half; a second joins, so the partitions move between them and
    # each rebuilds its open-journey index from its table; then the second half is produced.
    half = len(lines) // 2
    running = [Worker(kafka_bootstrap, env, tmp_path, "w0").start()]
    try:
        wait_until(lambda: get_json(f"{running[0].url}/ready")[0] == 200, 180, "w0", running)
        placed = produce_with_librdkafka(kafka_bootstrap, lines[:half], settings)
        running.append(Worker(kafka_bootstrap, env, tmp_path, "w1").start())
        wait_until(lambda: get_json(f"{running[1].url}/ready")[0] == 200, 180, "w1", running)
        placed.update(produce_with_librdkafka(kafka_bootstrap, lines[half:], settings))
        moved = sorted(c for c, p in placed.items() if p != key_partition(c.encode(), PARTITIONS))
        assert len(moved) > len(placed) // 2  # most customers sit where murmur2 would not
        expected = attribution["totals"]

        def drained(url: str) -> bool:
            status, totals = get_json(f"{url}/totals")
            return status == 200 and all(
                totals.get(k) == expected[k] for k in ("conversions", "null", "invalid_records")
            )

        wait_until(lambda: drained(running[0].url), 600, "the log drained", running)
        answers_equal_batch(running[0].url, attribution, report)
        for worker in running:  # from either worker, whichever owns the customer
            for customer in moved[:5]:
                status, body = get_json(f"{worker.url}/customers/{customer}")
                assert status == 200 and body["customer_id"] == customer, (worker.name, body)

        # The survivor recovers the other's partitions from their changelogs.
        assert running[1].stop() == 0, running[1].log_tail()
        survivor = running[:1]
        wait_until(lambda: drained(survivor[0].url), 300, "the survivor's answer", survivor)
        answers_equal_batch(survivor[0].url, attribution, report)
        status, body = get_json(f"{survivor[0].url}/customers/{moved[0]}")
        assert status == 200, body
        assert survivor[0].stop() == 0, survivor[0].log_tail()
    finally:
        for worker in running:
            if worker.alive():
                worker.stop()
