"""`/analytics` benchmark: cold and cached latency, and a worker's drain rate while polled.

    python bench/bench_analytics.py [--customers 60000] [--days 180] [--window 60]
                                    [--polls-per-second 5] [--share 0.1]
                                    [--bootstrap HOST:PORT]

One generated log (seed 3) is produced to fresh topics, then one worker drains it. While it
drains, windows of ``--window`` seconds alternate: no client, then a client asking
``/analytics`` ``--polls-per-second`` times a second (each request on its own thread, at most 8
in flight). Reported: the drain rate of every window and each polled window's ratio to the
mean of the unpolled windows beside it (same run, so the machine's load is shared alike), and
how many polls were rebuilds and how many got the kept, outdated report (the rebuild budget,
``analytics.rebuild_cpu_share``; ``--share`` sets it for the worker). After the drain: the cold
latency (``/analytics?fresh=1`` after one new event, three times: the data changed, so the
report is rebuilt whatever the budget) and the cached latency (20 answers with nothing
changed). Without --bootstrap it starts its own embedded broker (stopped with the script).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from crm_attribution.settings.typed import load_settings  # noqa: E402
from stream.kafka.admin import ensure_topics  # noqa: E402
from stream.kafka.producer import EventProducer, produce_lines  # noqa: E402
from tests.integration.stream_harness import Worker, get_json, unique_env  # noqa: E402

# Requests the poller keeps in flight at most: beyond it a slow answer skips polls.
MAX_IN_FLIGHT = 8


class Poller:
    """Asks ``/analytics`` at a fixed rate while ``on`` is set; records answer latencies."""

    def __init__(self, url: str, per_second: float) -> None:
        self.url, self.period = url, 1.0 / per_second
        self.on = threading.Event()
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures = 0
        self.skipped = 0
        self._in_flight = threading.Semaphore(MAX_IN_FLIGHT)
        self.pending = 0  # requests asked and not yet answered
        self._count = threading.Lock()
        self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Poller:
        """Start the clock thread (idle until ``on`` is set)."""
        self._thread.start()
        return self

    def _ask(self) -> None:
        started = time.monotonic()
        with self._count:
            self.pending += 1
        try:
            status, _ = get_json(f"{self.url}/analytics", timeout=300)
            if status == 200:
                self.latencies.append(time.monotonic() - started)
            else:
                self.failures += 1
        finally:
            with self._count:
                self.pending -= 1
            self._in_flight.release()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            if self.on.is_set():
                if self._in_flight.acquire(blocking=False):
                    self._pool.submit(self._ask)
                else:
                    self.skipped += 1
            next_at += self.period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        """Stop polling and wait for the requests in flight."""
        self.stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)


def events_in(worker: Worker) -> int:
    """Input records the worker has processed so far."""
    status, body = get_json(f"{worker.url}/metrics-json")
    return int(body.get("events_in", 0)) if status == 200 else 0


def drain_in_windows(
    worker: Worker, total: int, window: float, poller: Poller
) -> list[dict[str, Any]]:
    """Drain rate per window, windows alternating without and with the poller."""
    while events_in(worker) == 0:
        time.sleep(0.2)
    windows: list[dict[str, Any]] = []
    polled = False
    done = events_in(worker)
    while done < total:
        (poller.on.set if polled else poller.on.clear)()
        while not polled and poller.pending:
            time.sleep(0.2)  # a quiet window starts once the last answer is in
        done = events_in(worker)
        started, at_start, answered = time.monotonic(), done, len(poller.latencies)
        while time.monotonic() - started < window and done < total:
            time.sleep(0.5)
            done = events_in(worker)
        elapsed = time.monotonic() - started
        if done >= total and elapsed < 0.5 * window:
            break  # a stub of a window at the end says nothing
        windows.append(
            {
                "polled": polled,
                "seconds": elapsed,
                "events": done - at_start,
                "events_per_s": (done - at_start) / elapsed,
                "answers": len(poller.latencies) - answered,
            }
        )
        print(
            f"window {len(windows)} {'polled' if polled else 'quiet '}: "
            f"{windows[-1]['events_per_s']:,.0f} events/s, {done:,}/{total:,} read, "
            f"{windows[-1]['answers']} answers",
            flush=True,
        )
        polled = not polled
    poller.on.clear()
    return windows


def polled_ratios(windows: list[dict[str, Any]]) -> list[float]:
    """Each polled window's rate over the mean of the quiet windows on either side."""
    ratios = []
    for i, w in enumerate(windows):
        if not w["polled"]:
            continue
        quiet = [
            windows[j]["events_per_s"]
            for j in (i - 1, i + 1)
            if 0 <= j < len(windows) and not windows[j]["polled"]
        ]
        if quiet:
            ratios.append(w["events_per_s"] / statistics.mean(quiet))
    return ratios


def timed_answer(url: str, fresh: bool = False) -> tuple[float, dict[str, Any]]:
    """Seconds to answer ``/analytics`` once (``fresh``: the exact answer), and the answer."""
    started = time.monotonic()
    status, body = get_json(f"{url}/analytics{'?fresh=1' if fresh else ''}", timeout=600)
    elapsed = time.monotonic() - started
    if status != 200:
        raise RuntimeError(f"/analytics answered HTTP {status}: {body}")
    return elapsed, body


