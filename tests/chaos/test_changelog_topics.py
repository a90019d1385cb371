"""The tables' changelogs exist before a worker starts, so every group leader can assign them.

The broker-restart chaos run that lost 7 of 484 conversions: Faust created the aggregates
changelog at the worker's start, the group leader's consumer metadata (fetched a moment
before the broker listed the topic, and not refreshed for minutes) did not have it, and
Faust's assignor left the table out of every assignment ("Ignoring missing topic"). After the
rebalance that followed the broker's return, the new owner of partitions 0 and 1 never
recovered their aggregates and started them empty.
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from crm_attribution.settings.typed import load_settings
from stream.kafka.admin import changelog_topics, ensure_topics
from tests.integration.stream_harness import unique_env

pytestmark = pytest.mark.kafka


def topic_config(admin: KafkaAdminClient, topic: str) -> dict[str, Any]:
    """The topic's configuration (every key) as the broker describes it."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    described = admin.describe_configs([resource], config_filter="all")
    (by_name,) = described.values()
    return {
        key: data["value"] if isinstance(data, dict) else data
        for key, data in by_name[topic].items()
    }


def test_ensure_topics_creates_the_changelogs_compacted_with_the_partition_count(
    kafka_bootstrap: str,
) -> None:
    settings = load_settings(environ=unique_env(partitions=3))
    changelogs = changelog_topics(settings)
    assert [c.rsplit("-", 2)[-2] for c in changelogs] == ["customers", "aggregates"]
    created = ensure_topics(kafka_bootstrap, settings)
    assert set(changelogs) <= set(created)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert set(changelogs) <= set(admin.list_topics())
        for topic in admin.describe_topics(changelogs):
            assert len(topic["partitions"]) == 3, topic
        for changelog in changelogs:
            assert topic_config(admin, changelog)["cleanup.policy"] == "compact"
        # An input topic keeps the broker's default policy.
        assert topic_config(admin, settings.topics.purchases)["cleanup.policy"] == "delete"
    finally:
        admin.close()
    assert ensure_topics(kafka_bootstrap, settings) == []  # all there: nothing created again
