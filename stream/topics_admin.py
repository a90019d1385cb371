"""Create the pipeline's topics with the configured partition counts."""

from __future__ import annotations

import contextlib

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from config.settings import Settings


def topic_names(settings: Settings) -> list[str]:
    """Every topic the pipeline reads or writes, the expiry ticks included.

    Faust does not create the topics its agents read, and a broker that auto-creates them would
    use its default partition count, breaking the co-partitioning the pipeline relies on.
    """
    t = settings.topics
    ticks = f"{settings.worker.app_id}-ticks"
    return [
        t.touchpoints,
        t.purchases,
        t.costs,
        t.assignments,
        t.dead_letter,
        t.attributions,
        ticks,
    ]


def ensure_topics(bootstrap: str, settings: Settings, timeout_s: float = 10.0) -> list[str]:
    """Create missing topics (one replica, configured partitions); return the ones created."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="crm-attribution-admin",
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
    )
    try:
        existing = set(admin.list_topics())
        wanted = [name for name in topic_names(settings) if name not in existing]
        if wanted:
            topics = [
                NewTopic(name, num_partitions=settings.topics.partitions, replication_factor=1)
                for name in wanted
            ]
            # Another client may create them at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(topics)
        return wanted
    finally:
        admin.close()
