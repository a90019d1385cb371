"""A Kafka TLS or SASL setting no client can use stops the command at start, in one line.

The failures that need a broker (a wrong password, an untrusted certificate) are tested on the
real one in tests/integration/test_kafka_security.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_attribution.cli import main
from tests.integration.stream_harness import free_port

SASL = {
    "CRM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
    "CRM_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
    "CRM_KAFKA__SASL_USERNAME": "alice",
    "CRM_KAFKA__SASL_PASSWORD": "hunter2-secret",
}


def one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "hunter2-secret" not in err
    return lines[0]


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "touchpoint"}\n')
    return path


@pytest.mark.parametrize("command", ["worker", "produce", "sink"])
def test_sasl_ssl_without_a_mechanism_is_refused_at_start(
    command: str, events: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM_KAFKA__SASL_MECHANISM")
    args = {
        "worker": ["worker"],
        "produce": ["produce", str(events)],
        "sink": ["sink", "postgres", "--dsn", "postgresql://x@127.0.0.1:1/x", "--once"],
    }[command]
    line = one_line([*args, "--bootstrap", f"127.0.0.1:{free_port()}"], capsys)
    assert "kafka: security_protocol SASL_SSL needs sasl_mechanism" in line


@pytest.mark.parametrize("command", ["worker", "produce"])
def test_an_unreadable_cafile_is_refused_before_any_connection(
    command: str,
    events: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    cafile = tmp_path / "missing-ca.pem"
    monkeypatch.setenv("CRM_KAFKA__SSL_CAFILE", str(cafile))
    args = ["worker"] if command == "worker" else ["produce", str(events)]
    # Nothing listens at the address: the file is the first thing that fails.
    line = one_line([*args, "--bootstrap", f"127.0.0.1:{free_port()}"], capsys)
    assert f"kafka.ssl_cafile {cafile}: no such file" in line


def test_a_secured_command_with_no_broker_says_nothing_answers(
    events: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    line = one_line(["produce", str(events), "--bootstrap", f"127.0.0.1:{port}"], capsys)
    assert f"nothing accepts connections at 127.0.0.1:{port}" in line
