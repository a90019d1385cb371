"""Stream benchmark: full pipeline vs a trivial counting Faust agent, on the same broker, one run.

    python bench/bench_stream.py [--customers 5000] [--days 10] [--bootstrap HOST:PORT]

Reports: drain rate (events/s) of one pipeline worker, of the trivial agent and their ratio
(medians of ``--repeats`` alternating rounds, default 3, and each round's ratio); the
rate with two pipeline workers; purchase-to-output latency (p50, p99) at a steady load; worker
memory per held customer journey. Without --bootstrap it uses (or starts) the embedded broker.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from crm_attribution.settings.typed import Settings, load_settings  # noqa: E402
from stream.kafka.admin import ensure_topics  # noqa: E402
from stream.kafka.producer import EventProducer, produce_lines  # noqa: E402
from tests.integration.stream_harness import Worker, free_port, get_json, unique_env  # noqa: E402


def produce_all(bootstrap: str, settings: Any, lines: list[str]) -> int:
    """Send the valid lines; return how many were sent."""
    with EventProducer(bootstrap, settings.kafka) as producer:
        report = produce_lines(list(enumerate(lines, 1)), producer, settings)
    return sum(report.sent.values())


def input_topics(settings: Settings) -> list[str]:
    """The four event topics a log is produced to (what the trivial agent reads)."""
    t = settings.topics
    return [t.touchpoints, t.purchases, t.costs, t.assignments]


def start_trivial_agent(
    bootstrap: str, settings: Settings, port: int, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """The counting Faust agent (bench/trivial_app.py) on the input topics, in its own group."""
    return subprocess.Popen(
        [
            sys.executable,
            str(REPO / "bench" / "trivial_app.py"),
            bootstrap,
            f"trivial-{uuid.uuid4().hex[:6]}",
            str(port),
            *input_topics(settings),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def trivial_count(port: int) -> int:
    """Events the trivial agent on ``port`` has counted so far."""
    return int((get_json(f"http://127.0.0.1:{port}/count")[1] or {}).get("count", 0))


def bootstrap_or_local(given: str | None, settings: Settings) -> str:
    """``--bootstrap`` if given, else the embedded broker (started if none runs)."""
    if given:
        return given
    from stream.broker.launcher import ensure_broker

    bootstrap, _ = ensure_broker(settings)
    return bootstrap


def trivial_rate(bootstrap: str, lines: list[str], log_dir: Path) -> float:
    env = unique_env(partitions=4)
    settings = load_settings(environ=env)
    ensure_topics(bootstrap, settings)
    total = produce_all(bootstrap, settings, lines)
    port = free_port()
    proc = start_trivial_agent(bootstrap, settings, port, (log_dir / "trivial.log").open("wb"))
    try:
        return _drain_rate(lambda: trivial_count(port), total)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _drain_rate(progress: Any, total: int, timeout: float = 1800.0) -> float:
    """Events per second from the first event consumed to the last."""
    deadline = time.monotonic() + timeout
    first_at = None
    while time.monotonic() < deadline:
        done = progress()
        if done and first_at is None:
            first_at, first_done = time.monotonic(), done
        if done >= total:
            assert first_at is not None
            return (done - first_done) / max(1e-9, time.monotonic() - first_at)
        time.sleep(0.2)
    raise RuntimeError(f"did not drain {total} events in {timeout}s")


def pipeline_rate(
    bootstrap: str,
    lines: list[str],
    log_dir: Path,
    workers: int,
    extra_env: dict[str, str] | None = None,
) -> tuple[float, list[Worker]]:
    env = {**unique_env(partitions=4), **(extra_env or {})}
    settings = load_settings(environ=env)
    ensure_topics(bootstrap, settings)
    total = produce_all(bootstrap, settings, lines)
    running = [
        Worker(bootstrap, env, log_dir, f"bench-{workers}-{i}").start() for i in range(workers)
    ]

    def consumed() -> int:
        total = 0
        for worker in running:
            status, body = get_json(f"{worker.url}/metrics-json")
            if status == 200:
                total += int(body.get("events_in", 0))
        return total

    rate = _drain_rate(consumed, total)
    return rate, running


def latency(bootstrap: str, lines: list[str], log_dir: Path, rate: float) -> dict[str, float]:
    """Purchase produced -> its attribution record on the output topic, at a steady load."""
    from kafka import KafkaConsumer

    env = unique_env(partitions=4)
    settings = load_settings(environ=env)
    ensure_topics(bootstrap, settings)
    worker = Worker(bootstrap, env, log_dir, "latency").start()
    sent_at: dict[str, float] = {}
    try:
        while get_json(f"{worker.url}/ready")[0] != 200:
            time.sleep(0.5)
        consumer = KafkaConsumer(
            settings.topics.attributions,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=20_000,
        )

        def feed() -> None:
            with EventProducer(bootstrap, settings.kafka) as producer:
                started = time.monotonic()
                for i, line in enumerate(lines, 1):
                    if '"purchase"' in line:
                        sent_at[json.loads(line)["order_id"]] = time.time()
                    produce_lines([(i, line)], producer, settings)
                    ahead = i / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)

        feeder = threading.Thread(target=feed)
        feeder.start()
        delays = []
        seen = set()
        for message in consumer:
            record = json.loads(message.value)
            order = record["order_id"]
            if order in sent_at and order not in seen and not record["retracted"]:
                seen.add(order)
                delays.append(message.timestamp / 1000.0 - sent_at[order])
        feeder.join()
        consumer.close()
    finally:
        worker.stop()
    delays.sort()
    return {
        "orders": len(delays),
        "p50_ms": 1000 * statistics.median(delays),
        "p99_ms": 1000 * delays[int(0.99 * (len(delays) - 1))],
    }


def transactions_cost(bootstrap: str, lines: list[str], log_dir: Path, repeats: int) -> None:
    """Drain rate of one worker with exactly_once and with at_least_once, alternating."""
    rates: dict[str, list[float]] = {"exactly_once": [], "at_least_once": []}
    for round_ in range(repeats):
        for guarantee in rates:
            env = {"CRM_WORKER__PROCESSING_GUARANTEE": guarantee}
            rate, workers = pipeline_rate(bootstrap, lines, log_dir, 1, env)
            for w in workers:
                w.stop()
            rates[guarantee].append(rate)
            print(f"[{round_ + 1}] {guarantee}: {rate:,.0f} events/s", flush=True)
        ratio = rates["exactly_once"][-1] / rates["at_least_once"][-1]
        print(f"[{round_ + 1}] transactions keep {ratio:.0%} of the rate", flush=True)
    eos, alo = (statistics.median(rates[g]) for g in ("exactly_once", "at_least_once"))
    print(f"medians: exactly_once {eos:,.0f}, at_least_once {alo:,.0f} ({eos / alo:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--bootstrap")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    parser.add_argument("--repeats", type=int, default=3, help="trivial/pipeline rounds")
    parser.add_argument(
        "--latency-rates",
        help="only measure purchase-to-record latency, at these comma-separated events/s",
    )
    parser.add_argument(
        "--transactions",
        action="store_true",
        help="only compare one worker with and without Kafka transactions, alternating rounds",
    )
    args = parser.parse_args()
    log_dir = Path(args.out)
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    bootstrap = bootstrap_or_local(args.bootstrap, settings)
    lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days, seed=3)))
    print(f"{len(lines)} events, {args.customers} customers, broker {bootstrap}", flush=True)
    if args.latency_rates:
        for rate in (float(r) for r in args.latency_rates.split(",")):
            print(f"latency at {rate:,.0f} events/s: {latency(bootstrap, lines, log_dir, rate)}")
        return
    if args.transactions:
        transactions_cost(bootstrap, lines, log_dir, args.repeats)
        return
    # The trivial agent's own rate moves by a quarter between runs on this machine: alternate
    # the two, and report the median of each and every pair's ratio.
    trivials: list[float] = []
    ones: list[float] = []
    for round_ in range(args.repeats):
        trivials.append(trivial_rate(bootstrap, lines, log_dir))
        print(f"[{round_ + 1}] trivial agent: {trivials[-1]:,.0f} events/s", flush=True)
        rate, workers = pipeline_rate(bootstrap, lines, log_dir, 1)
        ones.append(rate)
        status, metrics = get_json(f"{workers[0].url}/metrics-json")
        process = workers[0].process
        assert process is not None
        rss_kb = int(Path(f"/proc/{process.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        for w in workers:
            w.stop()
        print(
            f"[{round_ + 1}] pipeline, 1 worker: {rate:,.0f} events/s "
            f"({rate / trivials[-1]:.0%} of that round's trivial)",
            flush=True,
        )
    trivial = statistics.median(trivials)
    one = statistics.median(ones)
    print(f"medians: trivial {trivial:,.0f}, pipeline {one:,.0f} ({one / trivial:.0%})", flush=True)
    two, workers = pipeline_rate(bootstrap, lines, log_dir, 2)
    for w in workers:
        w.stop()
    print(f"pipeline, 2 workers: {two:,.0f} events/s", flush=True)
    lat = latency(bootstrap, lines[: min(len(lines), 60_000)], log_dir, rate=max(100.0, one * 0.5))
    print(f"latency at {max(100.0, one * 0.5):,.0f} events/s: {lat}", flush=True)
    result = {
        "events": len(lines),
        "customers": args.customers,
        "trivial_events_per_s": trivial,
        "pipeline_1_worker_events_per_s": one,
        "ratio": one / trivial,
        "trivial_runs": trivials,
        "pipeline_1_worker_runs": ones,
        "ratio_per_round": [p / t for p, t in zip(ones, trivials, strict=True)],
        "pipeline_2_workers_events_per_s": two,
        "latency": lat,
        "worker_rss_mb": rss_kb / 1024,
        "customers_held": metrics.get("customers_held"),
        "rss_kb_per_customer": rss_kb / max(1, metrics.get("customers_held") or 1),
    }
    print(json.dumps(result, indent=2))
    (log_dir / "bench_stream.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
