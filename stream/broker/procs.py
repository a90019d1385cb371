"""Processes of the local broker: proving a JVM is ours, stopping it, reaping orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

MAIN_CLASS = "kafka.Kafka"
# JVM system properties that mark a broker JVM as started by this launcher. They are only
# read back from /proc/<pid>/cmdline, never by Kafka.
DATA_DIR_PROP = "-Dcrm_attribution.broker="
OWNER_PROP = "-Dcrm_attribution.owner="


def cmdline(pid: int) -> list[str]:
    """The command line of a process ([] if it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def start_time(pid: int) -> int | None:
    """Kernel start time of a process in clock ticks; tells a PID apart from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in field 2 may contain spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19])


def is_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def owner_token(pid: int | None = None) -> str:
    """``PID:STARTTIME`` of a process (default: this one), the value of the owner property."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_time(pid)}"


def is_our_broker(pid: int, config_path: Path) -> bool:
    """True only if ``pid`` is a Kafka JVM started by this launcher with ``config_path``."""
    args = cmdline(pid)
    return (
        MAIN_CLASS in args
        and str(config_path) in args
        and any(a.startswith(DATA_DIR_PROP) for a in args)
    )


def _owner_gone(token: str) -> bool:
    pid_text, _, started = token.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return not is_alive(pid) or str(start_time(pid)) != started


def orphan_brokers() -> list[int]:
    """Broker JVMs of this launcher whose owning process (a test session, a demo) has died."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = cmdline(int(entry.name))
        if MAIN_CLASS not in args or not any(a.startswith(DATA_DIR_PROP) for a in args):
            continue
        owners = [a[len(OWNER_PROP) :] for a in args if a.startswith(OWNER_PROP)]
        if owners and _owner_gone(owners[0]) and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _reap(pid: int) -> None:
    # Our own child stays a zombie until waited for; anyone else's is reaped by its parent.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, grace_s: float = 30.0) -> None:
    """SIGTERM (Kafka's clean shutdown), then SIGKILL if it has not exited after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            _reap(pid)
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            _reap(pid)
            if not is_alive(pid):
                return
            time.sleep(0.1)


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the kernel sends the child ``sig`` when the parent thread exits."""

    def _set() -> None:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, sig)

    return _set
