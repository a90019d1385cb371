"""Validate events and send them to their topics, keyed for co-partitioning."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from attribution.events import AnyRecord, InvalidRecord, parse_record
from crm_attribution.settings.typed import KafkaSettings, Settings
from stream.kafka.security import kafka_python_args
from stream.topics import destinations, raw_route


@dataclass
class Rejected:
    """A record that was not sent: where it was in the input and why."""

    line: int
    reason: str


@dataclass
class ProduceReport:
    """What a produce run sent and rejected."""

    sent: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)
    sent_unvalidated: int = 0


class DeliveryError(RuntimeError):
    """Some records were handed to the producer but never acknowledged by Kafka."""


class EventProducer:
    """A kafka-python producer tuned for throughput, closed (and checked) by the context manager.

    A record Kafka does not acknowledge within ``delivery_timeout_ms`` (retrying all the while,
    e.g. while a just-created topic gets its leader) is counted, and closing raises
    :class:`DeliveryError`: a produce run never reports as sent what Kafka did not take.
    """

    def __init__(self, bootstrap: str, kafka: KafkaSettings) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="crm-attribution-producer",
            acks=1,
            linger_ms=5,
            batch_size=256 * 1024,
            max_in_flight_requests_per_connection=1,  # keeps per-partition order under retries
            # Retry until the delivery timeout (kafka-python's default). A fixed count of five
            # once gave up on a just-created topic and lost 359 records without a word.
            delivery_timeout_ms=120_000,
            **kafka_python_args(kafka),
        )
        self.failed = 0
        self.first_failure: str | None = None

    def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        """Queue one record (``partition`` None: the key's)."""
        future = self.producer.send(topic, key=key, value=value, partition=partition)
        future.add_errback(self._on_failure, topic)

    def _on_failure(self, topic: str, error: BaseException) -> None:
        self.failed += 1
        if self.first_failure is None:
            self.first_failure = f"{topic}: {error!r}"

    def close(self) -> None:
        """Send what is queued, close, and raise :class:`DeliveryError` if anything was lost."""
        self.producer.flush()
        self.producer.close()
        if self.failed:
            raise DeliveryError(
                f"Kafka did not acknowledge {self.failed} record(s) (first: {self.first_failure}); "
                "the topics miss them: check the broker, then produce the file again"
            )

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.producer.close()


def produce_lines(
    lines: Iterable[tuple[int, str]],
    producer: EventProducer,
    settings: Settings,
    *,
    send_invalid: bool = False,
    on_record: Callable[[], None] | None = None,
) -> ProduceReport:
    """Validate and send JSON lines (line number, text); invalid ones are reported, not sent.

    With ``send_invalid`` the invalid ones are sent too, unchanged, so that the stream's
    dead-letter handling can be exercised end to end.
    """
    report = ProduceReport()
    for number, text in lines:
        if on_record is not None:
            on_record()
        if not text.strip():
            continue
        try:
            event = parse_record(json.loads(text))
        except json.JSONDecodeError as error:
            reason = f"not valid JSON: {error}"
            event = None
        except InvalidRecord as error:
            reason = error.reason
            event = None
        if event is None:
            if send_invalid:
                topic, key = raw_route(text, settings)
                producer.send(topic, key, text.encode("utf-8"))
                report.sent_unvalidated += 1
            else:
                report.rejected.append(Rejected(number, reason))
            continue
        _send(producer, event, text.encode("utf-8"), settings, report)
    return report


def _send(
    producer: EventProducer,
    event: AnyRecord,
    value: bytes,
    settings: Settings,
    report: ProduceReport,
) -> None:
    """Send one event where it goes (a rate: to every partition of two topics), counted once."""
    where = destinations(event, settings)
    for topic, key, partition in where:
        producer.send(topic, key, value, partition)
    report.sent[where[0][0]] += 1


def produce_events(
    events: Iterable[AnyRecord],
    producer: EventProducer,
    settings: Settings,
    on_record: Callable[[], None] | None = None,
) -> ProduceReport:
    """Send already validated events (from CSV or Parquet) as JSON."""
    report = ProduceReport()
    for event in events:
        if on_record is not None:
            on_record()
        _send(producer, event, json.dumps(event.to_record()).encode("utf-8"), settings, report)
    return report
