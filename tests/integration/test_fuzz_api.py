"""The worker's HTTP API, fuzzed from its OpenAPI description on the real broker: no 5xx.

The short version (a few cases per operation and mode); docs/reliability.md has the long run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.api.access import internal_secret
from stream.kafka.admin import ensure_topics
from stream.kafka.producer import EventProducer, produce_lines
from tests.fuzz.api_fuzz import fuzz_api
from tests.integration.stream_harness import API_TOKEN, Worker, get_json, unique_env, wait_until

pytestmark = pytest.mark.kafka
# Cases per operation and mode; CRM_FUZZ_EXAMPLES=300 is the long run of docs/reliability.md.
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "15"))


def test_fuzzed_requests_get_no_server_error(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**unique_env(partitions=2), "CRM_API__REQUESTS_PER_MINUTE": "0"}
    settings = load_settings(environ=env)
    ensure_topics(kafka_bootstrap, settings)
    lines = list(generate(GeneratorConfig(customers=40, days=20, seed=2)))
    with EventProducer(kafka_bootstrap, settings.kafka) as producer:
        produce_lines(list(enumerate(lines, 1)), producer, settings)
    worker = Worker(kafka_bootstrap, env, tmp_path, "w0").start()
    try:
        wait_until(
            lambda: (get_json(f"{worker.url}/totals")[1] or {}).get("conversions"),
            180,
            "events processed",
            [worker],
        )
        secret = internal_secret(load_settings(environ={}), API_TOKEN)
        counts = fuzz_api(worker.url, API_TOKEN, secret, EXAMPLES)
        print(f"API fuzz: {counts.requests} requests, {counts.five_xx} 5xx, {dict(counts.by_mode)}")
        assert counts.requests >= 15 * 2 * EXAMPLES // 2, counts
        assert counts.five_xx == 0, counts.server_errors
        assert counts.statuses[200] and counts.statuses[400], counts.statuses
        assert worker.alive() and worker.stop() == 0, worker.log_tail()
    finally:
        if worker.alive():
            worker.stop()
