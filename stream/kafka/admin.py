"""Create the pipeline's topics with the configured partition counts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping

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


# Faust names a table's changelog <app_id>-<table>-changelog (tables: stream/pipeline.py).
CHANGELOG_TABLES = ("customers", "aggregates")


# The changelog topics' configuration, as Faust's own topic creation sets it for a table.
COMPACTED = {"cleanup.policy": "compact"}


class TopicMismatch(RuntimeError):
    """A co-partitioned topic exists with another partition count than the configured one."""


def changelog_topics(settings: Settings) -> list[str]:
    """The tables' changelog topics, as Faust names them."""
    app_id = settings.worker.app_id
    return [f"{app_id}-{table}-changelog" for table in CHANGELOG_TABLES]


def co_partitioned_topics(settings: Settings) -> list[str]:
    """Topics whose partition P must be partition P of the others: inputs, ticks, changelogs.

    One agent reads every input topic so that partition P of each lands on one worker, and a
    table's changelog partition P is what the owner of input partition P recovers. The output
    topics (dead letters, attributions) may have any count.
    """
    return TopicNames.from_settings(settings).inputs() + changelog_topics(settings)


def partition_mismatches(counts: Mapping[str, int], expected: int) -> list[str]:
    """One line per topic in ``counts`` whose partition count is not ``expected``."""
    return [
        f"topic {name} has {count} partition{'s' if count != 1 else ''}, "
        f"topics.partitions is {expected}"
        for name, count in sorted(counts.items())
        if count != expected
    ]


def check_partition_counts(admin: KafkaAdminClient, settings: Settings) -> None:
    """Raise :class:`TopicMismatch` naming every co-partitioned topic with another count.

    A worker on such topics reads a partition its tables and peers do not expect: a customer
    topic auto-created with one partition made a worker read one batch and stall while /ready
    said true. Nothing is changed: repartitioning moves customers, which the owner must decide.
    """
    expected = settings.topics.partitions
    existing = set(admin.list_topics())
    names = [name for name in co_partitioned_topics(settings) if name in existing]
    # kafka-python 3 names the field "name", 2.x "topic".
    counts = {
        str(topic.get("name") or topic.get("topic")): len(topic["partitions"])
        for topic in admin.describe_topics(names)
    }
    problems = partition_mismatches(counts, expected)
    if problems:
        raise TopicMismatch(
            "; ".join(problems)
            + ". Every input and changelog topic needs the configured partition count: "
            "recreate the topic with it, or set topics.partitions (CRM_TOPICS__PARTITIONS) to "
            "the count the topics share"
        )


def ensure_topics(bootstrap: str, settings: Settings, timeout_s: float = 10.0) -> list[str]:
    """Create missing topics (configured partitions and replicas); return the ones created.

    The tables' changelogs too (compacted, as Faust makes them), before any worker's consumer
    asks for metadata: a changelog that Faust creates at start can still be missing from the
    group leader's metadata when it assigns partitions, and Faust's assignor then leaves that
    table out ("Ignoring missing topic"): no worker recovers it after a rebalance, and a new
    owner of a partition starts the table empty (conversions were lost that way in a
    broker-restart chaos run). aiokafka refreshes that metadata only every few minutes.

    Raises :class:`TopicMismatch` when an existing input or changelog topic has another
    partition count than ``topics.partitions``.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="crm-attribution-admin",
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
        **kafka_python_args(settings.kafka),
    )
    try:
        existing = set(admin.list_topics())
        changelogs = set(changelog_topics(settings))
        wanted = [
            name for name in topic_names(settings) + sorted(changelogs) if name not in existing
        ]
        if wanted:
            topics = [
                NewTopic(
                    name,
                    num_partitions=settings.topics.partitions,
                    replication_factor=settings.topics.replication_factor,
                    topic_configs=COMPACTED if name in changelogs else {},
                )
                for name in wanted
            ]
            # Another client may create them at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(topics)
            wait_until_listed(admin, wanted, timeout_s)
        check_partition_counts(admin, settings)
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
