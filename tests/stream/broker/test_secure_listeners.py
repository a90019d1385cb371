"""The launcher's optional SASL_SSL and SSL listeners: configuration only (the broker itself is
started in tests/integration/test_kafka_security.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.broker import launcher
from stream.broker.launcher import BrokerError, SecureListeners

IDENT: dict[str, object] = {"node_id": 1, "port": 9092, "controller_port": 9093}


def secure(tmp_path: Path, users: dict[str, str] | None = None) -> SecureListeners:
    return SecureListeners(tmp_path / "keystore.pem", tmp_path / "ca.pem", users or {"al": "pw"})


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_without_secure_listeners_the_broker_is_plaintext_only(tmp_path: Path) -> None:
    props = properties(launcher._server_properties(tmp_path, IDENT))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert not [key for key in props if "ssl" in key or "sasl" in key]
    assert launcher._scram_args(None) == []


def test_secure_listeners_add_sasl_ssl_and_mutual_tls(tmp_path: Path) -> None:
    ident = {**IDENT, "sasl_ssl_port": 9094, "ssl_port": 9095}
    listeners = secure(tmp_path, {"alice": "a-pw", "bob": "b-pw"})
    props = properties(launcher._server_properties(tmp_path, ident, listeners))
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,"
        "SASL_SSL://127.0.0.1:9094,SSL://127.0.0.1:9095"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"  # the broker's own traffic
    assert props["ssl.keystore.type"] == "PEM" == props["ssl.truststore.type"]
    assert props["ssl.keystore.location"] == str(tmp_path / "keystore.pem")
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == (
        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    )
    assert (
        'user_alice="a-pw" user_bob="b-pw";'
        in props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    )
    assert launcher._scram_args(listeners) == [
        "--add-scram", "SCRAM-SHA-256=[name=alice,password=a-pw]",
        "--add-scram", "SCRAM-SHA-512=[name=alice,password=a-pw]",
        "--add-scram", "SCRAM-SHA-256=[name=bob,password=b-pw]",
        "--add-scram", "SCRAM-SHA-512=[name=bob,password=b-pw]",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "users", [{"al,ice": "pw"}, {"alice": 'p"w'}, {"alice": ""}, {"alice": "p]w"}, {"a=b": "pw"}]
)
def test_names_and_passwords_that_would_break_kafkas_syntax_are_refused(
    tmp_path: Path, users: dict[str, str]
) -> None:
    with pytest.raises(BrokerError, match="Kafka config syntax"):
        secure(tmp_path, users).check()


def test_a_data_directory_formatted_without_the_users_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kraft").mkdir()
    (tmp_path / "kraft" / "meta.properties").write_text("")
    (tmp_path / launcher.IDENTITY_FILE).write_text('{"scram_users": ["al"]}')
    lib, config = tmp_path / "lib", tmp_path / "server.properties"
    launcher._format_storage("java", lib, tmp_path, config, "id", secure(tmp_path))  # recorded
    with pytest.raises(BrokerError, match=r"formatted without SCRAM users \['bob'\].*--fresh"):
        launcher._format_storage(
            "java", lib, tmp_path, config, "id", secure(tmp_path, {"bob": "x"})
        )
