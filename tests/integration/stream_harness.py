"""Start stream workers as processes and read their answers, for the real-broker tests."""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Every worker the tests start gets this API token (unless its env names another), and
# get_json sends it: the routes need it (stream/api/access.py).
API_TOKEN = secrets.token_urlsafe(16)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def stop_with_parent() -> None:
    """In a child process before it runs: have Linux send it SIGTERM when its parent dies.

    Workers run in their own session (a test's SIGINT is not theirs), so a pytest that is
    killed (a CI timeout, a person stopping a hung test) left them running: on 2026-12-08 two
    such workers retried their vanished broker for 97 minutes beside every benchmark of the
    session. The signal goes when the thread that started the child exits: start workers
    from the main thread. Elsewhere than Linux this does nothing.
    """
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_env(partitions: int = 4) -> dict[str, str]:
    """Settings for an isolated run: own app id and topic names."""
    run = uuid.uuid4().hex[:8]
    return {
        "CRM_WORKER__APP_ID": f"crm-test-{run}",
        "CRM_TOPICS__TOUCHPOINTS": f"t-{run}-touchpoints",
        "CRM_TOPICS__PURCHASES": f"t-{run}-purchases",
        "CRM_TOPICS__COSTS": f"t-{run}-costs",
        "CRM_TOPICS__ASSIGNMENTS": f"t-{run}-assignments",
        "CRM_TOPICS__DEAD_LETTER": f"t-{run}-dead-letter",
        "CRM_TOPICS__ATTRIBUTIONS": f"t-{run}-attributions",
        "CRM_TOPICS__PARTITIONS": str(partitions),
        "CRM_ATTRIBUTION__MARKOV_REFRESH_SECONDS": "5",
    }


class Worker:
    """One `crm-attribution worker` process."""

    def __init__(self, bootstrap: str, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.data_dir = log_dir / f"{name}-data"
        self.bootstrap, self.env, self.name = bootstrap, env, name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        """Launch the process."""
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "CRM_API__TOKEN": API_TOKEN, **self.env, "PYTHONPATH": path}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crm_attribution",
                "worker",
                "--bootstrap",
                self.bootstrap,
                "--web-port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--tick-seconds",
                "2",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=stop_with_parent,  # noqa: PLW1509 - no threads start workers
        )
        return self

    def stop(self, timeout: float = 60.0) -> int:
        """Graceful stop with SIGTERM; kill if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(
                f"worker {self.name} ignored SIGTERM; log: {self.log_path}"
            ) from None

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """End of the worker's log, for assertion messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def get_json(url: str, timeout: float = 30.0, token: str | None = API_TOKEN) -> tuple[int, Any]:
    """(status, body) of a GET with the tests' token (or ``token``); no connection: status 0."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        ) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        except ValueError:
            return error.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def create_topics(bootstrap: str, *topics: str, partitions: int = 1) -> None:
    """Create ``topics`` (one replica each) and wait until the broker lists them."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from stream.kafka.admin import wait_until_listed

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
        wait_until_listed(admin, list(topics), timeout_s=30)
    finally:
        admin.close()


def read_to_end(bootstrap: str, partitions: list[Any], timeout: float = 60.0) -> list[Any]:
    """Every record of these topic partitions, from the start up to their end offsets as now.

    For topics nobody writes to any more (read after the workers stop): no idle wait for
    records that might still come. Read ``read_committed``, as the worker's readers must (it
    writes in transactions; the end of a partition is then its last stable offset). Fails if
    the end is not reached within ``timeout``.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    try:
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} records, short of the ends {ends}")
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, workers: list[Worker]
) -> Any:
    """Poll until the condition returns a truthy value; fail with the workers' logs."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process is not None and not worker.alive():
                raise AssertionError(f"worker {worker.name} died:\n{worker.log_tail()}")
        last = condition()
        if last:
            return last
        time.sleep(1.0)
    logs = "\n\n".join(f"--- {w.name} ---\n{w.log_tail()}" for w in workers)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
