"""An assignment whose input partitions come without their changelog partitions is refused."""

from __future__ import annotations

from pathlib import Path

from stream.worker.assignment import refusal, unrecovered_changelogs

INPUTS = ["crm-touchpoints", "crm-purchases", "app-ticks"]
CHANGELOGS = {"app-customers-changelog", "app-aggregates-changelog"}


def test_a_full_assignment_is_accepted() -> None:
    assigned = [
        (topic, p)
        for p in (0, 1)
        for topic in [*INPUTS, "app-customers-changelog", "app-aggregates-changelog"]
    ]
    assert unrecovered_changelogs(assigned, INPUTS, CHANGELOGS) == []
    # Changelog partitions alone (standbys, or no input partition at all): nothing to refuse.
    assert unrecovered_changelogs([("app-customers-changelog", 3)], INPUTS, CHANGELOGS) == []


def test_the_changelog_the_leader_did_not_know_is_named_per_partition() -> None:
    # The broker-restart chaos run: the leader's metadata lacked the aggregates changelog, so
    # workers got input and customers-changelog partitions but no aggregates-changelog ones.
    assigned = [
        (topic, p) for p in (0, 1) for topic in [*INPUTS, "app-customers-changelog", "other"]
    ]
    missing = unrecovered_changelogs(assigned, INPUTS, CHANGELOGS)
    assert missing == ["app-aggregates-changelog[0]", "app-aggregates-changelog[1]"]
    line = refusal(missing)
    assert "app-aggregates-changelog[0], app-aggregates-changelog[1];" in line
    assert "\n" not in line


def test_a_long_list_is_cut_with_a_count() -> None:
    missing = [f"c[{p}]" for p in range(7)]
    assert "c[0], c[1], c[2], c[3] and 3 more" in refusal(missing)


def test_the_consumer_refreshes_its_metadata_within_seconds(tmp_path: Path) -> None:
    # A leader's metadata without the topics (fetched while the broker was away) assigned
    # nothing at all in a chaos run; aiokafka's own default would keep it for 5 minutes.
    from crm_attribution.settings.typed import load_settings
    from stream.pipeline import METADATA_MAX_AGE_MS, Pipeline

    pipeline = Pipeline(load_settings(environ={}), "127.0.0.1:1", data_dir=str(tmp_path))
    assert pipeline.app.conf.consumer_metadata_max_age_ms == METADATA_MAX_AGE_MS <= 15_000
