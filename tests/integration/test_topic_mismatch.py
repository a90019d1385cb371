"""A worker whose topics have another partition count than configured refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from crm_attribution.settings.typed import load_settings
from stream.kafka.admin import TopicMismatch, ensure_topics, wait_until_listed
from tests.integration.stream_harness import REPO, unique_env

pytestmark = pytest.mark.kafka


def create(bootstrap: str, topics: dict[str, int]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, count, 1) for name, count in topics.items()])
        wait_until_listed(admin, list(topics), timeout_s=30)
    finally:
        admin.close()


def start_worker(bootstrap: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "crm_attribution", "worker", "--bootstrap", bootstrap],
        env={**os.environ, **env, "PYTHONPATH": path, "CRM_API__TOKEN": "t"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_input_topic_with_another_partition_count_stops_the_worker_at_start(
    kafka_bootstrap: str,
) -> None:
    # As any client that asks for a topic's metadata first makes it: one partition.
    env = unique_env(partitions=4)
    settings = load_settings(environ=env)
    create(kafka_bootstrap, {settings.topics.purchases: 1})
    done = start_worker(kafka_bootstrap, env)
    assert done.returncode == 6, done.stderr
    message = done.stderr.strip()
    assert f"topic {settings.topics.purchases} has 1 partition, topics.partitions is 4" in message
    assert "Traceback" not in message and len(message.splitlines()) == 1, message
    # The other topics were created as configured, and only the odd one is named.
    with pytest.raises(TopicMismatch) as raised:
        ensure_topics(kafka_bootstrap, settings)
    assert settings.topics.touchpoints not in str(raised.value)


def test_a_changelog_or_config_that_disagrees_is_named_with_both_counts(
    kafka_bootstrap: str,
) -> None:
    env = unique_env(partitions=2)
    settings = load_settings(environ=env)
    changelog = f"{settings.worker.app_id}-customers-changelog"
    create(kafka_bootstrap, {changelog: 3, settings.topics.attributions: 5})
    done = start_worker(kafka_bootstrap, env)
    assert done.returncode == 6, done.stderr
    assert f"topic {changelog} has 3 partitions, topics.partitions is 2" in done.stderr
    assert settings.topics.attributions not in done.stderr  # an output topic may differ

    # Every topic made with 2 partitions, then the worker configured for 4: each is named.
    env4 = {
        **env,
        "CRM_TOPICS__PARTITIONS": "4",
        "CRM_WORKER__APP_ID": env["CRM_WORKER__APP_ID"] + "x",
    }
    done = start_worker(kafka_bootstrap, env4)
    assert done.returncode == 6, done.stderr
    for topic in (settings.topics.touchpoints, settings.topics.purchases, settings.topics.costs):
        assert f"topic {topic} has 2 partitions, topics.partitions is 4" in done.stderr
