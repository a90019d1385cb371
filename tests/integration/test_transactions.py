"""The worker's own Kafka transactions on the real broker (stream/kafka/transactions.py).

A member the group has replaced cannot commit (EOS v2 fencing through TxnOffsetCommit v3),
a live member can, and recovery's end of a changelog partition is its last committed data
record, past commit markers and aborted batches, once no transaction is open on it.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from stream.kafka.committed_reads import committed_ends
from stream.kafka.transactions import GroupFenced, GroupMetadata, TransactionalProducer

pytestmark = pytest.mark.kafka


def make_topic(bootstrap: str, partitions: int = 1) -> str:
    name = f"txn-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


async def read_committed(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        values = []
        while True:
            batches = await consumer.getmany(timeout_ms=2000)
            if not batches:
                return values
            values += [r.value for records in batches.values() for r in records]
    finally:
        await consumer.stop()


async def send_one(txn: TransactionalProducer, topic: str, value: bytes) -> None:
    producer = txn.started()
    batch = producer.create_batch()
    batch.append(key=None, value=value, timestamp=None)
    batch.close()
    await (await producer.send_batch(batch, topic, partition=0))


async def member_of(bootstrap: str, group: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=500)
    return consumer


def metadata_of(consumer: AIOKafkaConsumer, group: str) -> GroupMetadata:
    coordinator = consumer._coordinator
    return GroupMetadata(group, coordinator.generation, coordinator.member_id)


def test_a_replaced_member_cannot_commit_and_a_live_one_can(kafka_bootstrap: str) -> None:
    async def scenario() -> None:
        inputs, outputs = make_topic(kafka_bootstrap), make_topic(kafka_bootstrap)
        group = f"g-{uuid.uuid4().hex[:8]}"
        member = await member_of(kafka_bootstrap, group, inputs)
        live = metadata_of(member, group)
        # The member's metadata from before the group moved on: a later generation exists.
        stale = GroupMetadata(group, live.generation_id - 1, live.member_id)
        current = {"metadata": live}
        txn = TransactionalProducer(
            kafka_bootstrap,
            f"t-{uuid.uuid4().hex[:8]}",
            lambda: current["metadata"],
            max_batch_size=16384,
            transaction_timeout_ms=10_000,
        )
        await txn.start()
        try:
            await txn.begin()
            await send_one(txn, outputs, b"committed")
            await txn.commit({(inputs, 0): 5})
            current["metadata"] = stale
            await txn.begin()
            await send_one(txn, outputs, b"zombie")
            with pytest.raises(GroupFenced, match="ILLEGAL_GENERATION"):
                await txn.commit({(inputs, 0): 9})
            await txn.abort()
            # The producer goes on after the abort; the group's offset is the live commit's.
            current["metadata"] = live
            await txn.begin()
            await send_one(txn, outputs, b"again")
            await txn.commit({(inputs, 0): 7})
        finally:
            await txn.stop()
        # The group's offsets of a transaction become readable once the broker has written its
        # commit markers, a moment after EndTxn answers: until then the previous commit (5) is
        # what an offset fetch returns. The fenced 9 must never show.
        seen = []
        deadline = asyncio.get_running_loop().time() + 15.0
        while True:
            seen.append(await member.committed(TopicPartition(inputs, 0)))
            if seen[-1] == 7 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        await member.stop()
        assert 9 not in seen and set(seen) <= {5, 7}
        assert seen[-1] == 7
        assert await read_committed(kafka_bootstrap, outputs) == [b"committed", b"again"]

    asyncio.run(scenario())


def test_recovery_ends_at_the_last_committed_record_once_no_transaction_is_open(
    kafka_bootstrap: str,
) -> None:
    async def scenario() -> None:
        topic = make_topic(kafka_bootstrap)
        tp = TopicPartition(topic, 0)
        group = f"g-{uuid.uuid4().hex[:8]}"
        txn = TransactionalProducer(
            kafka_bootstrap,
            f"t-{uuid.uuid4().hex[:8]}",
            lambda: GroupMetadata(group, -1, ""),
            max_batch_size=16384,
            transaction_timeout_ms=10_000,
        )
        readers = [
            AIOKafkaConsumer(
                bootstrap_servers=kafka_bootstrap, isolation_level=level, enable_auto_commit=False
            )
            for level in ("read_committed", "read_uncommitted")
        ]
        for reader in readers:
            await reader.start()
        await txn.start()
        try:
            assert await committed_ends(*readers, [tp], 5.0) == {tp: 0}
            await txn.begin()
            for value in (b"a", b"b", b"c"):
                await send_one(txn, topic, value)
            await txn.commit({})  # offsets 0-2, the commit marker at 3
            await txn.begin()
            for _ in range(400):  # an aborted batch longer than the first look back
                await send_one(txn, topic, b"x")
            await txn.abort()
            assert await committed_ends(*readers, [tp], 5.0) == {tp: 3}
            # A transaction left open: its end is unknown until it ends.
            await txn.begin()
            await send_one(txn, topic, b"d")
            with pytest.raises(TimeoutError, match="stayed open"):
                await committed_ends(*readers, [tp], 2.0)
            waiting = asyncio.ensure_future(committed_ends(*readers, [tp], 30.0))
            await asyncio.sleep(1.0)
            assert not waiting.done()
            await txn.commit({})
            end = await waiting
            assert end == {tp: (await readers[1].end_offsets([tp]))[tp] - 1}
        finally:
            await txn.stop()
            for reader in readers:
                await reader.stop()

    asyncio.run(scenario())


def test_a_restarted_worker_id_aborts_its_predecessors_open_transaction(
    kafka_bootstrap: str,
) -> None:
    async def scenario() -> None:
        topic = make_topic(kafka_bootstrap)
        transactional_id = f"t-{uuid.uuid4().hex[:8]}"
        killed = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=transactional_id
        )
        await killed.start()
        await killed.begin_transaction()
        await killed.send_and_wait(topic, b"half a batch", partition=0)
        # No commit, no abort: as if killed. The same id started again fences it.
        again = TransactionalProducer(
            kafka_bootstrap,
            transactional_id,
            lambda: GroupMetadata("g", -1, ""),
            max_batch_size=16384,
            transaction_timeout_ms=60_000,
        )
        await again.start()
        await again.begin()
        await send_one(again, topic, b"whole batch")
        await again.commit({})
        await again.stop()
        with suppress(Exception):  # fenced: its stop may complain
            await killed.stop()
        assert await read_committed(kafka_bootstrap, topic) == [b"whole batch"]

    asyncio.run(scenario())
