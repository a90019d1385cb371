"""Waiting for newly created topics to show up in the broker's metadata."""

from __future__ import annotations

from typing import Any, cast

import pytest

from stream.kafka.admin import wait_until_listed


class LaggingAdmin:
    """Lists the topics only from the n-th call on, like a broker whose metadata lags."""

    def __init__(self, topics: list[str], visible_from_call: int) -> None:
        self.topics = topics
        self.visible_from_call = visible_from_call
        self.calls = 0

    def list_topics(self) -> list[str]:
        self.calls += 1
        return self.topics if self.calls >= self.visible_from_call else []


def test_waits_until_the_broker_lists_every_topic() -> None:
    admin = LaggingAdmin(["a", "b"], visible_from_call=3)
    wait_until_listed(cast(Any, admin), ["a", "b"], timeout_s=10)
    assert admin.calls == 3


def test_names_the_topics_still_missing_when_time_runs_out() -> None:
    admin = LaggingAdmin(["a"], visible_from_call=1)
    with pytest.raises(TimeoutError, match=r"\['b'\].*still does not list them"):
        wait_until_listed(cast(Any, admin), ["a", "b"], timeout_s=0.3)


def test_names_each_topic_whose_partition_count_differs_with_both_counts() -> None:
    from stream.kafka.admin import partition_mismatches

    counts = {"crm-purchases": 1, "crm-touchpoints": 4, "app-customers-changelog": 8}
    assert partition_mismatches(counts, 4) == [
        "topic app-customers-changelog has 8 partitions, topics.partitions is 4",
        "topic crm-purchases has 1 partition, topics.partitions is 4",
    ]
    assert partition_mismatches({"a": 2, "b": 2}, 2) == []


def test_inputs_ticks_and_changelogs_are_co_partitioned_and_outputs_are_not() -> None:
    from crm_attribution.settings.typed import load_settings
    from stream.kafka.admin import co_partitioned_topics

    settings = load_settings(environ={"CRM_WORKER__APP_ID": "app"})
    topics = co_partitioned_topics(settings)
    assert set(topics) == {
        "crm-touchpoints",
        "crm-purchases",
        "crm-costs",
        "crm-assignments",
        "app-ticks",
        "app-customers-changelog",
        "app-aggregates-changelog",
    }
