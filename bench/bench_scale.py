"""Issue 11's numbers at scale: memory per customer with both stores, drains, latency.

    python bench/bench_scale.py --customers 60000 --days 180 \
        [--runs baseline,memory,trivial,two,rocksdb] [--bootstrap HOST:PORT] [--out bench/out]
    python bench/bench_scale.py --customers 60000 --days 180 --latency-rate 1000 \
        --latency-seconds 300

Drain mode: the generator's log (default profile, seed 3) is produced once to fresh input
topics; then each run in ``--runs`` reads all of it with its own consumer group (and its own
output topics), one after another, in the same run:

- ``baseline``: a worker of each store named in the runs on empty topics, once ready: its
  resident memory is what a worker costs before it holds any customer;
- ``memory`` / ``rocksdb``: one worker with ``worker.store = memory://`` / ``rocksdb://``
  drains the log: events/s from the first consumed to the last, then its resident memory
  (VmRSS) and peak (VmHWM), and (RSS after - the baseline's) / customers held;
- ``trivial``: the counting Faust agent (``bench/trivial_app.py``), the throughput reference;
- ``two``: two memory-store workers drain it together (events/s of both).

With ``--compare`` each drain is also checked against the batch on the same log: once the
workers' ``/totals`` reach the batch's, ``/attribution`` must equal ``crm-attribution attribute
--events --models all`` and ``/analytics?fresh=1`` must equal ``crm-attribution report``
(``tests/compare.assert_same``: counts exact, other numbers to 1e-9); the row says whether
they did and, if not, the first difference.

Latency mode (``--latency-rate``): one worker on fresh topics, ready and empty; the log's
leading holdout assignments are sent at once and read; then a producer sends the rest in order
paced at that many events/s for ``--latency-seconds``; a read_committed
consumer of the attributions topic notes when each order's first record arrives. Reported: the
delay from the purchase's send to that arrival, p50/p95/p99/max, and orders never seen; and
the worker's own view (``crm_purchase_to_table_seconds``, broker timestamp to committed
credits, as histogram bucket bounds), which leaves out the benchmark's producer and reader.
Without --bootstrap it uses (or starts) the embedded broker. Every row is printed as JSON and
appended to ``<out>/bench_scale.jsonl`` with the time and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Run as a script: bench/ is on sys.path.
from bench_stream import (  # noqa: E402
    bootstrap_or_local,
    input_topics,
    start_trivial_agent,
    trivial_count,
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from crm_attribution.cli import main as cli_main  # noqa: E402
from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from crm_attribution.settings.typed import load_settings  # noqa: E402
from stream.kafka.admin import ensure_topics  # noqa: E402
from stream.kafka.producer import EventProducer, produce_lines  # noqa: E402
from tests.compare import assert_same  # noqa: E402
from tests.integration.stream_harness import Worker, free_port, get_json, unique_env  # noqa: E402

DRAIN_TIMEOUT_S = 7200.0
SETTLE_TIMEOUT_S = 900.0


def batch_answers(lines: list[str], log_dir: Path) -> dict[str, Any]:
    """The batch's ``attribute --events --models all`` and ``report`` JSON on ``lines``."""
    path = log_dir / "compare_log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    answers = {}
    for name, argv in (
        ("attribution", ["attribute", str(path), "--events", "--models", "all"]),
        ("analytics", ["report", str(path)]),
    ):
        started = time.monotonic()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli_main([*argv, "--format", "json"])
        if code != 0:
            raise RuntimeError(f"batch {name} exited {code}")
        answers[name] = json.loads(out.getvalue())
        took = time.monotonic() - started
        print(f"batch {name}: {took:.0f} s", file=sys.stderr, flush=True)
    path.unlink()
    return answers