def built(worker: Worker) -> tuple[int, int, int]:
    """(answers built, served exact from the cache, served outdated) by the worker so far."""
    body = get_json(f"{worker.url}/metrics-json")[1]
    return (
        int(body["analytics_built"]),
        int(body["analytics_served_kept"]),
        int(body["analytics_served_outdated"]),
    )


def cold_and_cached(
    bootstrap: str, settings: Any, worker: Worker, lines: list[str], cold_rounds: int
) -> dict[str, Any]:
    """Cold answers (after one new event each) and cached ones (nothing changed)."""
    purchase = json.loads(next(line for line in reversed(lines) if '"purchase"' in line))
    newest = max(record["ts"] for record in map(json.loads, lines) if "ts" in record)
    cold = []
    for round_ in range(cold_rounds):
        before = events_in(worker)
        # After every event of the log, so that it is never too late to place.
        ts = datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(hours=round_ + 1)
        event = {
            **purchase,
            "event_id": f"p-bench-{round_}",
            "order_id": f"o-bench-{round_}",
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        with EventProducer(bootstrap, settings.kafka) as producer:
            produce_lines([(1, json.dumps(event))], producer, settings)
        while events_in(worker) <= before:
            time.sleep(0.2)
        time.sleep(3.0)  # the batch's writes stored, and a tick or two
        builds = built(worker)[0]
        seconds, _ = timed_answer(worker.url, fresh=True)
        assert built(worker)[0] == builds + 1, "a cold answer must be a rebuild"
        cold.append(seconds)
        print(f"cold answer {round_ + 1}: {seconds:.2f} s", flush=True)
    cached = []
    builds = built(worker)[0]
    for _ in range(20):
        seconds, _ = timed_answer(worker.url)
        cached.append(seconds)
    rebuilt = built(worker)[0] - builds
    cached.sort()
    print(
        f"cached answers: median {1000 * statistics.median(cached):.1f} ms, "
        f"max {1000 * cached[-1]:.1f} ms ({rebuilt} rebuilt of 20)",
        flush=True,
    )
    return {
        "cold_seconds": cold,
        "cached_ms_median": 1000 * statistics.median(cached),
        "cached_ms_max": 1000 * cached[-1],
        "cached_rebuilt": rebuilt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per drain window")
    parser.add_argument("--polls-per-second", type=float, default=5.0)
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument(
        "--share", help="the worker's analytics.rebuild_cpu_share (default: the setting's)"
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    args = parser.parse_args()
    log_dir = Path(args.out)
    log_dir.mkdir(parents=True, exist_ok=True)
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        # Its own broker: a shared one belongs to whoever started it and may stop mid-run.
        from stream.broker.launcher import start_broker

        state = Path(tempfile.mkdtemp(prefix="bench-analytics-broker-"))
        info = start_broker(
            load_settings(),
            state_dir=state,
            data_dir=state / "data",
            fresh=True,
            owner_pid=os.getpid(),
            die_with_parent=True,
        )
        bootstrap = info.bootstrap
    lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days, seed=3)))
    print(f"{len(lines):,} events, {args.customers:,} customers, broker {bootstrap}", flush=True)
    env = unique_env(partitions=4)
    if args.share:
        env["CRM_ANALYTICS__REBUILD_CPU_SHARE"] = args.share
    settings = load_settings(environ=env)
    ensure_topics(bootstrap, settings)
    started = time.monotonic()
    with EventProducer(bootstrap, settings.kafka) as producer:
        total = sum(produce_lines(list(enumerate(lines, 1)), producer, settings).sent.values())
    print(f"produced {total:,} in {time.monotonic() - started:.0f} s", flush=True)
    worker = Worker(bootstrap, env, log_dir, "bench-analytics").start()
    poller = Poller(worker.url, args.polls_per_second).start()
    try:
        windows = drain_in_windows(worker, total, args.window, poller)
        drained = built(worker)
        print(
            f"during the drain: {drained[0]} rebuilds, {drained[1]} kept exact, "
            f"{drained[2]} kept outdated",
            flush=True,
        )
        ratios = polled_ratios(windows)
        print(
            f"polled/quiet drain rate: {', '.join(f'{r:.0%}' for r in ratios)}"
            + (f" (median {statistics.median(ratios):.0%})" if ratios else ""),
            flush=True,
        )
        answers = cold_and_cached(bootstrap, settings, worker, lines, args.cold_rounds)
    finally:
        poller.close()
        worker.stop()
    polls = sorted(poller.latencies)
    result = {
        "events": total,
        "customers": args.customers,
        "windows": windows,
        "polled_over_quiet": ratios,
        "polls_answered": len(polls),
        "polls_failed": poller.failures,
        "polls_skipped": poller.skipped,
        "poll_seconds_median": statistics.median(polls) if polls else None,
        "share": args.share,
        "drain_built_kept_outdated": drained,
        **answers,
    }
    print(json.dumps(result, indent=2))
    (log_dir / "bench_analytics.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
