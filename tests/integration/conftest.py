"""Fixtures shared by the real-broker tests of this package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.kafka.admin import ensure_topics
from stream.kafka.producer import EventProducer, produce_lines
from tests.integration.stream_harness import API_TOKEN, Worker, get_json, unique_env, wait_until

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules that use ``api_worker`` last in this package, one after the other.

    The package-scoped worker stops at the package's end: run last, it does not sit idle
    (ticks, refreshes) through the long invariant tests. The order changes nothing else.
    """
    inside = [i for i, item in enumerate(items) if item.path.parent == HERE]
    block = [items[i] for i in inside]
    users = {item.path for item in block if "api_worker" in getattr(item, "fixturenames", ())}
    reordered = [item for item in block if item.path not in users]
    reordered += [item for item in block if item.path in users]
    for index, item in zip(inside, reordered, strict=True):
        items[index] = item


@pytest.fixture(scope="package")
def api_worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker with the tests' token, a small log drained, no request limit; tests only read.

    Shared by the API access and the API fuzz tests: each used to start its own worker on its
    own log (a worker start and drain is the slow part of both). No limit, so the fuzz's
    hundreds of requests reach the routes; the 429 checks run on a worker with a limit
    (test_api_access.py's token-file test). Its teardown checks that the worker, after every
    test's requests, still stops cleanly and never logged the token.
    """
    env = {**unique_env(partitions=2), "CRM_API__REQUESTS_PER_MINUTE": "0"}
    settings = load_settings(environ=env)
    ensure_topics(kafka_bootstrap, settings)
    lines = list(generate(GeneratorConfig(customers=40, days=20, seed=2)))
    with EventProducer(kafka_bootstrap, settings.kafka) as producer:
        produce_lines(list(enumerate(lines, 1)), producer, settings)
    worker = Worker(kafka_bootstrap, env, tmp_path_factory.mktemp("api-worker"), "api").start()
    try:
        wait_until(
            lambda: get_json(f"{worker.url}/ready", token=None)[0] == 200, 180, "ready", [worker]
        )
        wait_until(
            lambda: (get_json(f"{worker.url}/totals")[1] or {}).get("conversions"),
            180,
            "events processed",
            [worker],
        )
        yield worker
        assert worker.alive(), f"the shared API worker died:\n{worker.log_tail()}"
        assert worker.stop() == 0, worker.log_tail()
        assert API_TOKEN not in worker.log_path.read_text(errors="replace")
    finally:
        if worker.alive():
            worker.stop()
