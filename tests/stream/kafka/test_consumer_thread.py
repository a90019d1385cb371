"""The worker's consumer asks the broker to hold a fetch at most worker.fetch_max_wait_ms."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest

from crm_attribution.settings.typed import load_settings
from stream.kafka.committed_reads import ReadCommittedConsumerThread
from stream.kafka.consumer_thread import InputConsumerThread
from stream.kafka.feed import InputFeed, use_input_feed
from stream.pipeline import Pipeline


@pytest.mark.parametrize("read_committed", [True, False])
def test_the_worker_consumer_waits_at_most_the_setting(
    read_committed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The setting lands on the class (Faust makes the thread): restored after the test.
    monkeypatch.setattr(InputConsumerThread, "fetch_max_wait_ms", 1500)
    app = faust.App(f"fetch-wait-{read_committed}", broker="kafka://127.0.0.1:1")
    use_input_feed(
        app, InputFeed(["events"], 10), read_committed=read_committed, fetch_max_wait_ms=250
    )
    thread = app.consumer._new_consumer_thread()
    assert isinstance(thread, InputConsumerThread)
    assert isinstance(thread, ReadCommittedConsumerThread) is read_committed
    consumer = asyncio.run(_created(thread, app))
    # Faust's own 1,500 ms would let the broker hold records already written that long.
    assert consumer._fetch_max_wait_ms == 250
    assert consumer._isolation_level == ("read_committed" if read_committed else "read_uncommitted")


def test_the_pipeline_passes_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(InputConsumerThread, "fetch_max_wait_ms", 1500)
    settings = load_settings(environ={"CRM_WORKER__FETCH_MAX_WAIT_MS": "40"})
    pipeline = Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path))
    thread = pipeline.app.consumer._new_consumer_thread()
    assert asyncio.run(_created(thread, pipeline.app))._fetch_max_wait_ms == 40
    assert load_settings(environ={}).worker.fetch_max_wait_ms == 100  # latency under 1 s


async def _created(thread: InputConsumerThread, app: Any) -> Any:
    """The aiokafka consumer the thread would start (made in a loop, as aiokafka wants)."""
    consumer = thread._create_worker_consumer(app.transport)
    await consumer._client.close()
    return consumer
