"""The worker's consumer thread: Faust's, with a fetch wait the worker chooses.

Faust builds its consumer with ``fetch_max_wait_ms=1500`` and no setting to change it. That is
how long the broker may hold a fetch before answering, and it does hold one for the full wait
at times while the input partitions have records to give (the embedded Kafka 4 broker, a
worker reading ``read_committed``, docs/benchmarks.md 2026-12-07 21:45): the agent then waits
1.5 s for records already written, and a steady stream at half the drain rate saw purchases
credited 1.1-3.7 s after they were written (p99) in 15 of 19 runs. ``worker.fetch_max_wait_ms``
bounds that wait; its default, 100, met the latency goal in every run. (A hang first seen
with 100, the second worker of the two-worker backlog test holding its journeys for good, was
traced to the backlog learning where a partition starts before Faust knew the committed
offset, which the shorter wait makes likelier; fixed in stream/processing/backlog.py, after
which that test passed 4 of 4 runs with 100, where it had hung on the first.)
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka


class InputConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, with the worker's fetch wait."""

    # Set by use_input_feed (stream/kafka/feed.py) from worker.fetch_max_wait_ms; Faust's own
    # value for a consumer made outside the pipeline.
    fetch_max_wait_ms: int = 1500

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The fetcher is built from this attribute when the consumer starts.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer
