"""The worker's consumer thread: Faust's, with a fetch wait the worker chooses.

Faust builds its consumer with ``fetch_max_wait_ms=1500`` and no setting to change it. That is
how long the broker may hold a fetch before answering, and it does hold one for the full wait
at times while the input partitions have records to give (the embedded Kafka 4 broker, a
worker reading ``read_committed``, docs/benchmarks.md 2026-12-07 21:45): the agent then waits
1.5 s for records already written, and a steady stream at half the drain rate saw purchases
credited 1.1-3.7 s after they were written (p99) in 15 of 19 runs. ``worker.fetch_max_wait_ms``
bounds that wait (100 met the latency goal in 6 of 6 runs). Its default stays Faust's 1,500
for now: the first fresh-clone suite with 100 hung in the two-worker RocksDB backlog test (the
second worker held 2,448 journeys it never released), which the real-broker suite had passed
with 1,500 in every run; until that is understood, a lower wait is the operator's choice.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka


class InputConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, with the worker's fetch wait."""

    # Set by use_input_feed (stream/kafka/feed.py) from worker.fetch_max_wait_ms.
    fetch_max_wait_ms: int = 1500

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The fetcher is built from this attribute when the consumer starts.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer
