"""The event producer never reports as sent what Kafka did not acknowledge."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import NotLeaderForPartitionError
from kafka.future import Future

import stream.kafka.producer as producer_module
from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.producer import DeliveryError, EventProducer


class FlakyKafka:
    """kafka-python's producer surface; every ``fail_every``-th record is never acknowledged."""

    def __init__(self, fail_every: int, **config: Any) -> None:
        self.config = config
        self.fail_every = fail_every
        self.sent = 0
        self.closed = False
        self.records: list[tuple[str, bytes | None, int | None]] = []

    def send(
        self,
        topic: str,
        key: bytes | None = None,
        value: bytes | None = None,
        partition: int | None = None,
    ) -> Future:
        self.sent += 1
        self.records.append((topic, key, partition))
        future = Future()
        if self.sent % self.fail_every == 0:
            future.failure(NotLeaderForPartitionError())
        else:
            future.success(None)
        return future

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _producer(monkeypatch: pytest.MonkeyPatch, fail_every: int) -> EventProducer:
    monkeypatch.setattr(
        producer_module, "KafkaProducer", lambda **config: FlakyKafka(fail_every, **config)
    )
    return EventProducer("127.0.0.1:9", KafkaSettings())


def test_unacknowledged_records_make_the_run_fail_with_the_count_and_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with (
        pytest.raises(
            DeliveryError, match=r"did not acknowledge 3 record.*t-assignments.*NotLeader"
        ),
        _producer(monkeypatch, fail_every=4) as producer,
    ):
        for _i in range(12):
            producer.send("t-assignments", b"c1", b"{}")
    assert producer.producer.closed


def test_a_clean_run_closes_quietly_and_retries_until_the_delivery_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _producer(monkeypatch, fail_every=10**9) as producer:
        for _ in range(50):
            producer.send("t-touchpoints", b"c1", b"{}")
    assert producer.failed == 0 and producer.producer.closed
    # A fixed retry count once gave up on a just-created topic: none is set.
    assert "retries" not in producer.producer.config
    assert producer.producer.config["delivery_timeout_ms"] >= 60_000


def test_refunds_follow_their_customer_and_rates_go_to_every_purchases_and_costs_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crm_attribution.settings.typed import load_settings
    from stream.kafka.producer import produce_lines

    settings = load_settings(environ={"CRM_TOPICS__PARTITIONS": "3"})
    t = settings.topics
    lines = [
        '{"type":"refund","event_id":"r1","customer_id":"c1","order_id":"o1","amount":5,'
        '"ts":"2026-01-05T10:00:00Z"}',
        '{"type":"rate","event_id":"x1","currency":"USD","rate":0.9,"ts":"2026-01-01T00:00:00Z"}',
    ]
    with _producer(monkeypatch, fail_every=10**9) as producer:
        report = produce_lines(enumerate(lines, start=1), producer, settings)
        sent = producer.producer.records
    assert not report.rejected and report.sent == {t.purchases: 2}
    assert sent[0] == (t.purchases, b"c1", None)
    assert sorted(sent[1:]) == sorted(
        (topic, b"USD", p) for topic in (t.purchases, t.costs) for p in range(3)
    )
