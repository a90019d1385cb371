"""A worker whose graceful stop cannot finish exits anyway, and says why."""

from __future__ import annotations

import logging
import threading

import pytest

from stream.ops import shutdown as shutdown


def test_watchdog_exits_with_its_status_once_the_timeout_passes(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutdown, "_watchdog", [])
    exited = threading.Event()
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        exited.set()

    with caplog.at_level(logging.ERROR, logger="crm_attribution.stream"):
        timer = shutdown.start_shutdown_watchdog(0.05, exit=fake_exit)
        # A second signal does not start a second clock.
        assert shutdown.start_shutdown_watchdog(0.05, exit=fake_exit) is timer
        assert exited.wait(5)
    assert codes == [shutdown.SHUTDOWN_TIMEOUT_EXIT]
    assert "did not finish in 0 s" in caplog.text and "broker" in caplog.text
