"""The [kafka] TLS and SASL settings: validated at load, files checked, one factory per client.

The real-broker tests (tests/integration/test_kafka_security.py) connect with these arguments;
here: what each factory hands its library, what a bad setting says, that the password never
shows, and that no Kafka client of the code is built without a factory's arguments.
"""

from __future__ import annotations

import ast
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest

from crm_attribution.settings.typed import KafkaSettings, SettingsError, load_settings
from stream.kafka.security import (
    KafkaSecurityError,
    MaskedSecret,
    aiokafka_args,
    faust_args,
    kafka_python_args,
    ssl_context,
)
from tests.kafka_tls import TlsFiles, make_test_pki

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def kafka_settings(**env: str) -> KafkaSettings:
    return load_settings(environ={f"CRM_KAFKA__{k.upper()}": v for k, v in env.items()}).kafka


def sasl_ssl(pki: TlsFiles, mechanism: str = "SCRAM-SHA-512", **more: str) -> KafkaSettings:
    return kafka_settings(
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="alice",
        sasl_password="s3cret-Pa55",
        ssl_cafile=str(pki.ca),
        **more,
    )


def test_the_default_is_plaintext_without_credentials() -> None:
    kafka = load_settings(environ={}).kafka
    assert kafka.security_protocol == "PLAINTEXT" and not kafka.uses_tls and not kafka.uses_sasl
    assert kafka_python_args(kafka) == {"security_protocol": "PLAINTEXT"}
    assert aiokafka_args(kafka) == {"security_protocol": "PLAINTEXT"}
    assert faust_args(kafka) == {}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"security_protocol": "SASL_SSL", "sasl_username": "a", "sasl_password": "p"},
            "security_protocol SASL_SSL needs sasl_mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
             "sasl_password": "p"},
            "security_protocol SASL_PLAINTEXT needs sasl_username",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "a"},
            "security_protocol SASL_SSL needs sasl_password (set CRM_KAFKA__SASL_PASSWORD",
        ),
        (
            {"sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "a", "sasl_password": "p"},
            "sasl_mechanism, sasl_username, sasl_password set but security_protocol PLAINTEXT "
            "does not use SASL",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
             "sasl_username": "a", "sasl_password": "p", "ssl_cafile": "ca.pem"},
            "ssl_cafile set but security_protocol SASL_PLAINTEXT does not use TLS",
        ),
        (
            {"security_protocol": "SSL", "ssl_keyfile": "key.pem"},
            "ssl_keyfile needs ssl_certfile",
        ),
        ({"security_protocol": "TLS"}, "kafka.security_protocol: Input should be 'PLAINTEXT'"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"},
            "kafka.sasl_mechanism: Input should be '', 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'",
        ),
    ],
)  # fmt: skip
def test_a_bad_combination_is_refused_at_load_with_the_setting_named(
    env: dict[str, str], expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        kafka_settings(**env)
    message = str(caught.value)
    assert expected in message and "\n" not in message, message


def test_sasl_ssl_gives_every_library_the_same_context_and_login(pki: TlsFiles) -> None:
    kafka = sasl_ssl(pki)
    for args in (kafka_python_args(kafka), aiokafka_args(kafka)):
        assert args["security_protocol"] == "SASL_SSL"
        assert args["sasl_mechanism"] == "SCRAM-SHA-512"
        assert args["sasl_plain_username"] == "alice"
        assert args["sasl_plain_password"] == "s3cret-Pa55"
        context = args["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        # The test authority, and only it (no system store when a cafile is given).
        assert [c["subject"] for c in context.get_ca_certs()] == [
            ((("commonName", "crm-attribution test CA"),),)
        ]
    credentials = faust_args(kafka)["broker_credentials"]
    assert type(credentials).__name__ == "SASLCredentials"
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("alice", "s3cret-Pa55")
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


def test_sasl_plaintext_has_no_tls_and_ssl_has_no_login(pki: TlsFiles) -> None:
    plain = kafka_settings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="bob",
        sasl_password="pw",
    )
    assert "ssl_context" not in aiokafka_args(plain)
    credentials = faust_args(plain)["broker_credentials"]
    assert credentials.protocol.value == "SASL_PLAINTEXT" and credentials.ssl_context is None
    mutual = kafka_settings(
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
        ssl_check_hostname="false",
    )
    args = kafka_python_args(mutual)
    assert set(args) == {"security_protocol", "ssl_context"}
    assert args["ssl_context"].check_hostname is False
    assert args["ssl_context"].verify_mode == ssl.CERT_REQUIRED  # the chain is still checked
    assert type(faust_args(mutual)["broker_credentials"]).__name__ == "SSLCredentials"


def test_without_a_cafile_the_system_trust_store_is_used() -> None:
    # Managed Kafka (Confluent Cloud, MSK) presents publicly signed certificates.
    context = ssl_context(kafka_settings(security_protocol="SSL"))
    assert context is not None
    assert context.cert_store_stats()["x509_ca"] == len(ssl.create_default_context().get_ca_certs())


def test_unusable_files_are_one_line_naming_the_setting(pki: TlsFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    unreadable = tmp_path / "locked.pem"
    unreadable.write_bytes(pki.ca.read_bytes())
    unreadable.chmod(0)
    cases: list[tuple[dict[str, str], str]] = [
        ({"ssl_cafile": str(missing)}, f"kafka.ssl_cafile {missing}: no such file"),
        ({"ssl_cafile": str(not_pem)}, f"kafka.ssl_cafile {not_pem}: no PEM certificate"),
        ({"ssl_certfile": str(pki.client_cert)}, "ssl_keyfile (in the certfile): not a PEM"),
        ({"ssl_certfile": str(pki.client_cert), "ssl_keyfile": str(pki.ca)}, "not a PEM"),
    ]
    import os

    if os.geteuid() != 0:  # root reads any file
        cases.append(({"ssl_cafile": str(unreadable)}, "not readable by this user"))
    for env, expected in cases:
        kafka = kafka_settings(security_protocol="SSL", **env)
        for factory in (kafka_python_args, aiokafka_args, faust_args):
            with pytest.raises(KafkaSecurityError) as caught:
                factory(kafka)
            assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_the_password_never_shows(pki: TlsFiles, caplog: pytest.LogCaptureFixture) -> None:
    kafka = sasl_ssl(pki)
    secret = "s3cret-Pa55"
    assert kafka.sasl_password.get_secret_value() == secret
    assert secret not in repr(kafka) and secret not in str(kafka)
    for args in (kafka_python_args(kafka), aiokafka_args(kafka), faust_args(kafka)):
        assert secret not in repr(args) and secret not in f"{args}"
    masked = MaskedSecret(secret)
    assert str(masked) == secret and masked.encode() == secret.encode()  # what clients send

    # kafka-python's admin client logs its whole configuration at debug level.
    from kafka.admin import KafkaAdminClient

    with caplog.at_level(logging.DEBUG, logger="kafka"), pytest.raises(Exception):  # noqa: B017
        KafkaAdminClient(
            bootstrap_servers="127.0.0.1:1", bootstrap_timeout_ms=200, **kafka_python_args(kafka)
        )
    assert "Starting KafkaAdminClient with configuration" in caplog.text
    assert "sasl_plain_password" in caplog.text and secret not in caplog.text


# Constructors of Kafka clients, by the name the code calls them with.
CLIENTS = {
    "KafkaProducer": "kafka_python_args",
    "KafkaConsumer": "kafka_python_args",
    "KafkaAdminClient": "kafka_python_args",
    "AIOKafkaProducer": "aiokafka_args",
    "AIOKafkaConsumer": "aiokafka_args",
    "App": "faust_args",  # faust.App
    "Producer": "confluent",  # confluent_kafka: no factory; must not appear in the product
    "Consumer": "confluent",
    "AdminClient": "confluent",
}


def client_calls(source: str) -> list[tuple[int, str, list[ast.keyword]]]:
    """(line, constructor, keywords) of every call of a Kafka client constructor."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CLIENTS:
                calls.append((node.lineno, name, node.keywords))
    return calls


def unsecured(source: str) -> list[str]:
    """Client constructions given neither their factory's ``**args`` nor an explicit protocol."""
    found = []
    for line, name, keywords in client_calls(source):
        factory = CLIENTS[name]
        splats = [
            k.value.func.id
            for k in keywords
            if k.arg is None
            and isinstance(k.value, ast.Call)
            and isinstance(k.value.func, ast.Name)
        ]
        explicit = any(k.arg == "security_protocol" for k in keywords)
        if factory not in splats and not explicit:
            found.append(f"{line}: {name}")
    return found


def product_sources() -> dict[str, str]:
    files = [
        *sorted((ROOT / "stream").rglob("*.py")),
        *sorted((ROOT / "crm_attribution").rglob("*.py")),
    ]
    return {str(path.relative_to(ROOT)): path.read_text() for path in files}


def test_the_check_finds_clients_built_without_the_settings() -> None:
    assert unsecured("from kafka import KafkaProducer\nKafkaProducer(bootstrap_servers=b)") == [
        "2: KafkaProducer"
    ]
    assert unsecured("aiokafka.AIOKafkaConsumer(b, **kafka_python_args(k))") == [
        "1: AIOKafkaConsumer"  # the other library's arguments
    ]
    assert unsecured("faust.App('x', broker=b)") == ["1: App"]
    assert unsecured("faust.App('x', broker=b, **faust_args(s.kafka))") == []
    assert unsecured("KafkaAdminClient(bootstrap_servers=b, security_protocol='PLAINTEXT')") == []
    sources = product_sources()
    assert len([c for s in sources.values() for c in client_calls(s)]) >= 8


def test_no_kafka_client_of_the_code_is_built_without_the_security_settings() -> None:
    found = [
        f"{path}:{hit}" for path, source in product_sources().items() for hit in unsecured(source)
    ]
    assert found == []


class RecordingAdmin:
    """kafka-python's admin client surface: remembers how it was built and what it created."""

    built: list[dict[str, Any]] = []
    created: list[Any] = []

    def __init__(self, **config: Any) -> None:
        RecordingAdmin.built.append(config)

    def list_topics(self) -> list[str]:
        return [topic.name for topic in RecordingAdmin.created]

    def create_topics(self, topics: list[Any]) -> None:
        RecordingAdmin.created.extend(topics)

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        by_name = {topic.name: topic for topic in RecordingAdmin.created}
        return [{"name": name, "partitions": [{}] * by_name[name].num_partitions} for name in names]

    def close(self) -> None:
        pass


def test_topics_are_created_through_the_secured_admin_with_the_replication_factor(
    pki: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stream.kafka.admin as admin_module

    monkeypatch.setattr(admin_module, "KafkaAdminClient", RecordingAdmin)
    RecordingAdmin.built, RecordingAdmin.created = [], []
    settings = load_settings(
        environ={
            "CRM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "CRM_KAFKA__SASL_MECHANISM": "PLAIN",
            "CRM_KAFKA__SASL_USERNAME": "key",
            "CRM_KAFKA__SASL_PASSWORD": "secret",
            "CRM_KAFKA__SSL_CAFILE": str(pki.ca),
            "CRM_TOPICS__REPLICATION_FACTOR": "3",
        }
    )
    created = admin_module.ensure_topics("broker:9092", settings)
    (config,) = RecordingAdmin.built
    assert config["security_protocol"] == "SASL_SSL" and config["sasl_mechanism"] == "PLAIN"
    assert isinstance(config["ssl_context"], ssl.SSLContext)
    # Inputs, ticks, outputs and the two tables' changelogs (compacted).
    assert len(created) == 9 and {t.replication_factor for t in RecordingAdmin.created} == {3}
    compacted = {t.name for t in RecordingAdmin.created if t.topic_configs}
    assert compacted == {n for n in created if n.endswith("-changelog")} and len(compacted) == 2


def test_the_worker_app_gets_the_credentials_and_the_replication_factor(
    pki: TlsFiles, tmp_path: Path
) -> None:
    from stream.pipeline import Pipeline

    settings = load_settings(
        environ={
            "CRM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "CRM_KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
            "CRM_KAFKA__SASL_USERNAME": "crm",
            "CRM_KAFKA__SASL_PASSWORD": "secret",
            "CRM_KAFKA__SSL_CAFILE": str(pki.ca),
            "CRM_TOPICS__REPLICATION_FACTOR": "3",
        }
    )
    pipeline = Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path))
    conf = pipeline.app.conf
    assert conf.topic_replication_factor == 3
    assert conf.broker_credentials.protocol.value == "SASL_SSL"
    assert conf.broker_credentials.mechanism.value == "SCRAM-SHA-256"
    assert pipeline.gap_reader.kafka is settings.kafka
    assert pipeline.tick_sender.kafka is settings.kafka
