"""Shared fixtures: the real Kafka broker for tests marked ``kafka``."""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from crm_attribution.settings.typed import load_settings


class _SessionBroker:
    """A broker owned by this test session, stopped exactly once however the session ends."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._stopped = False
        self._previous: dict[int, Any] = {}

    def start(self) -> str:
        from stream.broker.launcher import start_broker

        self._install_handlers()
        info = start_broker(
            load_settings(),
            state_dir=self.state_dir,
            data_dir=self.state_dir / "data",
            fresh=True,
            # If this session is killed outright the kernel stops the JVM (die_with_parent),
            # and the next start anywhere reaps it as an orphan of this PID.
            owner_pid=os.getpid(),
            die_with_parent=True,
        )
        return info.bootstrap

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        from stream.broker.launcher import stop_broker

        stop_broker(load_settings(), state_dir=self.state_dir, grace_s=20.0)

    def _install_handlers(self) -> None:
        atexit.register(self.stop)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(sig)
            self._previous[sig] = previous
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()
        previous = self._previous.get(signum)
        if callable(previous):
            handler: Callable[[int, FrameType | None], Any] = previous
            handler(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        # Default action after cleanup: die by the same signal.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Kafka bootstrap address: KAFKA_BOOTSTRAP_SERVERS, else a fresh local broker.

    A broker that cannot start fails every test that needs it; it never skips.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    from stream.broker.launcher import BrokerError

    # Its own state directory: a user's `crm-attribution broker start` is neither reused
    # nor stopped by the tests.
    broker = _SessionBroker(tmp_path_factory.mktemp("kafka-broker"))
    try:
        try:
            bootstrap = broker.start()
        except BrokerError as error:
            pytest.fail(
                f"the local Kafka broker for the tests did not start: {error}", pytrace=False
            )
        yield bootstrap
    finally:
        broker.stop()
