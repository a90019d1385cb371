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
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=2_000_000)
    try:
        sent_huge = raw.send(settings.topics.touchpoints, key=customer, value=huge_bytes)
        sent_stray = raw.send(
            settings.topics.purchases,
            key=customer,
            value=json.dumps(stray).encode(),
            partition=1 - home,
        )
        raw.flush(60)
        huge_at, stray_at = sent_huge.get(30), sent_stray.get(30)
    finally:
        raw.close()

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
        wait_until(
            lambda: (
                (get_json(f"{worker.url}/totals")[1] or {}).get("invalid_records")
                == expected["totals"]["invalid_records"]
                and get_json(f"{worker.url}/totals")[1]["conversions"]
                == expected["totals"]["conversions"]
            ),
            240,
            "every record processed",
            running,
        )
        time.sleep(3)  # a tick or two: null paths are expired like the batch's as_of
        wait_until(
            lambda: get_json(f"{worker.url}/attribution", timeout=120)[1] is not None,
            60,
            "attribution",
            running,
        )
        assert_same(get_json(f"{worker.url}/attribution", timeout=120)[1], expected)
        letters = dead_letters(kafka_bootstrap, settings.topics.dead_letter, 2)
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
        for each in running:
            assert each.alive() and each.stop() == 0, each.log_tail()
    finally:
        for each in running:
            if each.alive():
                each.stop()
