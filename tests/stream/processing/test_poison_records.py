"""Records no producer should write: too large to dead-letter whole, or on a second partition."""

from __future__ import annotations

import base64
import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from crm_attribution.generator import GeneratorConfig, generate
from stream.kafka.partitioning import key_partition
from stream.processing.dead_letters import KEPT_VALUE_BYTES, dead_letter_record
from stream.processing.partitioners import crc32_partition, murmur2_partition
from stream.testing import TestingLog, run_main
from stream.testing import crc32_partition as librdkafka_crc32
from stream.topics import raw_route
from tests.compare import assert_same
from tests.stream.batch_answers import batch_attribution, stream_settings

SETTINGS = stream_settings(partitions=3)
TOPICS = SETTINGS.topics


def touch(event_id: str, customer: str, campaign: str = "spring") -> bytes:
    return json.dumps(
        {
            "type": "touchpoint",
            "event_id": event_id,
            "customer_id": customer,
            "channel": "email",
            "campaign": campaign,
            "ts": "2026-01-05T10:00:00Z",
        }
    ).encode()


def test_a_dead_letter_too_large_for_kafka_keeps_the_start_size_hash_and_place() -> None:
    value = touch("big", "c1", campaign="x" * 900_000)
    letter = dead_letter_record("campaign is too long", "t", 2, 41, b"c1", value)
    encoded = json.dumps(letter).encode()
    assert len(encoded) < 256 * 1024  # whole, it was 2.1 MB: Kafka refused it
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("t", 2, 41)
    assert letter["truncated"] is True and letter["value_bytes"] == len(value)
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    kept = base64.b64decode(letter["value_base64"])
    assert len(kept) == KEPT_VALUE_BYTES and value.startswith(kept)
    assert letter["value_text"] == kept.decode()


def test_a_small_dead_letter_keeps_the_record_exactly() -> None:
    value = "é".encode() * 10
    letter = dead_letter_record("r", "t", 0, 1, b"k", value)
    assert base64.b64decode(letter["value_base64"]) == value
    assert letter["value_text"] == value.decode() and "truncated" not in letter
    binary = dead_letter_record("r", "t", 0, 1, None, b"\xff" * 10)
    assert binary["value_text"] is None and binary["key"] is None


def test_a_huge_key_or_reason_is_cut_too() -> None:
    letter = dead_letter_record("y" * 50_000, "t", 0, 1, b"k" * 900_000, b"{}")
    assert len(json.dumps(letter)) < 8_000
    assert letter["key_truncated"] is True and letter["key_bytes"] == 900_000
    assert "50,000 characters" in letter["reason"]


def test_a_cut_multibyte_character_leaves_valid_text() -> None:
    value = b"a" + "€".encode() * KEPT_VALUE_BYTES
    letter = dead_letter_record("r", "t", 0, 1, None, value)
    assert letter["truncated"] and set(letter["value_text"][1:]) == {"€"}


def test_a_customers_event_on_a_second_partition_is_dead_lettered_not_credited() -> None:
    lines = list(generate(GeneratorConfig(customers=40, days=12, seed=3)))
    log = TestingLog(SETTINGS)
    log.produce_lines(lines, SETTINGS)
    # A purchase of a customer who has touches, written to another partition than theirs.
    purchase = next(json.loads(line) for line in lines if json.loads(line)["type"] == "purchase")
    customer = purchase["customer_id"]
    _, key = raw_route(json.dumps(purchase), SETTINGS)
    home = log.partitioner(key or b"", SETTINGS.topics.partitions)
    stray = {**purchase, "event_id": "stray", "order_id": "stray-order", "amount": 1000.0}
    record = log.produce(
        TOPICS.purchases, key, json.dumps(stray).encode(), partition=(home + 1) % 3
    )
    run = run_main(log, SETTINGS)
    letters = [d for d in run.dead_letters() if d["offset"] == record.offset]
    [letter] = [d for d in letters if d["partition"] == record.partition]
    assert f"customer {customer!r} has events on partition {home}" in letter["reason"]
    assert f"this one on partition {record.partition}" in letter["reason"]
    # Nothing of it reached the tables: they are the batch answer for the log without it, the
    # refused record counted as invalid.
    expected = batch_attribution(lines, SETTINGS)
    expected["totals"]["invalid_records"] += 1
    assert_same(run.attribution(), expected)


@given(st.binary(max_size=64), st.integers(1, 64))
def test_the_partitioners_are_the_producers(key: bytes, partitions: int) -> None:
    assert murmur2_partition(key, partitions) == key_partition(key, partitions)
    assert crc32_partition(key, partitions) == librdkafka_crc32(key, partitions)


def test_with_a_named_partitioner_a_record_off_its_keys_partition_is_dead_lettered() -> None:
    settings = stream_settings(partitions=3, CRM_TOPICS__PARTITIONER="murmur2")
    log = TestingLog(settings)
    wrong = (key_partition(b"c9", 3) + 1) % 3
    # The customer's only record: with "any" it would be the customer's partition.
    record = log.produce(TOPICS.touchpoints, b"c9", touch("t1", "c9"), partition=wrong)
    log.produce(TOPICS.touchpoints, b"c8", touch("t2", "c8"))
    run = run_main(log, settings)
    [letter] = run.dead_letters()
    assert (letter["partition"], letter["offset"]) == (record.partition, record.offset)
    assert (
        f"topics.partitioner puts its key on partition {key_partition(b'c9', 3)}"
        in (letter["reason"])
    )
    assert run.attribution()["totals"]["invalid_records"] == 1
    same = run_main(log, SETTINGS)  # partitioner "any": applied where it arrived
    assert same.dead_letters() == []
