"""Apache Kafka's jars for the local broker, fetched once from Maven Central through Maven."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

# Kafka 4.1 logs through slf4j 1.7 into log4j 2 but ships no binding between them; without
# one the broker logs nothing at all. The version matches the log4j-core Kafka 4.1.1 pulls.
LOG4J_VERSION = "2.24.3"
MAVEN_TIMEOUT_S = 1200.0


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why."""


def kafka_home(cache_dir: Path, version: str) -> Path:
    """Where the jars of one Kafka version live."""
    return cache_dir / f"kafka-{version}"


def _pom(version: str) -> str:
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.crm-attribution</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def jars_cached(cache_dir: Path, version: str) -> bool:
    """True if Kafka ``version`` was fetched completely before (no Maven run needed)."""
    return (kafka_home(cache_dir, version) / "complete").exists()


def ensure_jars(cache_dir: Path, version: str) -> Path:
    """The lib directory holding Kafka ``version`` and its runtime dependencies.

    The first call runs Maven; later calls find the completion marker and touch no network.
    """
    home = kafka_home(cache_dir, version)
    lib, marker = home / "lib", home / "complete"
    if marker.exists():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    # Two test sessions may start at once on a fresh machine: one fetches, the other waits.
    with (home / "fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return lib
        _fetch(home, version)
        marker.write_text("\n".join(sorted(p.name for p in lib.glob("*.jar"))) + "\n")
    return lib


def _fetch(home: Path, version: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is not installed; the local Kafka broker fetches Apache Kafka "
            f"{version} from Maven Central with it. Install Maven and Java 17+ "
            "(Debian/Ubuntu: apt-get install maven openjdk-17-jre-headless), or point "
            "KAFKA_BOOTSTRAP_SERVERS at an existing broker."
        )
    (home / "pom.xml").write_text(_pom(version))
    partial = home / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    log = home / "mvn.log"
    command = [
        mvn,
        "-B",
        "-q",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial.name}",
        "-DincludeScope=runtime",
    ]
    try:
        with log.open("wb") as out:
            done = subprocess.run(
                command,
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=MAVEN_TIMEOUT_S,
                check=False,
                env={**os.environ, "MAVEN_OPTS": os.environ.get("MAVEN_OPTS", "-Xmx512m")},
            )
    except subprocess.TimeoutExpired:
        raise BrokerError(
            f"Maven did not finish fetching Apache Kafka {version} within "
            f"{MAVEN_TIMEOUT_S:.0f} s; Maven Central must be reachable. Maven's output: {log}"
        ) from None
    kafka_jar = partial / f"kafka_2.13-{version}.jar"
    if done.returncode != 0 or not kafka_jar.exists():
        raise BrokerError(
            f"Maven could not fetch Apache Kafka {version} (org.apache.kafka:kafka_2.13) "
            f"from Maven Central (exit code {done.returncode}); Maven Central must be "
            f"reachable and the setting kafka.kafka_version must name a released version. "
            f"Maven's output is in {log}; its last lines:\n{_tail(log)}"
        )
    shutil.rmtree(home / "lib", ignore_errors=True)
    partial.rename(home / "lib")
