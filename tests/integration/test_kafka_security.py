"""Production Kafka: every client over SASL_SSL (PLAIN, SCRAM) and mutual TLS, on a real broker.

The project's launcher starts a second broker with a SASL_SSL and an SSL listener (client
certificates required) beside its PLAINTEXT one; its certificate authority is made here, its
SCRAM users by Kafka's own storage tool. The commands and workers are given only a secured
address, so every byte they exchange with Kafka went through TLS and a login.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.broker.launcher import BrokerError, SecureListeners, start_broker, stop_broker
from stream.kafka.gaps import GapReader
from tests.compare import assert_same
from tests.integration.stream_harness import REPO, Worker, get_json, unique_env, wait_until
from tests.kafka_tls import TlsFiles, make_test_pki
from tests.stream.batch_answers import batch_attribution, batch_report

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USER, PASSWORD = "alice", "alice-Secret-1"


@dataclass(frozen=True)
class SecureBroker:
    """The secured broker's addresses and the files its clients need."""

    sasl_ssl: str
    ssl: str
    pki: TlsFiles


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    base = tmp_path_factory.mktemp("secure-broker")
    pki = make_test_pki(base / "pki")
    settings = load_settings(environ={})
    try:
        info = start_broker(
            settings,
            state_dir=base / "state",
            data_dir=base / "data",
            fresh=True,
            owner_pid=os.getpid(),
            die_with_parent=True,
            secure=SecureListeners(pki.broker_keystore, pki.ca, {USER: PASSWORD}),
        )
    except BrokerError as error:
        pytest.fail(f"the secured Kafka broker did not start: {error}", pytrace=False)
    try:
        yield SecureBroker(info.sasl_ssl_bootstrap, info.ssl_bootstrap, pki)
    finally:
        stop_broker(settings, state_dir=base / "state", grace_s=20.0)


def sasl_env(broker: SecureBroker, mechanism: str, password: str = PASSWORD) -> dict[str, str]:
    return {
        "CRM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "CRM_KAFKA__SASL_MECHANISM": mechanism,
        "CRM_KAFKA__SASL_USERNAME": USER,
        "CRM_KAFKA__SASL_PASSWORD": password,
        "CRM_KAFKA__SSL_CAFILE": str(broker.pki.ca),
    }


def mtls_env(broker: SecureBroker, certificate: bool = True) -> dict[str, str]:
    env = {"CRM_KAFKA__SECURITY_PROTOCOL": "SSL", "CRM_KAFKA__SSL_CAFILE": str(broker.pki.ca)}
    if certificate:
        env["CRM_KAFKA__SSL_CERTFILE"] = str(broker.pki.client_cert)
        env["CRM_KAFKA__SSL_KEYFILE"] = str(broker.pki.client_key)
    return env


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``crm-attribution ARGS`` as a user would, with ``env`` on top of this one's."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "crm_attribution", *args],
        env={**os.environ, **env, "PYTHONPATH": path},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    lines = list(generate(GeneratorConfig(customers=400, days=10, seed=5)))
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path, lines


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_produce_and_a_worker_over_sasl_ssl_equal_the_batch_engine(
    secure_broker: SecureBroker, log: tuple[Path, list[str]], mechanism: str, tmp_path: Path
) -> None:
    path, lines = log
    env = {**unique_env(partitions=2), "CRM_ATTRIBUTION__LOOKBACK_DAYS": "3"}
    env.update(sasl_env(secure_broker, mechanism))
    settings = load_settings(environ=env)
    attribution, report = batch_attribution(lines, settings), batch_report(lines, settings)

    # The produce command: the admin client creates the topics, kafka-python sends the events.
    done = cli(["produce", str(path), "--bootstrap", secure_broker.sasl_ssl], env, tmp_path)
    assert done.returncode == 0, done.stderr
    # The worker: Faust's consumer and producer (the record batches of its table writes),
    # the tick sender (null paths expire only through ticks), the admin client at start.
    worker = Worker(secure_broker.sasl_ssl, env, tmp_path, "w0").start()
    try:
        expected = attribution["totals"]

        def drained() -> bool:
            status, totals = get_json(f"{worker.url}/totals")
            return status == 200 and all(
                totals.get(k) == expected[k] for k in ("conversions", "null", "invalid_records")
            )

        wait_until(drained, 300, "the log drained over SASL_SSL", [worker])
        status, stream = get_json(f"{worker.url}/attribution", timeout=120)
        assert status == 200, stream
        assert_same(stream, attribution)
        status, analytics = get_json(f"{worker.url}/analytics?fresh=1", timeout=180)
        assert status == 200, analytics
        assert_same(analytics, report)
        assert worker.stop() == 0, worker.log_tail()
    finally:
        if worker.alive():
            worker.stop()
    assert PASSWORD not in worker.log_path.read_text(errors="replace")


