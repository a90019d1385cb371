"""Record batches reach every topic, whatever aiokafka's metadata already knew (real broker)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from stream.kafka.outgoing import Outgoing
from tests.integration.stream_harness import create_topics

pytestmark = pytest.mark.kafka


def test_a_topic_known_at_start_still_gets_its_batches_after_a_new_topic(
    kafka_bootstrap: str,
) -> None:
    """aiokafka's send_batch adds a topic to the ones its metadata refreshes ask for only when
    the cluster metadata lacks it. After a refresh of every topic, a topic it already knew is
    never asked for again once another topic is added: the next refresh drops it, its leader
    becomes unknown and its batches wait forever (a fresh worker's customers changelog hung
    its transaction until Kafka aborted it, and the worker exited with status 4)."""
    run = uuid.uuid4().hex[:8]
    early, late = f"early-{run}", f"late-{run}"
    create_topics(kafka_bootstrap, early)

    async def scenario() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=f"metadata-{run}"
        )
        await producer.start()
        # A refresh while the producer has asked for no topic yet fetches every topic: what a
        # transactional producer's InitProducerId retries do on a fresh broker.
        await producer.client.force_metadata_update()
        try:
            outgoing = Outgoing(lambda: producer)
            create_topics(kafka_bootstrap, late)
            await producer.begin_transaction()
            # One batch for both: the known topic's record batch waits in the accumulator (its
            # partition is muted until added to the transaction) while the new topic's send
            # narrows the metadata to the new topic alone.
            outgoing.add(early, 0, b"k", b"1")
            outgoing.add(late, 0, b"k", b"2")
            assert await asyncio.wait_for(outgoing.send(), 30) == 2
            await producer.commit_transaction()
        finally:
            await producer.stop()

    asyncio.run(scenario())
