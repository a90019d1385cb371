"""Offsets committed past records nobody processed: the worker reads them anyway.

This is what lost purchases in a restart test: Faust committed offsets beyond messages its
agent never saw. Here the group's offsets are committed half-way through every input partition
before any worker ran, so the first half was processed by no one; the worker must notice (it has
no record of those offsets) and read them directly, ending with the batch engine's answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from attribution.engine import attribute_events
from attribution.events import InvalidRecord, parse_event
from attribution.journeys import JourneyRules
from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.kafka.admin import ensure_topics
from stream.kafka.producer import EventProducer, produce_lines
from tests.compare import assert_same
from tests.integration.stream_harness import Worker, get_json, unique_env, wait_until

pytestmark = pytest.mark.kafka

MODELS = ["first_touch", "linear", "markov"]


def test_offsets_committed_past_unprocessed_records_are_read_anyway(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    lines = list(generate(GeneratorConfig(customers=800, days=10, seed=21)))
    env = {
        **unique_env(partitions=2),
        "CRM_ATTRIBUTION__LOOKBACK_DAYS": "3",
        "CRM_ATTRIBUTION__MODELS": ",".join(MODELS),
    }
    settings = load_settings(environ=env)
    ensure_topics(kafka_bootstrap, settings)
    with EventProducer(kafka_bootstrap, settings.kafka) as producer:
        produce_lines(list(enumerate(lines, start=1)), producer, settings)
    names = settings.topics
    inputs = [names.touchpoints, names.purchases, names.costs, names.assignments]
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=settings.worker.app_id,
        enable_auto_commit=False,
    )
    try:
        tps = [TopicPartition(t, p) for t in inputs for p in range(2)]
        ends = consumer.end_offsets(tps)
        assert sum(ends.values()) == len(lines)
        consumer.commit({tp: OffsetAndMetadata(end // 2, "", -1) for tp, end in ends.items()})
    finally:
        consumer.close()

    events = []
    for line in lines:
        try:
            event = parse_event(json.loads(line))
        except InvalidRecord:
            continue
        if event.type in ("touchpoint", "purchase"):
            events.append(event)
    a = settings.attribution
    rules = JourneyRules.from_days(a.lookback_days, None, a.allowed_lateness_hours)
    options = a.model_options
    batch = attribute_events(events, rules, MODELS, options).to_json()

    worker = Worker(kafka_bootstrap, env, tmp_path, "w0").start()
    try:
        expected = batch["totals"]

        def drained() -> bool:
            status, totals = get_json(f"{worker.url}/totals")
            return status == 200 and all(
                totals.get(k) == expected[k] for k in ("conversions", "null")
            )

        wait_until(drained, 600, "the worker to process both halves", [worker])
        status, stream = get_json(f"{worker.url}/attribution", timeout=120)
        assert status == 200, stream
        assert_same(stream, batch)
        log = worker.log_path.read_text(errors="replace")
        assert "were not recorded as processed; reading them directly" in log
        assert worker.stop() == 0, worker.log_tail()
    finally:
        if worker.alive():
            worker.stop()
