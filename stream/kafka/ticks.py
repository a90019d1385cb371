"""Expiry ticks: the leader worker sends one to every partition of the ticks topic."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.security import aiokafka_args


class TickSender:
    """A plain producer, started on first use.

    Ticks are sent from a timer, outside any event: Faust's own producer would route them
    through its buffer and the next commit.
    """

    def __init__(self, bootstrap: str, kafka: KafkaSettings) -> None:
        self.bootstrap = bootstrap
        self.kafka = kafka
        self._producer: AIOKafkaProducer | None = None

    async def send(self, topic: str, partitions: int, value: bytes) -> None:
        """Send ``value`` to every partition of ``topic`` and wait until Kafka has them."""
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, linger_ms=0, **aiokafka_args(self.kafka)
            )
            try:
                await producer.start()
            except BaseException:
                # A producer that could not bootstrap (broker down) still holds a client:
                # close it, and start a new one on the next tick.
                await producer.stop()
                raise
            self._producer = producer
        for partition in range(partitions):
            await self._producer.send(topic, value=value, partition=partition)
        await self._producer.flush()

    async def close(self) -> None:
        """Stop the producer if it was started."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
