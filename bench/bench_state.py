"""Worker memory per customer and drain rate, with the memory or the RocksDB store.

    python bench/bench_state.py [--customers 5000,20000] [--days 10] [--store memory://]
                                [--bootstrap HOST:PORT] [--out bench/out]

For each customer count: a fresh worker starts on fresh topics and reports ready; its resident
memory is read (the baseline: Python, Faust, numpy, the app); the generated log (the stream
benchmark's generator, seed 3) is produced, the worker drains it, and its resident memory is
read again. Reported per count: events, customers held, drain rate (events/s, first consumed to
last), RSS before and after, and (after - before) / customers held: the memory each customer
costs. The slope between two counts is the same cost without the few fixed buffers that grow
with the first events. Without --bootstrap it uses (or starts) the embedded broker.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Run as a script: bench/ is on sys.path.
from bench_stream import bootstrap_or_local  # noqa: E402

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from crm_attribution.settings.typed import load_settings  # noqa: E402
from stream.kafka.admin import ensure_topics  # noqa: E402
from stream.kafka.producer import EventProducer, produce_lines  # noqa: E402
from tests.integration.stream_harness import Worker, get_json, unique_env  # noqa: E402


def rss_kb(worker: Worker) -> int:
    """The worker process's resident memory, KB."""
    assert worker.process is not None
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def measure(bootstrap: str, customers: int, days: int, store: str, log_dir: Path) -> dict[str, Any]:
    """One fresh worker drains one fresh log; its memory before and after."""
    lines = list(generate(GeneratorConfig(customers=customers, days=days, seed=3)))
    env = {**unique_env(partitions=4), "CRM_WORKER__STORE": store}
    settings = load_settings(environ=env)
    ensure_topics(bootstrap, settings)
    worker = Worker(bootstrap, env, log_dir, f"state-{customers}").start()
    try:
        deadline = time.monotonic() + 180
        while get_json(f"{worker.url}/ready")[0] != 200:
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"worker not ready:\n{worker.log_tail()}")
            time.sleep(0.5)
        time.sleep(3)
        before = rss_kb(worker)
        with EventProducer(bootstrap, settings.kafka) as producer:
            report = produce_lines(list(enumerate(lines, 1)), producer, settings)
        total = sum(report.sent.values())
        first_at = first_done = None
        while True:
            body = get_json(f"{worker.url}/metrics-json")[1] or {}
            done = int(body.get("events_in", 0))
            if done and first_at is None:
                first_at, first_done = time.monotonic(), done
            if done >= total:
                break
            if not worker.alive():
                raise RuntimeError(f"worker died:\n{worker.log_tail()}")
            time.sleep(0.2)
        assert first_at is not None and first_done is not None
        rate = (done - first_done) / max(1e-9, time.monotonic() - first_at)
        time.sleep(3)
        after = rss_kb(worker)
        held = int(get_json(f"{worker.url}/metrics-json")[1]["customers_held"])
        return {
            "customers": customers,
            "events": total,
            "customers_held": held,
            "drain_events_per_s": round(rate),
            "rss_mb_before": round(before / 1024, 1),
            "rss_mb_after": round(after / 1024, 1),
            "kb_per_customer": round((after - before) / max(1, held), 2),
        }
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", default="5000,20000", help="comma-separated counts")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--store", default="memory://", help="memory:// or rocksdb://")
    parser.add_argument("--bootstrap")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    args = parser.parse_args()
    log_dir = Path(args.out)
    log_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = bootstrap_or_local(args.bootstrap, load_settings())
    rows = []
    for count in (int(c) for c in args.customers.split(",")):
        rows.append(measure(bootstrap, count, args.days, args.store, log_dir))
        print(json.dumps(rows[-1]), flush=True)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        slope = (
            (b["rss_mb_after"] - a["rss_mb_after"])
            * 1024
            / max(1, b["customers_held"] - a["customers_held"])
        )
        print(
            f"slope between {a['customers']} and {b['customers']} customers: "
            f"{slope:.2f} KB per customer ({args.store})"
        )
    (log_dir / "bench_state.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