def test_gap_reads_over_sasl_ssl_with_scram_sha_256(
    secure_broker: SecureBroker, log: tuple[Path, list[str]], tmp_path: Path
) -> None:
    path, _ = log
    env = {**unique_env(partitions=1), **sasl_env(secure_broker, "SCRAM-SHA-256")}
    done = cli(["produce", str(path), "--bootstrap", secure_broker.sasl_ssl], env, tmp_path)
    assert done.returncode == 0, done.stderr
    settings = load_settings(environ=env)

    async def read() -> list[Any]:
        reader = GapReader(secure_broker.sasl_ssl, settings.kafka)
        try:
            return [r async for r in reader.read(settings.topics.purchases, 0, 3, 9)]
        finally:
            await reader.close()

    records = asyncio.run(read())
    assert [r.offset for r in records] == list(range(3, 9))
    assert all(b'"purchase"' in r.value for r in records)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["produce", "worker"])
def test_a_wrong_password_is_one_clear_line(
    secure_broker: SecureBroker, log: tuple[Path, list[str]], command: str, tmp_path: Path
) -> None:
    env = {**unique_env(), **sasl_env(secure_broker, "SCRAM-SHA-512", password="wrong")}
    args = [command, str(log[0])] if command == "produce" else [command]
    line = one_line_error(cli([*args, "--bootstrap", secure_broker.sasl_ssl], env, tmp_path))
    assert f"Kafka at {secure_broker.sasl_ssl} refused the SASL login of user 'alice'" in line
    assert "SCRAM-SHA-512" in line and "kafka.sasl_password" in line and "wrong" not in line


def test_an_untrusted_certificate_and_a_wrong_protocol_are_one_clear_line(
    secure_broker: SecureBroker, log: tuple[Path, list[str]], tmp_path: Path
) -> None:
    produce = ["produce", str(log[0]), "--bootstrap", secure_broker.sasl_ssl]
    broker_pki = secure_broker.pki
    env = {**sasl_env(secure_broker, "PLAIN"), "CRM_KAFKA__SSL_CAFILE": str(broker_pki.other_ca)}
    line = one_line_error(cli(produce, env, tmp_path))
    assert "TLS certificate is not trusted" in line and "kafka.ssl_cafile" in line
    # A client that speaks SSL without SASL to the SASL_SSL listener.
    line = one_line_error(cli(produce, mtls_env(secure_broker), tmp_path))
    assert "closed the connection" in line and "SSL" in line


def test_mutual_tls_needs_the_client_certificate(
    secure_broker: SecureBroker, log: tuple[Path, list[str]], tmp_path: Path
) -> None:
    produce = ["produce", str(log[0]), "--bootstrap", secure_broker.ssl]
    env = {**unique_env(partitions=1), **mtls_env(secure_broker)}
    done = cli(produce, env, tmp_path)
    assert done.returncode == 0, done.stderr
    without = {**unique_env(partitions=1), **mtls_env(secure_broker, certificate=False)}
    line = one_line_error(cli(produce, without, tmp_path))
    assert "closed the connection" in line and "kafka.ssl_certfile" in line
