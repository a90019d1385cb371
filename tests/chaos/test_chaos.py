"""The short chaos suite on the real broker (the long one: ``python -m tests.chaos.chaos``).

kill -9 of a worker in the middle of a drain and during its recovery, and a broker stopped
and started on its data directory while two workers drain. After each: ``/attribution`` and
``/analytics`` equal the batch engine exactly, the attribution topic read ``read_committed``
holds exactly one live record per order and model, the dead-letter topic exactly the invalid
records (tests/chaos/chaos.py, ``run_one``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.chaos import Broker, Expected, make_log, run_one

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Expected:
    return make_log(tmp_path_factory.mktemp("chaos-log"), customers=1000, days=30, seed=4)


def session_broker(bootstrap: str, tmp_path: Path) -> Broker:
    """The test session's broker, for runs that never stop it."""
    return Broker(tmp_path / "unused-state", tmp_path / "unused-data", bootstrap=bootstrap)


def test_one_of_two_workers_killed_mid_drain_and_restarted(
    kafka_bootstrap: str, expected: Expected, tmp_path: Path
) -> None:
    broker = session_broker(kafka_bootstrap, tmp_path)
    outcome = run_one(broker, expected, tmp_path, "kill-mid-drain", workers=2, kills=[9.0])
    assert outcome.ok, "\n".join(outcome.problems + outcome.events)


def test_a_single_worker_killed_mid_batch_and_again_in_its_recovery(
    kafka_bootstrap: str, expected: Expected, tmp_path: Path
) -> None:
    broker = session_broker(kafka_bootstrap, tmp_path)
    outcome = run_one(broker, expected, tmp_path, "kill-twice", workers=1, kills=[8.0, 11.0])
    assert outcome.ok, "\n".join(outcome.problems + outcome.events)


def test_broker_stopped_and_started_while_two_workers_drain(
    expected: Expected, tmp_path: Path
) -> None:
    broker = Broker(tmp_path / "broker-state", tmp_path / "broker-data")
    broker.start(fresh=True)
    try:
        outcome = run_one(
            broker,
            expected,
            tmp_path,
            "broker-restart",
            workers=2,
            broker_outage=(2.0, 15.0),
            from_ready=True,
        )
    finally:
        broker.stop()
    assert outcome.ok, "\n".join(outcome.problems + outcome.events)