def compare_with_batch(url: str, answers: dict[str, Any]) -> dict[str, Any]:
    """Whether the worker at ``url`` answers what the batch does, once its totals settle."""
    expected = answers["attribution"]["totals"]
    keys = ("conversions", "null", "unattributed_conversions", "invalid_records")
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    totals: Any = None
    while time.monotonic() < deadline:
        status, totals = get_json(f"{url}/totals", timeout=120)
        if status == 200 and all(totals.get(k) == expected[k] for k in keys):
            break
        time.sleep(2)
    else:
        return {"equals_batch": False, "first_difference": f"/totals {totals} != {expected}"}
    row: dict[str, Any] = {"equals_batch": True}
    for name, path in (("attribution", "/attribution"), ("analytics", "/analytics?fresh=1")):
        started = time.monotonic()
        status, body = get_json(f"{url}{path}", timeout=900)
        row[f"{name}_answer_s"] = round(time.monotonic() - started, 1)
        try:
            if status != 200:
                raise AssertionError(f"{path}: HTTP {status}: {body}")
            assert_same(body, answers[name], name)
        except AssertionError as difference:
            row["equals_batch"] = False
            row.setdefault("first_difference", str(difference)[:500])
    return row


def proc_kb(pid: int, field: str) -> int:
    """A /proc/PID/status memory field (VmRSS, VmHWM), KB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0])


def own_outputs(inputs: dict[str, str]) -> dict[str, str]:
    """The input topics of ``inputs`` with a new app id and new output topics."""
    run = uuid.uuid4().hex[:8]
    return {
        **inputs,
        "CRM_WORKER__APP_ID": f"crm-scale-{run}",
        "CRM_TOPICS__DEAD_LETTER": f"s-{run}-dead-letter",
        "CRM_TOPICS__ATTRIBUTIONS": f"s-{run}-attributions",
    }


def wait_ready(worker: Worker, timeout: float = 300.0) -> None:
    """Block until the worker answers /ready with 200."""
    deadline = time.monotonic() + timeout
    while get_json(f"{worker.url}/ready")[0] != 200:
        if time.monotonic() > deadline or not worker.alive():
            raise RuntimeError(f"worker {worker.name} not ready:\n{worker.log_tail()}")
        time.sleep(0.5)


def drain(
    progress: Any,
    total: int,
    alive: Any,
    label: str,
    max_seconds: float = DRAIN_TIMEOUT_S,
    every_minute: Any = None,
) -> tuple[float, int]:
    """Events per second from the first event consumed to the last (or to ``max_seconds``
    after the start), and the events consumed; ``every_minute(done)`` is called each minute."""
    deadline = time.monotonic() + max_seconds
    first_at = first_done = None
    shown = time.monotonic()
    done = 0
    while time.monotonic() < deadline:
        done = progress()
        if done and first_at is None:
            first_at, first_done = time.monotonic(), done
        if done >= total:
            break
        if not alive():
            raise RuntimeError(f"{label} died at {done} of {total} events")
        if time.monotonic() - shown > 60:
            print(f"  {label}: {done:,} of {total:,} events", file=sys.stderr, flush=True)
            if every_minute is not None:
                every_minute(done)
            shown = time.monotonic()
        time.sleep(0.5)
    if first_at is None or first_done is None:
        raise RuntimeError(f"{label} consumed nothing in {max_seconds} s")
    return (done - first_done) / max(1e-9, time.monotonic() - first_at), done


def events_in(workers: list[Worker]) -> int:
    """Records read by all the workers together."""
    total = 0
    for worker in workers:
        status, body = get_json(f"{worker.url}/metrics-json")
        if status == 200:
            total += int(body.get("events_in", 0))
    return total


def baseline_row(bootstrap: str, store: str, log_dir: Path) -> dict[str, Any]:
    """A ready worker's memory on empty topics."""
    env = {**unique_env(partitions=4), "CRM_WORKER__STORE": store}
    ensure_topics(bootstrap, load_settings(environ=env))
    worker = Worker(bootstrap, env, log_dir, f"scale-baseline-{uuid.uuid4().hex[:6]}").start()
    try:
        wait_ready(worker)
        time.sleep(5)
        assert worker.process is not None
        rss = proc_kb(worker.process.pid, "VmRSS")
    finally:
        worker.stop()
    return {"run": "baseline", "store": store, "rss_mb": round(rss / 1024, 1)}


