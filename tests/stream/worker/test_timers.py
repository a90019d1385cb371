"""The watermark-tick timer while the broker is away: the tick is skipped, the worker lives."""

from __future__ import annotations

import asyncio
import logging
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.ticks import TickSender
from stream.worker import timers


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_tick_with_no_broker_is_skipped_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def newest(pipeline: Any) -> int:
        return 1_700_000_000_000

    monkeypatch.setattr(timers, "newest_event_time", newest)
    sender = TickSender(f"127.0.0.1:{closed_port()}", KafkaSettings())
    pipeline: Any = SimpleNamespace(
        tick_sender=sender, topic_names=SimpleNamespace(ticks="ticks"), partitions=2
    )
    with caplog.at_level(logging.WARNING, logger="crm_attribution.stream"):
        asyncio.run(timers.send_ticks(pipeline))
    assert "watermark tick skipped: Kafka unreachable" in caplog.text
    # The producer that could not bootstrap is not kept: the next tick starts a new one.
    assert sender._producer is None
