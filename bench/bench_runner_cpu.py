"""Broker-free throughput of the batch runner: events per second of CPU through ``stream.testing``.

    python bench/bench_runner_cpu.py [--customers 3000] [--days 180] [--passes 2]

The generator's log (default profile, seed 3) is produced into an in-memory log and drained by
the batch runner a worker runs (:mod:`stream.testing`, dicts for tables) with the worker's
garbage collector settings (:mod:`stream.ops.gc_tuning`); each pass drains a fresh copy and
reports the CPU time of the drain alone (producing and generating are left out).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from crm_attribution.settings.typed import load_settings  # noqa: E402
from stream.ops.gc_tuning import tune_collector  # noqa: E402
from stream.testing import TestingLog, run_main  # noqa: E402


def main() -> None:
    """Drain the log ``--passes`` times and print events/s of CPU for each pass."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    settings = load_settings()
    lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days, seed=3)))
    tune_collector()
    for number in range(1, args.passes + 1):
        log = TestingLog(settings)
        log.produce_lines(lines, settings)
        events = len(log.produced)
        gc.collect()
        started = time.process_time()
        run = run_main(log, settings)
        cpu = time.process_time() - started
        load = os.getloadavg()
        print(
            f"pass {number}: {events:,} records, CPU {cpu:.2f} s, {events / cpu:,.0f} events/s "
            f"of CPU (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}); per event "
            f"{run.customers_decoded() / events:.3f} customer records decoded, "
            f"{run.journeys_rebuilt() / events:.3f} journeys rebuilt"
        )
        del log, run
        gc.collect()


if __name__ == "__main__":
    main()
