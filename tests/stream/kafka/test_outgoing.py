"""The worker's own sends: record batches per partition, Faust's bytes, delivery awaited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata, TopicPartition

from crm_attribution.settings.typed import load_settings
from stream.kafka.codecs import raw_key, raw_value, record_json, table_json
from stream.kafka.outgoing import Outgoing
from stream.kafka.partitioning import key_partition


class FakeClient:
    """The part of aiokafka's client the sends use: the topics its metadata asks for."""

    def __init__(self) -> None:
        self.topics: set[str] = set()

    async def add_topic(self, topic: str) -> bool:
        self.topics.add(topic)
        return True


class FakeProducer:
    """aiokafka's record-batch API, delivering each batch at the next offset of its partition."""

    def __init__(self, partitions: int = 4, batch_bytes: int = 16_384) -> None:
        self.client = FakeClient()
        self.partitions = partitions
        self.batch_bytes = batch_bytes
        self.sent: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []
        self.next_offset: dict[tuple[str, int], int] = {}
        self.fail = False

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_bytes, 0)

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        records = _records(batch)
        self.sent.append((topic, partition, records))
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(RuntimeError("broker said no"))
            return future
        base = self.next_offset.get((topic, partition), 0)
        self.next_offset[(topic, partition)] = base + len(records)
        tp = TopicPartition(topic, partition)
        future.set_result(RecordMetadata(topic, partition, tp, base, -1, 0, 0))
        return future


def _records(batch: BatchBuilder) -> list[tuple[bytes | None, bytes | None]]:
    from aiokafka.record.default_records import DefaultRecordBatch

    batch.close()
    records = DefaultRecordBatch(bytes(batch._build()))
    return [(record.key, record.value) for record in records]


def test_messages_keep_their_order_per_partition_and_report_the_last_offset() -> None:
    producer = FakeProducer()
    outgoing = Outgoing(lambda: producer)
    delivered: list[tuple[Any, int]] = []
    for i in range(5):
        outgoing.add("changelog", i % 2, f"k{i}".encode(), f"v{i}".encode(), _note(delivered))
    assert len(outgoing) == 5 and producer.sent == []
    assert asyncio.run(outgoing.send()) == 5
    by_partition = {partition: records for _, partition, records in producer.sent}
    assert by_partition == {
        0: [(b"k0", b"v0"), (b"k2", b"v2"), (b"k4", b"v4")],
        1: [(b"k1", b"v1"), (b"k3", b"v3")],
    }
    assert sorted(delivered) == [(TopicPartition("changelog", 0), 2),
                                 (TopicPartition("changelog", 1), 1)]  # fmt: skip
    assert len(outgoing) == 0 and asyncio.run(outgoing.send()) == 0


def test_a_full_record_batch_continues_in_the_next_one() -> None:
    producer = FakeProducer(batch_bytes=200)
    outgoing = Outgoing(lambda: producer)
    delivered: list[tuple[Any, int]] = []
    for i in range(30):
        outgoing.add("changelog", 3, None, b"x" * 40 + str(i).encode(), _note(delivered))
    asyncio.run(outgoing.send())
    assert len(producer.sent) > 1
    values = [value for _, _, records in producer.sent for _, value in records]
    assert values == [b"x" * 40 + str(i).encode() for i in range(30)]
    assert delivered[-1] == (TopicPartition("changelog", 3), 29)


def test_keyed_messages_go_where_kafkas_partitioner_sends_them() -> None:
    producer = FakeProducer(partitions=6)
    outgoing = Outgoing(lambda: producer)
    keys = [f"c{i:05d}".encode() for i in range(40)]
    for key in keys:
        outgoing.add_keyed("records", key, b"{}")
    for _ in range(6):
        outgoing.add_keyed("dead", None, b"{}")
    assert len(outgoing) == 46
    asyncio.run(outgoing.send())
    for topic, partition, records in producer.sent:
        for key, _ in records:
            if topic == "records":
                assert key is not None and key_partition(key, 6) == partition
    dead_partitions = sorted(p for topic, p, _ in producer.sent if topic == "dead")
    assert dead_partitions == list(range(6))  # key-less messages are spread, not piled on one


