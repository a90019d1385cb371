"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine needed).

Every setting the compose file passes must be one the code reads, the worker command must be
a real subcommand, and the Kafka service must be a consistent single-node KRaft cluster.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from crm_attribution.cli import COMMANDS
from crm_attribution.settings.typed import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    found: dict[str, Any] = data["services"]
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either compose spelling (map or list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def app_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("CRM_") or k == "KAFKA_BOOTSTRAP_SERVERS"}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def test_services(services: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "worker"}
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["worker"]["build"] in (".", {"context": "."})


def test_kafka_is_a_consistent_single_node_kraft_cluster(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env = env_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    match = re.fullmatch(r"(\d+)@([\w.-]+):(\d+)", voter)
    assert match, voter
    assert match[1] == node, "the only voter must be this node"
    # ":9093" -> "CONTROLLER"
    listeners: dict[str, str] = {}
    for item in env["KAFKA_LISTENERS"].split(","):
        name, _, address = item.partition("://")
        listeners[address] = name
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert listeners.get(f":{match[3]}") == controller, "voter port must be the controller listener"
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners.values()) <= set(protocols)
    for name in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    ):
        assert env[name] == "1", name
    health = " ".join(kafka["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in health


def test_worker_reaches_kafka_through_an_advertised_listener(services: dict[str, Any]) -> None:
    bootstrap = env_of(services["worker"])["KAFKA_BOOTSTRAP_SERVERS"]
    advertised = env_of(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert bootstrap == "kafka:9092"
    assert f"://{bootstrap}" in advertised
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_worker_command_is_a_registered_subcommand(services: dict[str, Any]) -> None:
    command = command_of(services["worker"])
    assert command[0] == "crm-attribution"
    assert command[1] in COMMANDS
    assert command[1] == "worker"


def test_every_setting_passed_is_one_the_code_reads(services: dict[str, Any]) -> None:
    for name, service in services.items():
        env = app_env(env_of(service))
        try:
            load_settings(environ=env)
        except SettingsError as error:
            pytest.fail(f"service {name}: {error}")
    settings = load_settings(environ=app_env(env_of(services["worker"])))
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    # Published and probed on the port the worker listens on, reachable from outside.
    assert settings.worker.web_host == "0.0.0.0"
    health = " ".join(services["worker"]["healthcheck"]["test"])
    assert f"localhost:{settings.worker.web_port}/health" in health
    port = settings.worker.web_port
    # Published on the host's loopback only; the token comes from the host's environment and
    # compose refuses to start without it (${VAR:?message}).
    assert f"127.0.0.1:{port}:{port}" in services["worker"]["ports"]
    token = env_of(services["worker"])["CRM_API__TOKEN"]
    assert re.fullmatch(r"\$\{CRM_API__TOKEN:\?[^}]+\}", token), token
    for name, service in services.items():
        for published in service.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), (name, published)


def test_the_settings_check_rejects_a_misspelt_name() -> None:
    # The check above relies on load_settings refusing names the code does not read.
    with pytest.raises(SettingsError, match="CRM_WORKER__WEB_HOTS"):
        load_settings(environ={"CRM_WORKER__WEB_HOTS": "0.0.0.0"})


def test_dockerfile_installs_the_package_and_runs_the_worker() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install[^\n]*\s\"?\.(\[[\w,]+\])?\"?", text), "must pip install ."
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for pattern in packages:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package}\b", text, re.M), f"Dockerfile must copy {package}/"
    assert 'CMD ["crm-attribution", "worker"]' in text


def test_a_worker_that_exits_is_started_again_on_its_data_directory(
    services: dict[str, Any],
) -> None:
    # A worker exits when it cannot go on (its broker gone longer than its transaction
    # timeout); the supervisor restarts it, on the same data directory (its transactional id).
    worker = services["worker"]
    assert worker.get("restart") in ("unless-stopped", "always", "on-failure")
    assert env_of(worker).get("CRM_WORKER__DATA_DIR")
