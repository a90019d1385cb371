"""SIGTERM stops a worker even when its broker has vanished (it used to hang forever)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from crm_attribution.settings.typed import load_settings
from stream.broker.launcher import start_broker, stop_broker
from stream.broker.procs import is_alive
from tests.integration.stream_harness import Worker, get_json, unique_env, wait_until

pytestmark = pytest.mark.kafka

TIMEOUT_S = 10


def test_worker_stops_within_its_timeout_after_the_broker_is_killed(tmp_path: Path) -> None:
    settings = load_settings()
    state = tmp_path / "broker-state"
    info = start_broker(
        settings,
        state_dir=state,
        data_dir=tmp_path / "broker-data",
        fresh=True,
        owner_pid=os.getpid(),
        die_with_parent=True,
    )
    worker = None
    try:
        env = {
            **unique_env(partitions=2),
            "CRM_WORKER__SHUTDOWN_TIMEOUT_SECONDS": str(TIMEOUT_S),
        }
        worker = Worker(info.bootstrap, env, tmp_path, "orphan").start()
        wait_until(lambda: get_json(f"{worker.url}/ready")[0] == 200, 180, "worker ready", [worker])
        os.kill(info.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while is_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # let the worker notice: fetches and heartbeats now fail
        started = time.monotonic()
        code = worker.stop(timeout=TIMEOUT_S + 30)  # raises if SIGTERM is ignored
        elapsed = time.monotonic() - started
        assert code in (0, 3), worker.log_tail()
        assert elapsed < TIMEOUT_S + 20, elapsed
        if code == 3:
            assert "did not finish" in worker.log_path.read_text(errors="replace")
    finally:
        if worker is not None and worker.alive():
            assert worker.process is not None
            os.killpg(worker.process.pid, signal.SIGKILL)
        stop_broker(settings, state_dir=state, grace_s=5.0)
