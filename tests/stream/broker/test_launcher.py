"""The local broker launcher: CLI start/status/stop, cached jars, restarts, stale processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from crm_attribution.cli import main as cli_main
from crm_attribution.settings.typed import load_settings
from stream.broker import launcher
from stream.broker.jars import BrokerError, ensure_jars
from stream.broker.procs import cmdline, is_alive
from stream.kafka.admin import wait_until_listed

REPO = Path(__file__).resolve().parents[3]


def our_jvms_under(root: Path) -> list[int]:
    """Broker JVMs of this launcher whose data directory is under ``root``."""
    return [
        pid
        for pid in launcher.our_broker_pids()
        if any(arg.startswith(f"{launcher.DATA_DIR_PROP}{root}") for arg in cmdline(pid))
    ]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    """A temp dir whose brokers are all gone when the test ends, whatever happened."""
    yield tmp_path
    for pid in our_jvms_under(tmp_path):
        os.kill(pid, signal.SIGKILL)
    assert our_jvms_under(tmp_path) == []


def without_maven_path(bin_dir: Path, trap: Path) -> str:
    """A PATH holding only java and an ``mvn`` that leaves ``trap`` behind if it ever runs."""
    bin_dir.mkdir()
    java = shutil.which("java")
    assert java, "java is needed for the broker tests"
    (bin_dir / "java").symlink_to(Path(java).resolve())
    mvn = bin_dir / "mvn"
    mvn.write_text(f"#!/bin/sh\ntouch '{trap}'\nexit 1\n")
    mvn.chmod(0o755)
    return str(bin_dir)


@pytest.mark.kafka
def test_cli_start_status_stop_twice_keeps_data_and_uses_the_cache(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # whole paths on one line of the status table
    state, data = sandbox / "state", sandbox / "data"
    where = ["--state-dir", str(state)]
    try:
        assert cli_main(["broker", "status", *where]) == 1
        assert "stopped" in capsys.readouterr().out

        assert cli_main(["broker", "start", *where, "--data-dir", str(data)]) == 0
        bootstrap = capsys.readouterr().out.strip().splitlines()[-1]
        assert bootstrap.startswith("127.0.0.1:")
        assert cli_main(["broker", "status", *where]) == 0
        status = capsys.readouterr().out
        assert "running" in status and bootstrap in status and str(data) in status
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic("kept-across-restart", 3, 1)])
        finally:
            admin.close()
        first_pid = json.loads((state / "broker.json").read_text())["pid"]

        assert cli_main(["broker", "stop", *where]) == 0
        assert not is_alive(first_pid)
        assert cli_main(["broker", "status", *where]) == 1
        capsys.readouterr()

        trap = sandbox / "maven-ran"
        monkeypatch.setenv("PATH", without_maven_path(sandbox / "bin", trap))
        monkeypatch.delenv("JAVA_HOME", raising=False)
        assert cli_main(["broker", "start", *where, "--data-dir", str(data)]) == 0
        again = capsys.readouterr().out.strip().splitlines()[-1]
        assert not trap.exists(), "the second start ran Maven instead of using the cached jars"
        assert again == bootstrap  # same ports: the KRaft voter set written at format time
        admin = KafkaAdminClient(bootstrap_servers=again)
        try:
            # Raises unless the restarted broker lists the topic created before the stop.
            wait_until_listed(admin, ["kept-across-restart"], timeout_s=30)
        finally:
            admin.close()
        assert cli_main(["broker", "status", *where]) == 0

        # A second `start` while it runs reports the running broker and starts nothing.
        pid = json.loads((state / "broker.json").read_text())["pid"]
        assert cli_main(["broker", "start", *where, "--data-dir", str(data)]) == 0
        assert "already running" in capsys.readouterr().out
        assert json.loads((state / "broker.json").read_text())["pid"] == pid

        assert cli_main(["broker", "stop", *where]) == 0
        assert not is_alive(pid)
        assert cli_main(["broker", "status", *where]) == 1
    finally:
        launcher.stop_broker(load_settings(), state_dir=state)


@pytest.mark.kafka
def test_start_cleans_up_a_broker_left_by_a_killed_session(sandbox: Path) -> None:
    # A session that started a broker and was killed outright (SIGKILL: no cleanup ran).
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from crm_attribution.settings.typed import load_settings
        from stream.broker.launcher import start_broker
        info = start_broker(load_settings(), state_dir={str(sandbox / "old")!r},
                            data_dir={str(sandbox / "old-data")!r}, owner_pid=os.getpid())
        print(info.pid, flush=True)
        time.sleep(600)
        """
    )
    session = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert session.stdout is not None
    line = session.stdout.readline()
    assert line, "the session subprocess failed to start its broker"
    orphan = int(line)
    session.kill()
    session.wait(timeout=30)
    assert is_alive(orphan), "the broker should outlive its killed session"

    settings = load_settings()
    info = launcher.start_broker(
        settings, state_dir=sandbox / "new", data_dir=sandbox / "new-data", owner_pid=os.getpid()
    )
    try:
        assert not is_alive(orphan), "the next start should have stopped the orphaned broker"
        assert our_jvms_under(sandbox) == [info.pid]
    finally:
        launcher.stop_broker(settings, state_dir=sandbox / "new")
    assert our_jvms_under(sandbox) == []


