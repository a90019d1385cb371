"""Raw event logs: ``attribute --events`` and ``report`` against DuckDB's journey SQL.

Generates a log with ``crm-attribution generate`` (JSON Lines and Parquet, seeded), then runs,
each as a whole process and interleaved round by round:

* DuckDB: first touch, last touch and linear over the same Parquet (``duckdb_journeys.sql``);
* ours: ``attribute LOG.parquet --events --models all``, the same on the JSON Lines, and
  ``report`` on both.

Every run's wall time and peak memory (the child's maximum resident set, from ``wait4``) are
kept; the report gives medians, minimums and ratios to DuckDB, and writes the section "Event
logs: columnar engine vs DuckDB" of docs/benchmarks.md (``--no-docs`` skips that).

    .venv/bin/pip install duckdb          # once
    .venv/bin/python bench/bench_events.py --repeats 5
    .venv/bin/python bench/bench_events.py --customers 1000000 --repeats 1 --big-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
CLI = [sys.executable, "-m", "crm_attribution"]
DUCKDB = [sys.executable, str(HERE / "duckdb_run.py")]
SECTION = "## Event logs: columnar engine vs DuckDB"


@dataclass
class Runs:
    """Wall seconds and peak bytes of each run of one command."""

    label: str
    argv: list[str]
    wall: list[float] = field(default_factory=list)
    peak: list[int] = field(default_factory=list)

    def run(self) -> None:
        """Run once, keeping its output away; fail loudly if it fails."""
        start = time.perf_counter()
        with open(os.devnull, "wb") as sink:
            process = subprocess.Popen(self.argv, cwd=ROOT, stdout=sink, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(process.pid, 0)
        self.wall.append(time.perf_counter() - start)
        self.peak.append(usage.ru_maxrss * 1024)
        if status != 0:
            error = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"{self.label} failed ({status}): {error}")

    def median(self) -> float:
        """Median wall seconds."""
        return statistics.median(self.wall)


def log_paths(customers: int, days: int, seed: int) -> tuple[Path, Path]:
    """The JSON Lines and Parquet logs, generated on first use; returns (jsonl, parquet)."""
    OUT.mkdir(exist_ok=True)
    stem = OUT / f"events_{customers}c_{days}d_s{seed}"
    paths = (stem.with_suffix(".jsonl"), stem.with_suffix(".parquet"))
    for path in paths:
        if not path.exists():
            started = time.perf_counter()
            subprocess.run(
                [*CLI, "generate", str(path), "--customers", str(customers), "--days", str(days),
                 "--seed", str(seed)],
                cwd=ROOT, check=True,
            )  # fmt: skip
            print(f"generated {path.name} in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)  # fmt: skip
    return paths


def count_events(parquet: Path) -> int:
    """Records in the log."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(parquet).metadata.num_rows)


def commands(jsonl: Path, parquet: Path, lookback: int, big_only: bool) -> list[Runs]:
    """What is timed, DuckDB first."""
    ours = [
        Runs("ours: attribute Parquet, all 8 models",
             [*CLI, "attribute", str(parquet), "--events", "--models", "all", "--format", "json"]),
        Runs("ours: report Parquet", [*CLI, "report", str(parquet), "--format", "json"]),
    ]  # fmt: skip
    if not big_only:
        ours.insert(1, Runs("ours: attribute JSON Lines, all 8 models",
                            [*CLI, "attribute", str(jsonl), "--events", "--models", "all",
                             "--format", "json"]))  # fmt: skip
        ours.append(Runs("ours: report JSON Lines",
                         [*CLI, "report", str(jsonl), "--format", "json"]))  # fmt: skip
    duck = Runs("DuckDB: first/last/linear SQL on Parquet",
                [*DUCKDB, str(parquet), str(lookback)])  # fmt: skip
    return [duck, *ours]


def table(runs: list[Runs], events: int) -> str:
    """The markdown table of the runs."""
    reference = runs[0].median()
    lines = [
        "| command | wall s, median (min) | ratio to DuckDB | peak memory | bytes per event |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        peak = max(r.peak)
        lines.append(
            f"| {r.label} | {r.median():.2f} ({min(r.wall):.2f}) | "
            f"{r.median() / reference:.2f}x | {peak / 1e9:.2f} GB | {peak / events:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and print (and write) the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lookback-days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--big-only",
        action="store_true",
        help="Parquet attribute and report only (for the 1M-customer log)",
    )
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()  # fmt: skip
    jsonl, parquet = log_paths(args.customers, args.days, args.seed)
    events = count_events(parquet)
    runs = commands(jsonl, parquet, args.lookback_days, args.big_only)
    load_before = os.getloadavg()[0]
    for round_ in range(args.repeats):
        for r in runs:
            r.run()
        print(f"round {round_ + 1}/{args.repeats}: "
              + ", ".join(f"{r.label.split(':')[0]} {r.wall[-1]:.2f}s" for r in runs),
              file=sys.stderr)  # fmt: skip
    report = render(args, runs, events, jsonl, parquet, load_before, os.getloadavg()[0])
    print(report)
    (OUT / f"bench_events_{args.customers}c.json").write_text(json.dumps(
        {r.label: {"wall": r.wall, "peak": r.peak} for r in runs}, indent=1))  # fmt: skip
    if not args.no_docs:
        write_docs(report, args.customers)


def render(
    args: argparse.Namespace, runs: list[Runs], events: int, jsonl: Path, parquet: Path,
    load_before: float, load_after: float,
) -> str:  # fmt: skip
    """The markdown report of one run."""
    import duckdb
    import polars

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f".venv/bin/python bench/bench_events.py --customers {args.customers} " \
              f"--days {args.days} --seed {args.seed} --repeats {args.repeats}" + (
                  " --big-only" if args.big_only else "")  # fmt: skip
    size = f"{parquet.stat().st_size / 1e6:,.0f} MB Parquet"
    if jsonl.exists():
        size += f", {jsonl.stat().st_size / 1e6:,.0f} MB JSON Lines"
    return "\n".join([
        f"### {args.customers:,} customers over {args.days} days: {events:,} events ({now})",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs shared with "
        f"other work (1-minute load average {load_before:.2f} before, {load_after:.2f} after); "
        f"Python {platform.python_version()}, polars {polars.__version__}, duckdb "
        f"{duckdb.__version__}. Log: {size}. Each command a whole process, "
        f"{args.repeats} interleaved rounds.",
        "",
        "```",
        command,
        "```",
        "",
        table(runs, events),
    ])  # fmt: skip


def write_docs(report: str, customers: int) -> None:
    """Put the report first under the section heading of docs/benchmarks.md (newest first)."""
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text()
    if SECTION not in text:
        head, _, rest = text.partition("\n## ")
        text = f"{head}\n{SECTION}\n\n(see bench/bench_events.py)\n\n## {rest}"
    head, _, rest = text.partition(SECTION + "\n")
    section, heading, after = rest.partition("\n## ")
    intro, runs_heading, older = section.partition("\n### ")
    older = f"### {older}".rstrip() + "\n" if runs_heading else ""
    text = f"{head}{SECTION}\n{intro.rstrip()}\n\n{report}\n\n{older}{heading}{after}"
    docs.write_text(text)
    print(f"wrote the run into {docs}", file=sys.stderr)


if __name__ == "__main__":
    main()
