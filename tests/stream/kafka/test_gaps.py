"""Reading a skipped range of an input partition directly, on the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.gaps import GapReader
from tests.integration.stream_harness import create_topics
from tests.integration.test_smoke_kafka import produce

pytestmark = pytest.mark.kafka


def test_gap_reader_reads_exactly_the_missing_range(kafka_bootstrap: str) -> None:
    """The direct read that refills skipped offsets returns [start, end) in order, no more."""
    topic = f"gap-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, topic)
    produce(kafka_bootstrap, topic, [(f"k{i}", i) for i in range(20)])

    async def read(start: int, end: int) -> list[int]:
        reader = GapReader(kafka_bootstrap, KafkaSettings())
        try:
            return [r.offset async for r in reader.read(topic, 0, start, end)]
        finally:
            await reader.close()

    assert asyncio.run(read(5, 12)) == list(range(5, 12))
    assert asyncio.run(read(0, 1)) == [0]
    assert asyncio.run(read(19, 20)) == [19]


def test_gap_reader_skips_records_of_aborted_transactions(kafka_bootstrap: str) -> None:
    """The worker's consumer reads ``read_committed``, so it leaves an offset gap where a
    transactional producer's aborted records sit; refilling that gap must not process them."""
    from kafka import KafkaProducer

    topic = f"gap-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, topic)
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"gap-test-{uuid.uuid4().hex[:8]}"
    )
    try:
        producer.init_transactions()
        for values, commit in (([b"a0", b"a1"], True), ([b"x0", b"x1"], False), ([b"b0"], True)):
            producer.begin_transaction()
            for value in values:
                producer.send(topic, key=b"k", value=value, partition=0)
            producer.flush()
            if commit:
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    finally:
        producer.close()

    async def read() -> list[bytes]:
        reader = GapReader(kafka_bootstrap, KafkaSettings())
        try:
            return [r.value async for r in reader.read(topic, 0, 0, 7)]
        finally:
            await reader.close()

    # Offsets: a0 a1 marker x0 x1 marker b0 marker.
    assert asyncio.run(read()) == [b"a0", b"a1", b"b0"]
