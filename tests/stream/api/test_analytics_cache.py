"""`/analytics` on the real broker: kept while no worker's data changes, outdated within the
rebuild budget (and saying so), rebuilt by `fresh=1` after one event."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.kafka.admin import ensure_topics
from stream.kafka.producer import EventProducer, produce_lines
from tests.integration.stream_harness import (
    API_TOKEN,
    Worker,
    get_json,
    unique_env,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def analytics(worker: Worker, fresh: bool = False) -> dict[str, Any]:
    """The worker's /analytics answer; ``fresh``: the exact one for the data now."""
    status, body = get_json(f"{worker.url}/analytics{'?fresh=1' if fresh else ''}", timeout=120)
    assert status == 200, body
    return dict(body)


def freshness(worker: Worker) -> tuple[dict[str, Any], str, str]:
    """A plain /analytics answer, its X-Data-Version and its X-Newer-Data."""
    request = urllib.request.Request(
        f"{worker.url}/analytics", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        headers = response.headers
        return json.loads(response.read()), headers["X-Data-Version"], headers["X-Newer-Data"]


def builds(worker: Worker) -> tuple[int, int]:
    """(answers built, answers served from the cache) by this worker so far."""
    status, body = get_json(f"{worker.url}/metrics-json")
    assert status == 200, body
    return int(body["analytics_built"]), int(body["analytics_served_kept"])


def test_analytics_is_kept_until_one_event_changes_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    # A rebuild budget so small that, once built, an answer is rebuilt only when asked fresh.
    env = {**unique_env(partitions=4), "CRM_ANALYTICS__REBUILD_CPU_SHARE": "0.0001"}
    settings = load_settings(environ=env)
    ensure_topics(kafka_bootstrap, settings)
    lines = list(generate(GeneratorConfig(customers=300, days=5, seed=5)))
    # Two workers: the version of the other one's data travels by /internal/version.
    running = [Worker(kafka_bootstrap, env, tmp_path, f"w{i}").start() for i in range(2)]
    try:
        for worker in running:
            wait_until(lambda w=worker: get_json(f"{w.url}/ready")[0] == 200, 180, "ready", running)
        with EventProducer(kafka_bootstrap, settings.kafka) as producer:
            sent = sum(produce_lines(list(enumerate(lines, 1)), producer, settings).sent.values())

        def consumed() -> int:
            return sum(int(get_json(f"{w.url}/metrics-json")[1]["events_in"]) for w in running)

        wait_until(lambda: consumed() >= sent, 180, "the log to be read", running)
        first, second = running
        previous: list[dict[str, Any]] = []

        def settled() -> bool:
            # Expiry ticks keep arriving; the answer settles once every journey is decided.
            # fresh: within the rebuild budget two polls may repeat a kept, outdated answer.
            previous.append(analytics(first, fresh=True))
            return len(previous) > 1 and previous[-1] == previous[-2]

        wait_until(settled, 120, "/analytics to stop changing", running)
        answer = previous[-1]
        built, kept = builds(first)
        for _ in range(3):
            assert analytics(first) == answer
        # Ticks went on arriving (every 2 s) and the other worker was asked for its version
        # each time; nothing was rebuilt. Unchanged data: the kept answer is exact, with or
        # without fresh, whatever the rebuild budget.
        assert analytics(first, fresh=True) == answer
        exact, version, newer = freshness(first)
        assert (exact, newer) == (answer, "false")
        assert builds(first) == (built, kept + 5)
        assert analytics(second, fresh=True) == answer  # its own cache, from the same data

        # One purchase more, of a customer of the log, an hour after its newest event.
        template = json.loads(next(line for line in reversed(lines) if '"purchase"' in line))
        newest = max(record["ts"] for record in map(json.loads, lines) if "ts" in record)
        purchase = {
            **template,
            "event_id": "p-one-more",
            "order_id": "o-one-more",
            "amount": 123.45,
            "ts": an_hour_after(newest),
        }
        with EventProducer(kafka_bootstrap, settings.kafka) as producer:
            produce_lines([(1, json.dumps(purchase))], producer, settings)
        # Within the budget: the kept answer, saying it is outdated and built from what.
        wait_until(lambda: freshness(first)[2] == "true", 120, "newer data", running)
        assert freshness(first) == (answer, version, "true")
        assert builds(first)[0] == built
        changed = wait_until(
            lambda: (lambda now: now if now != answer else None)(analytics(first, fresh=True)),
            120,
            "/analytics to show the new purchase",
            running,
        )
        before = answer["revenue_share"]["total_revenue"]
        assert changed["revenue_share"]["total_revenue"] == pytest.approx(before + 123.45)
        assert builds(first)[0] > built
        # Now kept for the data now: exact again, another version.
        now = freshness(first)
        assert now[0] == changed and now[1] != version and now[2] == "false"
    finally:
        for worker in running:
            if worker.alive():
                worker.stop()


def an_hour_after(ts: str) -> str:
    """The ISO time an hour after ``ts``."""
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00")) + timedelta(hours=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