@pytest.mark.kafka
def test_start_replaces_state_whose_process_is_dead(sandbox: Path) -> None:
    settings = load_settings()
    state = sandbox / "state"
    state.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = {
        "pid": dead.pid,
        "bootstrap": "127.0.0.1:1",
        "data_dir": str(sandbox / "data"),
        "log_file": "x",
        "config": str(sandbox / "data" / "server.properties"),
        "kafka_version": "4.1.1",
    }
    (state / "broker.json").write_text(json.dumps(stale))
    assert launcher.resolve_bootstrap(settings, state) is None
    info = launcher.start_broker(settings, state_dir=state, data_dir=sandbox / "data")
    try:
        assert info.pid != dead.pid and info.running
        assert launcher.resolve_bootstrap(settings, state) == info.bootstrap
    finally:
        launcher.stop_broker(settings, state_dir=state)
    assert launcher.resolve_bootstrap(settings, state) is None


def test_resolve_bootstrap_prefers_the_configured_address(tmp_path: Path) -> None:
    settings = load_settings(environ={"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"})
    assert launcher.resolve_bootstrap(settings, tmp_path) == "kafka:9092"
    assert launcher.resolve_bootstrap(load_settings(environ={}), tmp_path) is None


def test_recorded_pid_of_another_program_is_not_ours(tmp_path: Path) -> None:
    # A recycled PID now belonging to something else must never be treated as the broker.
    other = subprocess.Popen(["sleep", "30"])
    try:
        info = launcher.BrokerInfo(
            pid=other.pid,
            bootstrap="127.0.0.1:1",
            data_dir=str(tmp_path),
            log_file="x",
            config=str(tmp_path / "server.properties"),
            kafka_version="4.1.1",
        )
        assert not info.running
        launcher._write_state(tmp_path, info)
        launcher.stop_broker(load_settings(environ={}), state_dir=tmp_path, grace_s=1.0)
        assert other.poll() is None, "stop must not signal a process that is not our broker"
    finally:
        other.kill()
        other.wait()


def test_cache_dir_follows_setting_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert launcher.cache_dir_for(load_settings(environ={})) == tmp_path / "xdg" / "crm-attribution"
    chosen = load_settings(environ={"CRM_KAFKA__CACHE_DIR": str(tmp_path / "mine")})
    assert launcher.cache_dir_for(chosen) == tmp_path / "mine"


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match=r"Maven \(mvn\) is not installed"):
        ensure_jars(tmp_path / "cache", "4.1.1")


def test_failing_maven_names_maven_central_and_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(
        "#!/bin/sh\necho 'Could not transfer artifact: network is unreachable'\nexit 1\n"
    )
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(BrokerError) as caught:
        ensure_jars(tmp_path / "cache", "4.1.1")
    message = str(caught.value)
    assert "Maven Central must be reachable" in message
    assert "network is unreachable" in message
    assert str(tmp_path / "cache" / "kafka-4.1.1" / "mvn.log") in message
    assert not (tmp_path / "cache" / "kafka-4.1.1" / "complete").exists()


def test_fresh_refuses_to_delete_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(BrokerError, match="refusing to delete"):
        launcher.start_broker(
            load_settings(environ={}), state_dir=tmp_path / "s", data_dir=tmp_path, fresh=True
        )
    assert (tmp_path / "precious.txt").read_text() == "keep me"
