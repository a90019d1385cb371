"""Confidence intervals: ``attribute --ci`` against one plain attribution run of the same log.

The issue's budget: 200 bootstrap resamples of bench_events.py's 2-million-event log (60,000
customers, 180 days, seed 1) within 10x one attribution run. Both commands run as whole
processes, interleaved round by round on the same (shared, noisy) machine; the report gives
their medians and the ratio, and writes the section "Confidence intervals: bootstrap cost" of
docs/benchmarks.md (``--no-docs`` skips that).

    .venv/bin/python bench/bench_ci.py --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_events import CLI, ROOT, Runs, count_events, log_paths  # noqa: E402

SECTION = "## Confidence intervals: bootstrap cost"


def main() -> None:
    """Time both commands and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    _, parquet = log_paths(args.customers, args.days, args.seed)
    plain = Runs("attribute --events --models all",
                 [*CLI, "attribute", str(parquet), "--events", "--models", "all"])  # fmt: skip
    ci = Runs(f"the same with --ci 0.95 --resamples {args.resamples}",
              [*plain.argv, "--ci", "0.95", "--resamples", str(args.resamples)])  # fmt: skip
    for round_ in range(args.repeats):
        for runs in (plain, ci):
            runs.run()
            print(f"round {round_ + 1}: {runs.label}: {runs.wall[-1]:.2f} s", file=sys.stderr)
    ratio = ci.median() / plain.median()
    report = "\n".join([
        f"### {datetime.now(UTC):%Y-%m-%d} ({platform.machine()}, {args.repeats} rounds)",
        "",
        "```",
        f".venv/bin/python bench/bench_ci.py --repeats {args.repeats}",
        "```",
        "",
        f"Log: {parquet.name}, {count_events(parquet):,} events. Wall seconds per whole "
        "process (median, min), peak memory (max):",
        "",
        "| command | median s | min s | peak MB |",
        "| --- | ---: | ---: | ---: |",
        *(f"| `{r.label}` | {r.median():.2f} | {min(r.wall):.2f} | {max(r.peak) / 1e6:,.0f} |"
          for r in (plain, ci)),
        "",
        f"Ratio, with intervals / without: **{ratio:.2f}x** (budget: 10x).",
    ])  # fmt: skip
    print(report)
    if not args.no_docs:
        docs = ROOT / "docs" / "benchmarks.md"
        text = docs.read_text()
        if SECTION in text:
            head, _, rest = text.partition(SECTION + "\n")
            intro, _, older = rest.partition("\n### ")
            older = ("### " + older) if older else ""
        else:
            head, intro, older = text.rstrip() + "\n\n", "\n(bench/bench_ci.py)\n", ""
        docs.write_text(f"{head}{SECTION}\n{intro.rstrip()}\n\n{report}\n\n{older}".rstrip() + "\n")
        print(f"wrote the run into {docs}", file=sys.stderr)


if __name__ == "__main__":
    main()
