"""Create the pipeline's topics with the configured partition counts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from crm_attribution.settings.typed import Settings
from stream.kafka.security import kafka_python_args
from stream.topics import TopicNames


def topic_names(settings: Settings) -> list[str]:
    """Every topic the pipeline reads or writes, the expiry ticks included.

    Faust does not create the topics its agents read, and a broker that auto-creates them would
    use its default partition count, breaking the co-partitioning the pipeline relies on.
    """
    return TopicNames.from_settings(settings).all()


def ensure_topics(bootstrap: str, settings: Settings, timeout_s: float = 10.0) -> list[str]:
    """Create missing topics (one replica, configured partitions); return the ones created."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="crm-attribution-admin",
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
        **kafka_python_args(settings.kafka),
    )
    try:
        existing = set(admin.list_topics())
        wanted = [name for name in topic_names(settings) if name not in existing]
        if wanted:
            topics = [
                NewTopic(
                    name,
                    num_partitions=settings.topics.partitions,
                    replication_factor=settings.topics.replication_factor,
                )
                for name in wanted
            ]
            # Another client may create them at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(topics)
            wait_until_listed(admin, wanted, timeout_s)
        return wanted
    finally:
        admin.close()


def wait_until_listed(admin: KafkaAdminClient, names: Iterable[str], timeout_s: float) -> None:
    """Wait until the broker's metadata lists every topic in ``names``.

    CreateTopics answers once the controller has committed the topics; the broker that serves
    metadata learns of them a moment later, so a client that reads straight after may not see
    them yet.
    """
    missing = set(names)
    deadline = time.monotonic() + timeout_s
    while True:
        missing -= set(admin.list_topics())
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"topics {sorted(missing)} were created but the broker still does not list them "
                f"after {timeout_s:.0f} s"
            )
        time.sleep(0.1)