def test_a_failed_delivery_raises_so_the_batch_is_never_committed() -> None:
    producer = FakeProducer()
    producer.fail = True
    outgoing = Outgoing(lambda: producer)
    outgoing.add("changelog", 0, b"k", b"v")
    with pytest.raises(RuntimeError, match="broker said no"):
        asyncio.run(outgoing.send())


def test_changelog_bytes_are_what_faust_itself_would_write() -> None:
    """Recovery decodes these with Faust's codecs: keys and values must be Faust's own bytes."""
    from stream.pipeline import Pipeline
    from stream.processing import customer_record
    from stream.processing.customer_state import CustomerState

    pipeline = Pipeline(load_settings(environ={}), "127.0.0.1:1")
    customers = pipeline.customers_table
    record = customer_record.encode(CustomerState("c000042", newest_ms=1_700_000_000_000))
    topic = customers.changelog_topic
    assert raw_key(b"c000042") == topic.prepare_key(b"c000042", customers.key_serializer)[0]
    assert raw_value(record) == topic.prepare_value(record, customers.value_serializer)[0]
    aggregates = pipeline.aggregates_table
    values: list[Any] = [
        {"totals": {"conversions": 3.0, "value": 1e-7, "wm": 17}, "invalid_offsets": {"t": 9}},
        {"linear": {"email": [0.1 + 0.2, 12.5]}, "é": "ünïcode"},
        1_700_000_000_000,
        [],
    ]
    topic = aggregates.changelog_topic
    key = "3|credits|2026-01-02"
    assert table_json(key) == topic.prepare_key(key, aggregates.key_serializer)[0]
    for value in values:
        assert table_json(value) == topic.prepare_value(value, aggregates.value_serializer)[0]


def test_output_records_are_compact_sorted_json() -> None:
    assert (
        record_json({"b": 1, "a": [1.5, None], "c": "é"})
        == '{"a":[1.5,null],"b":1,"c":"é"}'.encode()
    )


def _note(delivered: list[tuple[Any, int]]) -> Any:
    return lambda tp, offset: delivered.append((tp, offset))


def test_a_batch_kafka_refuses_ends_the_worker_before_any_commit() -> None:
    """Carrying on would commit the batch's offsets: only an exit keeps it unread."""
    from stream.kafka.outgoing import SEND_FAILED_EXIT, send_or_exit

    producer = FakeProducer()
    producer.fail = True
    outgoing = Outgoing(lambda: producer)
    outgoing.add("changelog", 0, b"k", b"v")
    exits: list[int] = []
    stored: list[str] = []
    asyncio.run(send_or_exit(outgoing, lambda: stored.append("x"), exit=exits.append))
    assert exits == [SEND_FAILED_EXIT] and stored == []  # the stores never get the values
    healthy = Outgoing(lambda: FakeProducer())
    healthy.add("changelog", 0, b"k", b"v")
    assert asyncio.run(send_or_exit(healthy, lambda: stored.append("x"), exit=exits.append)) == 1
    assert exits == [SEND_FAILED_EXIT] and stored == ["x"]


def test_a_batch_cancelled_by_a_stop_is_finished_before_the_cancellation_goes_on() -> None:
    """A graceful stop cancels the agent: the batch in hand is still sent, then committed."""
    from stream.kafka.outgoing import finish_before_cancel

    steps: list[str] = []

    async def batch() -> None:
        steps.append("processing")
        await asyncio.sleep(0.05)  # e.g. waiting for Kafka to take the record batches
        steps.append("sent")

    async def agent() -> None:
        await finish_before_cancel(batch())

    async def stop() -> None:
        task = asyncio.ensure_future(agent())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        steps.append("stopped")

    asyncio.run(stop())
    assert steps == ["processing", "sent", "stopped"]
