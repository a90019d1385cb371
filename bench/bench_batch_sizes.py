"""One pipeline worker's drain rate for several batch settings, on the same generated log.

    python bench/bench_batch_sizes.py --bootstrap HOST:PORT 1:0.01 500:0.05 2000:0.2

Each setting is ``batch_events:batch_seconds`` (worker.batch_events, worker.batch_seconds); each
run produces the log to fresh topics and drains it with one worker, as bench_stream.py does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_stream import get_json, pipeline_rate  # noqa: E402

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402


def main() -> None:
    """Print events/s per batch setting."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    parser.add_argument("settings", nargs="+", help="batch_events:batch_seconds")
    args = parser.parse_args()
    lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days, seed=3)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for setting in args.settings:
        events, seconds = setting.split(":")
        os.environ["CRM_WORKER__BATCH_EVENTS"] = events
        os.environ["CRM_WORKER__BATCH_SECONDS"] = seconds
        rate, workers = pipeline_rate(args.bootstrap, lines, out, 1)
        changes = get_json(f"{workers[0].url}/metrics-json")[1]["journey_changes"]
        cpu = cpu_seconds(workers[0].process.pid)
        for worker in workers:
            worker.stop()
        print(
            f"batch_events={events} batch_seconds={seconds}: {rate:,.0f} events/s, "
            f"journey changes {changes}, worker CPU {1e6 * cpu / len(lines):,.0f} us/event "
            "(whole process life, start-up included)",
            flush=True,
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