def worker_row(
    bootstrap: str,
    inputs: dict[str, str],
    total: int,
    store: str,
    log_dir: Path,
    workers: int,
    max_seconds: float,
    label: str,
    answers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``workers`` fresh workers with ``store`` drain the produced log (at most
    ``max_seconds``); their memory is sampled every minute into ``<out>/bench_scale.jsonl``;
    with ``answers`` (the batch's) the drained workers' answers are compared with them."""
    env = {**own_outputs(inputs), "CRM_WORKER__STORE": store}
    ensure_topics(bootstrap, load_settings(environ=env))
    tag = uuid.uuid4().hex[:6]
    running = [
        Worker(bootstrap, env, log_dir, f"scale-{store[:-3]}-{workers}-{i}-{tag}").start()
        for i in range(workers)
    ]
    try:
        started = time.monotonic()
        run = f"{workers} worker{'s' if workers > 1 else ''}"

        def sample(done: int) -> None:
            row = {"run": f"{run} (sample)", "store": store, "events_done": done}
            row.update(memory(running))
            row["seconds"] = round(time.monotonic() - started)
            record(row, log_dir, label)

        rate, done = drain(
            lambda: events_in(running),
            total,
            lambda: all(w.alive() for w in running),
            f"{workers} {store} worker(s)",
            max_seconds,
            sample,
        )
        wall = time.monotonic() - started
        time.sleep(5)
        row: dict[str, Any] = {
            "run": run,
            "store": store,
            "events": total,
            "events_done": done,
            "events_per_s": round(rate),
            "wall_s_from_start": round(wall),
        }
        row.update(memory(running))
        row.update(work_per_event(running))
        if answers is not None:
            row.update(compare_with_batch(running[0].url, answers))
        if store.startswith("rocksdb"):
            data = sum(
                f.stat().st_size for w in running for f in w.data_dir.rglob("*") if f.is_file()
            )
            row["data_dir_mb"] = round(data / 2**20, 1)
        return row
    finally:
        for worker in running:
            worker.stop()


def work_per_event(running: list[Worker]) -> dict[str, Any]:
    """Customer records decoded, journeys rebuilt and journeys retracted per event read, all
    workers together (``bench/bench_runner_cpu.py`` prints the first two broker-free)."""
    read = decoded = rebuilt = retracted = 0.0
    for worker in running:
        body = get_json(f"{worker.url}/metrics-json")[1]
        read += body.get("events_in", 0)
        decoded += body.get("customer_records_decoded", 0)
        rebuilt += body.get("journey_rebuilds", 0)
        retracted += body.get("journey_changes", {}).get("retracted", 0)
    if not read:
        return {}
    return {
        "decoded_per_event": round(decoded / read, 3),
        "rebuilds_per_event": round(rebuilt / read, 3),
        "retracted_per_event": round(retracted / read, 4),
    }


def memory(running: list[Worker]) -> dict[str, Any]:
    """The workers' customers held, resident memory and peak resident memory, summed."""
    held = rss = hwm = 0
    for worker in running:
        assert worker.process is not None
        rss += proc_kb(worker.process.pid, "VmRSS")
        hwm += proc_kb(worker.process.pid, "VmHWM")
        held += int(get_json(f"{worker.url}/metrics-json")[1].get("customers_held", 0))
    return {
        "customers_held": held,
        "rss_mb": round(rss / 1024, 1),
        "peak_rss_mb": round(hwm / 1024, 1),
    }


def input_total(bootstrap: str, inputs: dict[str, str]) -> int:
    """Records in the input topics of ``inputs`` (sum of their end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    settings = load_settings(environ=inputs)
    topics = input_topics(settings)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(settings.topics.partitions)]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def trivial_row(
    bootstrap: str, inputs: dict[str, str], total: int, log_dir: Path, max_seconds: float
) -> dict[str, Any]:
    """The counting agent drains the produced log."""
    port = free_port()
    log = (log_dir / "scale-trivial.log").open("ab")
    proc = start_trivial_agent(bootstrap, load_settings(environ=inputs), port, log)
    try:
        rate, done = drain(
            lambda: trivial_count(port),
            total,
            lambda: proc.poll() is None,
            "trivial agent",
            max_seconds,
        )
        return {
            "run": "trivial agent",
            "events": total,
            "events_done": done,
            "events_per_s": round(rate),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def latency_row(
    bootstrap: str, lines: list[str], log_dir: Path, rate: float, seconds: float
) -> dict[str, Any]:
    """Purchase sent -> its first attribution record read (read_committed), at a paced load."""

    env = unique_env(partitions=4)
    settings = load_settings(environ=env)
    ensure_topics(bootstrap, settings)
    worker = Worker(bootstrap, env, log_dir, f"scale-latency-{uuid.uuid4().hex[:6]}").start()
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    stop = threading.Event()
    sent = {"events": 0}
    # The reader is a process of its own: sharing this one's GIL with the paced producer, a
    # burst of attribution records to decode delayed the sends it was timing.
    spawn = multiprocessing.get_context("spawn")
    reader_ready, reader_stop = spawn.Event(), spawn.Event()
    reader_out: Any = spawn.Queue()
    reader = spawn.Process(
        target=read_first_records,
        args=(bootstrap, settings.topics.attributions, reader_ready, reader_stop, reader_out),
        daemon=True,
    )
    try:
        wait_ready(worker)
        reader.start()
        if not reader_ready.wait(120):
            raise RuntimeError("the attributions reader did not join its partitions")
        # Once a second while paced: how many customers' journeys the worker holds back for a
        # backlogged topic (a live stream should hold none; docs/stream.md, "Held journeys").
        held_samples: list[int] = []

        def sample_held() -> None:
            while not stop.is_set():
                status, body = get_json(f"{worker.url}/metrics-json")
                if status == 200 and sent["events"]:
                    held_samples.append(int(body.get("customers_with_held_journeys", 0)))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample_held, daemon=True)
        sampler.start()
        # The log opens with every customer's holdout assignment: send those at once and let
        # the worker read them, so that the paced part is the steady touch and purchase traffic.
        lead = next(i for i, line in enumerate(lines) if '"assignment"' not in line)
        with EventProducer(bootstrap, settings.kafka) as producer:
            produce_lines(list(enumerate(lines[:lead], 1)), producer, settings)
        while events_in([worker]) < lead:
            time.sleep(0.5)
        time.sleep(3)  # the reader has joined its partitions before the first purchase
        with EventProducer(bootstrap, settings.kafka) as producer:
            started = time.monotonic()
            for i, line in enumerate(lines[lead:], 1):
                if time.monotonic() - started > seconds:
                    break
                if '"purchase"' in line:
                    sent_at[json.loads(line)["order_id"]] = time.time()
                produce_lines([(i, line)], producer, settings)
                sent["events"] = i
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            elapsed = time.monotonic() - started
        time.sleep(30)  # for the last orders' records
        reader_stop.set()
        seen_at = reader_out.get(timeout=60)
        reader.join(timeout=30)
        stop.set()
        sampler.join(timeout=10)
        in_worker = purchase_to_table(worker.url)
    finally:
        reader_stop.set()
        worker.stop()
    delays = sorted(seen_at[o] - t for o, t in sent_at.items() if o in seen_at)

    def pct(q: float) -> float:
        return round(1000 * delays[min(len(delays) - 1, int(q * len(delays)))], 1)

    return {
        "run": "latency",
        "target_events_per_s": rate,
        "sent_events_per_s": round(sent["events"] / elapsed),
        "seconds": round(elapsed),
        "orders": len(sent_at),
        "orders_never_seen": len(sent_at) - len(delays),
        "p50_ms": round(1000 * statistics.median(delays), 1),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * delays[-1], 1),
        "held_samples": len(held_samples),
        "samples_with_held_journeys": sum(1 for n in held_samples if n),
        "max_customers_with_held_journeys": max(held_samples, default=0),
        **in_worker,
    }


def read_first_records(bootstrap: str, topic: str, ready: Any, stop: Any, out: Any) -> None:
    """In a process of its own: when each order's first record of ``topic`` was read
    (read_committed), put as {order id: time.time()} on ``out`` once ``stop`` is set."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        fetch_max_wait_ms=50,
    )
    seen_at: dict[str, float] = {}
    while not consumer.assignment():
        consumer.poll(timeout_ms=100)
    ready.set()
    while not stop.is_set():
        for records in consumer.poll(timeout_ms=100).values():
            now = time.time()
            for message in records:
                seen_at.setdefault(json.loads(message.value)["order_id"], now)
    consumer.close()
    out.put(seen_at)


def purchase_to_table(url: str) -> dict[str, Any]:
    """The worker's own purchase latency (``crm_purchase_to_table_seconds``: the purchase's
    broker timestamp to its batch committed), as the histogram's bucket bounds of p50/p95/p99
    and the share within 1 s: what the benchmark's reader adds to its delays is left out."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    buckets = [
        (float(sample.labels["le"]), sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == "crm_purchase_to_table_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    ]
    total = buckets[-1][1] if buckets else 0.0
    if not total:
        return {"worker_purchases": 0}

    def upper(q: float) -> float:
        return next(bound for bound, count in buckets if count >= q * total)

    within_1s = next(count for bound, count in buckets if bound == 1.0)
    return {
        "worker_purchases": int(total),
        "worker_p50_le_s": upper(0.5),
        "worker_p95_le_s": upper(0.95),
        "worker_p99_le_s": upper(0.99),
        "worker_within_1s": round(within_1s / total, 4),
    }


def record(row: dict[str, Any], log_dir: Path, label: str) -> None:
    """Print a row and append it, with the time and the load average, to the results file."""
    row = {
        "at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "label": label,
        "load_1m": os.getloadavg()[0],
        **row,
    }
    print(json.dumps(row), flush=True)
    with (log_dir / "bench_scale.jsonl").open("a") as out:
        out.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=60000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--runs", default="baseline,memory,trivial,two,rocksdb")
    parser.add_argument("--latency-rate", type=float, help="only latency, at this events/s")
    parser.add_argument("--latency-seconds", type=float, default=300.0)
    parser.add_argument(
        "--inputs", help="read the input topics t-RUN-* an earlier run produced (RUN: their id)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=DRAIN_TIMEOUT_S, help="stop each drain after this"
    )
    parser.add_argument("--bootstrap")
    parser.add_argument(
        "--compare", action="store_true", help="check each drain's answers against the batch"
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    args = parser.parse_args()
    log_dir = Path(args.out)
    log_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = bootstrap_or_local(args.bootstrap, load_settings())
    label = f"{args.customers} customers, {args.days} days, seed 3"
    lines: list[str] = []
    if not args.inputs or args.compare:
        lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days, seed=3)))
        print(f"{len(lines):,} lines ({label}), broker {bootstrap}", file=sys.stderr, flush=True)
    answers = batch_answers(lines, log_dir) if args.compare else None
    if args.latency_rate:
        row = latency_row(bootstrap, lines, log_dir, args.latency_rate, args.latency_seconds)
        record(row, log_dir, label)
        return
    if args.inputs:
        lines = []  # generated for the batch's answers only: the topics hold the log
    runs = args.runs.split(",")
    if "baseline" in runs:
        for store in ("memory://", "rocksdb://"):
            if store[:-3] in runs or (store == "memory://" and "two" in runs):
                record(baseline_row(bootstrap, store, log_dir), log_dir, label)
    if args.inputs:
        inputs = {
            **unique_env(partitions=4),
            **{
                f"CRM_TOPICS__{kind.upper()}": f"t-{args.inputs}-{kind}"
                for kind in ("touchpoints", "purchases", "costs", "assignments")
            },
        }
        total = input_total(bootstrap, inputs)
        print(f"{total:,} records in t-{args.inputs}-*", file=sys.stderr, flush=True)
    else:
        inputs = unique_env(partitions=4)
        settings = load_settings(environ=inputs)
        ensure_topics(bootstrap, settings)
        started = time.monotonic()
        with EventProducer(bootstrap, settings.kafka) as producer:
            sent = produce_lines(list(enumerate(lines, 1)), producer, settings).sent
        total = sum(sent.values())
        del lines
        took = time.monotonic() - started
        print(
            f"produced {total:,} to {inputs['CRM_TOPICS__TOUCHPOINTS']} etc. in {took:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    cap = args.max_seconds
    for run in runs:
        if run == "trivial":
            record(trivial_row(bootstrap, inputs, total, log_dir, cap), log_dir, label)
        elif run in ("memory", "rocksdb", "two"):
            store, workers = ("memory://", 2) if run == "two" else (f"{run}://", 1)
            row = worker_row(bootstrap, inputs, total, store, log_dir, workers, cap, label, answers)
            record(row, log_dir, label)


if __name__ == "__main__":
    main()
