"""Records written straight to the input topics, as any producer can, on the real broker.

A touchpoint with a 900 KB campaign once stopped the worker (its dead letter, carrying the
bytes twice, was too large for Kafka) and never reached the dead-letter topic; a customer's
purchase on another partition than the customer's was credited as a second customer. Both are
dead letters now, and the tables stay the batch engine's answer for the good records.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.kafka.admin import ensure_topics
from stream.kafka.partitioning import key_partition
from stream.kafka.producer import EventProducer, produce_lines
from tests.compare import assert_same
from tests.integration.stream_harness import Worker, get_json, unique_env, wait_until
from tests.integration.test_stream_invariant import dead_letters
from tests.stream.batch_answers import batch_attribution

pytestmark = pytest.mark.kafka
PARTITIONS = 2


def send_raw(
    bootstrap: str, topic: str, key: bytes, value: bytes, partition: int | None = None
) -> Any:
    """Write one record (up to 2 MB) as any producer can; return where it landed."""
    raw = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=2_000_000)
    try:
        sent = raw.send(topic, key=key, value=value, partition=partition)
        raw.flush(60)
        return sent.get(30)
    finally:
        raw.close()


def wait_for_totals(
    worker: Worker, running: list[Worker], invalid_records: int, conversions: int, what: str
) -> None:
    """Wait until ``worker``'s totals count these; on a timeout say what they were."""
    seen: list[Any] = [None]

    def reached() -> bool:
        seen[0] = get_json(f"{worker.url}/totals")[1]
        totals = seen[0] or {}
        return bool(
            totals.get("invalid_records") == invalid_records
            and totals.get("conversions") == conversions
        )

    try:
        wait_until(reached, 240, what, running)
    except AssertionError as error:
        raise AssertionError(f"{error}\nlast totals: {seen[0]}") from None


@pytest.mark.parametrize(
    ("workers", "partitioner"),
    [(1, "any"), (2, "murmur2")],
    ids=["one-worker-any-partitioner", "two-workers-murmur2"],
)
def test_an_oversized_record_and_a_second_partition_are_dead_lettered_and_the_workers_go_on(
    kafka_bootstrap: str, tmp_path: Path, workers: int, partitioner: str
) -> None:
    env = {
        **unique_env(partitions=PARTITIONS),
        "CRM_ATTRIBUTION__LOOKBACK_DAYS": "3",
        "CRM_TOPICS__PARTITIONER": partitioner,
    }
    settings = load_settings(environ=env)
    ensure_topics(kafka_bootstrap, settings)
    lines = list(generate(GeneratorConfig(customers=60, days=15, seed=11)))
    with EventProducer(kafka_bootstrap, settings.kafka) as producer:
        produce_lines(list(enumerate(lines, 1)), producer, settings)
    purchase = next(json.loads(x) for x in lines if json.loads(x)["type"] == "purchase")
    customer = purchase["customer_id"].encode()
    home = key_partition(customer, PARTITIONS)
    huge = {
        "type": "touchpoint",
        "event_id": "huge",
        "customer_id": purchase["customer_id"],
        "channel": "email",
        "campaign": "x" * 900_000,
        "ts": purchase["ts"],
    }
    stray = {**purchase, "event_id": "stray", "order_id": "stray-order", "amount": 1000.0}
    huge_bytes = json.dumps(huge).encode()
    stray_bytes = json.dumps(stray).encode()
    huge_at = send_raw(kafka_bootstrap, settings.topics.touchpoints, customer, huge_bytes)
    # With a known partitioner a record off its key's partition is caught whenever it is read,
    # even before the customer's other events: written up front. With "any", the customer's
    # partition is the one its events are first read from (stream/processing/records.py), and
    # aiokafka shuffles the partitions of each fetch request: written beside the customer's
    # events, the stray was sometimes read first, and the customer's ten events on its home
    # partition became the strays (invalid_records 11, not 2; the wait below timed out).
    # Written once the customer's events are processed, it is the one off the partition.
    stray_first = partitioner != "any"
    if stray_first:
        stray_at = send_raw(
            kafka_bootstrap, settings.topics.purchases, customer, stray_bytes, 1 - home
        )

    expected = batch_attribution(lines, settings)
    expected["totals"]["invalid_records"] += 2
    running = [Worker(kafka_bootstrap, env, tmp_path, f"w{i}").start() for i in range(workers)]
    worker = running[0]
    try:
        if workers > 1:  # both own a partition: the stray record is read by the other one
            for each in running:
                wait_until(
                    lambda w=each: get_json(f"{w.url}/ready")[0] == 200, 180, each.name, running
                )
        if not stray_first:
            # Every conversion counted, the huge record the only invalid one: the customer's
            # purchase, and so its partition, has been read.
            wait_for_totals(
                worker,
                running,
                expected["totals"]["invalid_records"] - 1,
                expected["totals"]["conversions"],
                "every record but the stray processed",
            )
            stray_at = send_raw(
                kafka_bootstrap, settings.topics.purchases, customer, stray_bytes, 1 - home
            )
        wait_for_totals(
            worker,
            running,
            expected["totals"]["invalid_records"],
            expected["totals"]["conversions"],
            "every record processed",
        )
        # Null paths are expired at a tick (like the batch's as_of): wait for the answer to
        # become the batch's, rather than a fixed sleep; past 60 s its last difference fails.
        deadline = time.monotonic() + 60
        while True:
            for each in running:
                assert each.alive(), each.log_tail()
            try:
                assert_same(get_json(f"{worker.url}/attribution", timeout=120)[1], expected)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
        for each in running:
            assert each.alive() and each.stop() == 0, each.log_tail()
        # After the stop: every dead letter they wrote is there to be read.
        letters = dead_letters(kafka_bootstrap, settings.topics.dead_letter)
        by_offset = {(d["topic"], d["partition"], d["offset"]): d for d in letters}
        letter = by_offset[(settings.topics.touchpoints, huge_at.partition, huge_at.offset)]
        assert "campaign" in letter["reason"] and letter["truncated"] is True
        assert letter["value_bytes"] == len(huge_bytes)
        assert letter["value_sha256"] == hashlib.sha256(huge_bytes).hexdigest()
        assert huge_bytes.startswith(base64.b64decode(letter["value_base64"]))
        letter = by_offset[(settings.topics.purchases, stray_at.partition, stray_at.offset)]
        if partitioner == "any":
            assert f"has events on partition {home}" in letter["reason"]
        else:
            assert f"puts its key on partition {home}" in letter["reason"]
    finally:
        for each in running:
            if each.alive():
                each.stop()
