"""The stream's answers against the batch's on a generated log, broker-free (no Kafka).

    python bench/compare_broker_free.py [--customers 60000] [--days 180]

The generator's log (default profile, seed 3) is drained through the batch runner a worker runs
(:mod:`stream.testing`, default settings), then its attribution and analytics are compared with
the batch commands' (``tests.compare.assert_same``: counts exactly, other numbers to 1e-9).
An AssertionError names the first difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from crm_attribution.settings.typed import load_settings  # noqa: E402
from stream.testing import TestingLog, run_main  # noqa: E402
from tests.compare import assert_same  # noqa: E402
from tests.stream.batch_answers import batch_attribution, batch_report  # noqa: E402


def main() -> None:
    """Drain, compare, and print each stage's time."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=60000)
    parser.add_argument("--days", type=int, default=180)
    args = parser.parse_args()
    settings = load_settings()
    lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days, seed=3)))
    print(f"{len(lines):,} lines", flush=True)
    started = time.monotonic()
    log = TestingLog(settings)
    log.produce_lines(lines, settings)
    run = run_main(log, settings)
    print(f"stream drained in {time.monotonic() - started:.0f} s", flush=True)
    assert_same(run.attribution(), batch_attribution(lines, settings))
    print("attribution equal to the batch's", flush=True)
    assert_same(run.analytics(), batch_report(lines, settings))
    print("analytics equal to the batch's", flush=True)


if __name__ == "__main__":
    main()
