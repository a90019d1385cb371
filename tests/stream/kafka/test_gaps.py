"""Reading a skipped range of an input partition directly, on the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.admin import wait_until_listed
from stream.kafka.gaps import GapReader
from tests.integration.test_smoke_kafka import produce

pytestmark = pytest.mark.kafka


def test_gap_reader_reads_exactly_the_missing_range(kafka_bootstrap: str) -> None:
    """The direct read that refills skipped offsets returns [start, end) in order, no more."""
    topic = f"gap-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        wait_until_listed(admin, [topic], timeout_s=30)
    finally:
        admin.close()
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
