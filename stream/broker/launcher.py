"""A local single-node Apache Kafka (KRaft) broker: fetch, format, start, wait, stop.

Layout: the jars live under the cache directory (shared by every broker of a machine); a
broker's data directory holds its config, identity (cluster id and ports), logs and
partitions; a state directory holds ``broker.json``, the record of the running broker.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from crm_attribution.settings.typed import Settings
from stream.broker import procs
from stream.broker.jars import BrokerError, ensure_jars
from stream.broker.procs import (
    DATA_DIR_PROP,
    MAIN_CLASS,
    OWNER_PROP,
    cmdline,
    is_alive,
    is_our_broker,
    orphan_brokers,
    owner_token,
    terminate,
)

__all__ = [
    "BrokerError",
    "BrokerInfo",
    "SecureListeners",
    "broker_status",
    "cache_dir_for",
    "ensure_broker",
    "resolve_bootstrap",
    "start_broker",
    "stop_broker",
]

STATE_FILE = "broker.json"
IDENTITY_FILE = "broker-identity.json"
NODE_ID = 1
READY_TIMEOUT_S = 180.0
JVM_HEAP = "-Xmx512m"


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SecureListeners:
    """Two extra listeners beside PLAINTEXT, for trying clients' TLS and SASL settings.

    ``SASL_SSL``: TLS with ``keystore``, then a SASL login by one of ``users`` with PLAIN,
    SCRAM-SHA-256 or SCRAM-SHA-512 (SCRAM credentials are written when the storage is
    formatted, with Kafka's own storage tool). ``SSL``: TLS with a client certificate signed by
    an authority in ``truststore`` (mutual TLS), no SASL. The broker's own traffic stays on
    PLAINTEXT, as do the launcher's readiness checks.
    """

    # PEM: the broker's unencrypted PKCS#8 private key, then its certificate chain.
    keystore: Path
    # PEM: the certificate authorities whose client certificates the SSL listener accepts.
    truststore: Path
    # user name -> password, for every mechanism.
    users: Mapping[str, str]

    def check(self) -> None:
        """Raise BrokerError if a name or password cannot be written into Kafka's configs."""
        for name, password in self.users.items():
            for text in (name, password):
                if not text or any(c in text for c in '\\"=,[]\n'):
                    raise BrokerError(
                        f"SecureListeners user {name!r}: names and passwords must be non-empty "
                        'and free of \\ " = , [ ] and newlines (Kafka config syntax)'
                    )


@dataclass(frozen=True)
class BrokerInfo:
    """What ``broker.json`` records about a broker this launcher started."""

    pid: int
    bootstrap: str
    data_dir: str
    log_file: str
    config: str
    kafka_version: str
    # The extra listeners of a broker started with SecureListeners (empty otherwise).
    sasl_ssl_bootstrap: str = ""
    ssl_bootstrap: str = ""

    @property
    def running(self) -> bool:
        """True if the recorded process is alive and provably our broker."""
        return is_alive(self.pid) and is_our_broker(self.pid, Path(self.config))


def cache_dir_for(settings: Settings) -> Path:
    """``kafka.cache_dir``, else $XDG_CACHE_HOME/crm-attribution, else ~/.cache/crm-attribution."""
    if settings.kafka.cache_dir:
        return Path(settings.kafka.cache_dir).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return (Path(base).expanduser() / "crm-attribution").resolve()


def _state_dir(settings: Settings, state_dir: str | Path | None) -> Path:
    return Path(state_dir).expanduser().resolve() if state_dir else cache_dir_for(settings)


def _data_dir(settings: Settings, data_dir: str | Path | None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser().resolve()
    return cache_dir_for(settings) / "broker-data"


def _read_state(state_dir: Path) -> BrokerInfo | None:
    try:
        return BrokerInfo(**json.loads((state_dir / STATE_FILE).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        # A half-written or foreign file records nothing we can act on.
        return None


def _write_state(state_dir: Path, info: BrokerInfo) -> None:
    tmp = state_dir / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
    tmp.replace(state_dir / STATE_FILE)


def _clear_state(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One start or stop at a time per state directory."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "broker.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def broker_status(settings: Settings, state_dir: str | Path | None = None) -> BrokerInfo | None:
    """The recorded broker, or None if nothing was recorded."""
    return _read_state(_state_dir(settings, state_dir))


def resolve_bootstrap(settings: Settings, state_dir: str | Path | None = None) -> str | None:
    """The configured bootstrap servers, else the running local broker's address, else None."""
    if settings.kafka.bootstrap_servers:
        return settings.kafka.bootstrap_servers
    info = broker_status(settings, state_dir)
    return info.bootstrap if info is not None and info.running else None


def ensure_broker(settings: Settings) -> tuple[str, bool]:
    """A usable broker address, starting a local broker if none; True if this call started it."""
    found = resolve_bootstrap(settings)
    if found:
        return found, False
    info = start_broker(settings, owner_pid=os.getpid())
    return info.bootstrap, True


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _new_cluster_id() -> str:
    # Kafka's cluster ids are URL-safe base64 UUIDs; one starting with '-' would read as an
    # option on the storage tool's command line.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _identity(data_dir: Path, port: int | None, version: str) -> dict[str, object]:
    """Cluster id and ports of a data directory, kept across restarts.

    The controller port is part of the KRaft voter set written when the storage is formatted,
    so a formatted data directory must come back on the same controller port.
    """
    path = data_dir / IDENTITY_FILE
    if path.exists():
        ident: dict[str, object] = json.loads(path.read_text())
    else:
        ident = {
            "cluster_id": _new_cluster_id(),
            "node_id": NODE_ID,
            "port": 0,
            "controller_port": free_port(),
            "kafka_version": version,
        }
    controller_port = int(str(ident["controller_port"]))
    if not _port_free(controller_port):
        raise BrokerError(
            f"the KRaft controller port {controller_port} recorded in {path} is in use by "
            f"another program; the broker's data must come back on that port. Stop that "
            f"program, or start over with `crm-attribution broker start --fresh`."
        )
    if port is not None:
        ident["port"] = port
    recorded = int(str(ident["port"]))
    if port is None and (recorded == 0 or not _port_free(recorded)):
        ident["port"] = free_port()
    if port is not None and (port == controller_port or not _port_free(port)):
        raise BrokerError(f"--port {port}: the port is in use on 127.0.0.1")
    while ident["port"] == controller_port:
        ident["port"] = free_port()
    ident["kafka_version"] = version
    path.write_text(json.dumps(ident, indent=2) + "\n")
    return ident


def _secure_ports(data_dir: Path, ident: dict[str, object]) -> None:
    """Give the SASL_SSL and SSL listeners ports (the recorded ones while they are free).

    Unlike the controller's, these ports are in no formatted state: they may change.
    """
    taken = {int(str(ident["port"])), int(str(ident["controller_port"]))}
    for key in ("sasl_ssl_port", "ssl_port"):
        recorded = int(str(ident.get(key, 0)))
        while recorded == 0 or recorded in taken or not _port_free(recorded):
            recorded = free_port()
        ident[key] = recorded
        taken.add(recorded)
    (data_dir / IDENTITY_FILE).write_text(json.dumps(ident, indent=2) + "\n")


def _secure_properties(ident: dict[str, object], secure: SecureListeners) -> list[str]:
    plain_users = " ".join(f'user_{name}="{password}"' for name, password in secure.users.items())
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return [
        f"listeners=PLAINTEXT://127.0.0.1:{ident['port']},"
        f"CONTROLLER://127.0.0.1:{ident['controller_port']},"
        f"SASL_SSL://127.0.0.1:{ident['sasl_ssl_port']},SSL://127.0.0.1:{ident['ssl_port']}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{ident['port']},"
        f"SASL_SSL://127.0.0.1:{ident['sasl_ssl_port']},SSL://127.0.0.1:{ident['ssl_port']}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL_SSL:SASL_SSL,SSL:SSL",
        # Kafka reads PEM files directly: no Java keystore needs making.
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={secure.keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={secure.truststore}",
        "listener.name.ssl.ssl.client.auth=required",
        f"listener.name.sasl_ssl.sasl.enabled.mechanisms={','.join(SASL_MECHANISMS)}",
        "listener.name.sasl_ssl.plain.sasl.jaas.config="
        f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
        f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
    ]


def _server_properties(
    data_dir: Path, ident: dict[str, object], secure: SecureListeners | None = None
) -> str:
    port, cport = ident["port"], ident["controller_port"]
    listeners = [
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    ]
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={ident['node_id']}",
            *(listeners if secure is None else _secure_properties(ident, secure)),
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{cport}",
            f"log.dirs={data_dir / 'kraft'}",
            "num.partitions=1",
            "auto.create.topics.enable=true",
            # One node: every internal topic has one replica, and a consumer group need not
            # wait for more members before its first rebalance.
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "min.insync.replicas=1",
            "default.replication.factor=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )


def _log4j_config(log_file: Path) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="{log_file}" filePattern="{log_file}.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="50 MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
    <Root level="info"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java is not installed; the local Kafka broker needs Java 17 or newer "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless), or point "
            "KAFKA_BOOTSTRAP_SERVERS at an existing broker."
        )
    return java


def _scram_args(secure: SecureListeners | None) -> list[str]:
    """The storage tool's ``--add-scram`` arguments: every user, both SCRAM mechanisms."""
    if secure is None:
        return []
    args = []
    for name, password in secure.users.items():
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
    return args


def _format_storage(
    java: str,
    lib: Path,
    data_dir: Path,
    config: Path,
    cluster_id: str,
    secure: SecureListeners | None = None,
) -> None:
    users = sorted(secure.users) if secure is not None else []
    ident_path = data_dir / IDENTITY_FILE
    if (data_dir / "kraft" / "meta.properties").exists():
        # SCRAM credentials are written at format time only (into the metadata log).
        recorded = json.loads(ident_path.read_text()).get("scram_users", [])
        missing = sorted(set(users) - set(recorded))
        if missing:
            raise BrokerError(
                f"{data_dir} was formatted without SCRAM users {missing}; start this broker "
                "with fresh=True (`broker start --fresh`) to create them"
            )
        return
    log = data_dir / "logs" / "format.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [
                java,
                JVM_HEAP,
                f"-Dlog4j2.configurationFile={data_dir / 'log4j2.xml'}",
                "-cp",
                f"{lib}/*",
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(config),
                *_scram_args(secure),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise BrokerError(
            f"formatting the KRaft storage in {data_dir / 'kraft'} failed (exit code "
            f"{done.returncode}); see {log}:\n{_tail(log)}"
        )
    if secure is not None:
        ident = json.loads(ident_path.read_text())
        ident["scram_users"] = users
        ident_path.write_text(json.dumps(ident, indent=2) + "\n")


def _answers_metadata(bootstrap: str) -> bool:
    """True if the broker at ``bootstrap`` answers a metadata request with itself in it."""
    host, _, port = bootstrap.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return False  # not listening yet: skip the client, which would log connection errors
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    # kafka-python logs every failed attempt at ERROR; while the broker boots that is noise.
    kafka_logger = logging.getLogger("kafka")
    level = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            # The launcher's own broker, on its PLAINTEXT listener whatever [kafka] says.
            security_protocol="PLAINTEXT",
            client_id="crm-attribution-launcher",
            request_timeout_ms=5000,
            bootstrap_timeout_ms=5000,
        )
        try:
            return bool(admin.describe_cluster().get("brokers"))
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        kafka_logger.setLevel(level)


def _wait_ready(process: subprocess.Popen[bytes], info: BrokerInfo, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(
                f"the Kafka broker exited at start (exit code {process.returncode}); see its log "
                f"{info.log_file} and {Path(info.data_dir) / 'logs' / 'jvm.out'}:\n"
                f"{_tail(Path(info.log_file))}"
            )
        if _answers_metadata(info.bootstrap):
            return
        time.sleep(1.0)
    terminate(process.pid, grace_s=5.0)
    raise BrokerError(
        f"the Kafka broker at {info.bootstrap} did not answer metadata requests within "
        f"{timeout_s:.0f} s and was stopped; see its log {info.log_file}:\n"
        f"{_tail(Path(info.log_file))}"
    )


def _stop_recorded(state_dir: Path, grace_s: float) -> BrokerInfo | None:
    info = _read_state(state_dir)
    if info is not None and info.running:
        terminate(info.pid, grace_s)
    _clear_state(state_dir)
    return info


def _wipe(data_dir: Path) -> None:
    """Delete a data directory, but only one that this launcher made."""
    if not data_dir.exists():
        return
    if not (data_dir / IDENTITY_FILE).exists() and any(data_dir.iterdir()):
        raise BrokerError(
            f"--fresh: {data_dir} is not empty and is not a broker data directory made by "
            f"crm-attribution (no {IDENTITY_FILE}); refusing to delete it"
        )
    shutil.rmtree(data_dir)


def start_broker(
    settings: Settings,
    *,
    port: int | None = None,
    data_dir: str | Path | None = None,
    state_dir: str | Path | None = None,
    fresh: bool = False,
    owner_pid: int | None = None,
    die_with_parent: bool = False,
    timeout_s: float = READY_TIMEOUT_S,
    secure: SecureListeners | None = None,
) -> BrokerInfo:
    """Start the local broker (or return the one already running for this state directory).

    ``owner_pid`` ties the broker to a process: once that process is gone, the next start
    anywhere stops the broker as an orphan. ``die_with_parent`` also asks the kernel to send
    the broker SIGTERM when the calling thread exits, so a killed test session leaves nothing.
    ``secure`` adds SASL_SSL and SSL listeners (their addresses in the returned info); without
    it the broker has its PLAINTEXT listener only.
    """
    if secure is not None:
        secure.check()
    state = _state_dir(settings, state_dir)
    data = _data_dir(settings, data_dir)
    version = settings.kafka.kafka_version
    with _locked(state):
        for pid in orphan_brokers():
            terminate(pid)
        current = _read_state(state)
        if (
            current is not None
            and current.running
            and not fresh
            and Path(current.data_dir) == data
            and bool(current.sasl_ssl_bootstrap) == (secure is not None)
            and _answers_metadata(current.bootstrap)
        ):
            return current
        _stop_recorded(state, grace_s=30.0)
        if fresh:
            _wipe(data)
        lib = ensure_jars(cache_dir_for(settings), version)
        java = _java()
        (data / "logs").mkdir(parents=True, exist_ok=True)
        ident = _identity(data, port, version)
        if secure is not None:
            _secure_ports(data, ident)
        config = data / "server.properties"
        config.write_text(_server_properties(data, ident, secure))
        log_file = data / "logs" / "server.log"
        (data / "log4j2.xml").write_text(_log4j_config(log_file))
        _format_storage(java, lib, data, config, str(ident["cluster_id"]), secure)
        command = [
            java,
            "-Xms128m",
            JVM_HEAP,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={data / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={data / 'logs'}",
            f"{DATA_DIR_PROP}{data}",
        ]
        if owner_pid is not None:
            command.append(f"{OWNER_PROP}{owner_token(owner_pid)}")
        command += ["-cp", f"{lib}/*", MAIN_CLASS, str(config)]
        with (data / "logs" / "jvm.out").open("ab") as out:
            process = subprocess.Popen(
                command,
                cwd=data,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own session: Ctrl-C in the terminal reaches us, and we stop Kafka cleanly.
                start_new_session=True,
                preexec_fn=procs.die_with_parent() if die_with_parent else None,
            )
        info = BrokerInfo(
            pid=process.pid,
            bootstrap=f"127.0.0.1:{ident['port']}",
            data_dir=str(data),
            log_file=str(log_file),
            config=str(config),
            kafka_version=version,
            sasl_ssl_bootstrap=f"127.0.0.1:{ident['sasl_ssl_port']}" if secure else "",
            ssl_bootstrap=f"127.0.0.1:{ident['ssl_port']}" if secure else "",
        )
        # Recorded before the wait so that a start interrupted now is still cleaned up later.
        _write_state(state, info)
        try:
            _wait_ready(process, info, timeout_s)
        except BaseException:
            terminate(process.pid, grace_s=5.0)
            _clear_state(state)
            raise
        return info


def stop_broker(
    settings: Settings, state_dir: str | Path | None = None, grace_s: float = 30.0
) -> BrokerInfo | None:
    """Stop the recorded broker if it runs; returns what was recorded (None if nothing)."""
    state = _state_dir(settings, state_dir)
    with _locked(state):
        return _stop_recorded(state, grace_s)


def our_broker_pids() -> list[int]:
    """Every running Kafka JVM started by this launcher, whoever started it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and is_alive(int(entry.name)):
            args = cmdline(int(entry.name))
            if MAIN_CLASS in args and any(a.startswith(DATA_DIR_PROP) for a in args):
                pids.append(int(entry.name))
    return pids
