"""Batch engine vs ChannelAttribution 2.2.5: speed and agreement, one run, one input file.

    python bench/bench_engine.py [--repeats 3] [--agreement-sims 2e7] [--no-docs]

Generates (once, seeded) bench/out/paths_1000000j_12ch_s7.csv (~600k distinct paths) and the
1,000-channel file, then times, end to end from the file (read + compute):

* ours in-process (``read_paths`` + ``attribute_paths``) and as the ``crm-attribution attribute``
  command: Markov order 1, 2, 3; the heuristic models ChannelAttribution computes
  (first_touch, last_touch, linear) and all five of ours; Markov order 1 on 1,000 channels;
* ChannelAttribution (``pandas.read_csv`` + ``markov_model`` / ``heuristic_models``, default
  settings), in-process time and whole-process wall time.

Every timing runs in a fresh Python process (imports excluded from the in-process time), the
repeats interleaved so that machine noise hits both sides alike. Agreement: our exact Markov
credits vs a long ChannelAttribution simulation; our ``max_steps``-capped model vs the default
ChannelAttribution run; heuristics vs ChannelAttribution's (max abs diff). Prints a markdown
report and writes it as the "Batch engine vs ChannelAttribution" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Batch engine vs ChannelAttribution"
RESULT_MARK = "@@RESULT "
HEURISTICS_CA = ["first_touch", "last_touch", "linear"]
HEURISTICS_ALL = ["first_touch", "last_touch", "last_non_direct", "linear", "position_based"]
# ChannelAttribution's heuristic_models columns for each of our models.
CA_HEURISTIC_COLUMNS = {
    "first_touch": "first_touch",
    "last_touch": "last_touch",
    "linear": "linear_touch",
}

Json = dict[str, Any]
LOAD_AT_START = os.getloadavg()


# ----------------------------------------------------------------------------- worker side
# A worker is this file run with --worker JSON: it imports first, then times read + compute
# once and prints the result after RESULT_MARK (ChannelAttribution prints to stdout itself).


def _ours(job: Json) -> tuple[float, float, Json]:
    sys.path.insert(0, str(REPO))
    from attribution.engine import attribute_paths
    from attribution.io.paths_reader import read_paths
    from attribution.models.options import ModelOptions

    options = ModelOptions(order=job.get("order", 1), max_steps=job.get("max_steps"))
    if "markov" in job["models"]:
        # The registry imports it lazily; import it here, outside the timed region, as the
        # other side's imports are.
        import attribution.models.markov  # noqa: F401
    if job.get("preimport_pandas"):
        # With pandas installed, pyarrow imports it lazily on the reader's first non-zero-copy
        # to_numpy(): an import, so excluded here like every other (see bench/README.md).
        import pandas  # noqa: F401
    t0, c0 = time.perf_counter(), time.process_time()
    read = read_paths(job["file"])
    report = attribute_paths(read.table, read.totals, job["models"], options)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    return took, cpu, report.to_json()


def _ca(job: Json) -> tuple[float, float, Json]:
    import pandas as pd
    from ChannelAttribution import heuristic_models, markov_model

    t0, c0 = time.perf_counter(), time.process_time()
    df = pd.read_csv(job["file"])
    if job["kind"] == "heuristic":
        out: Any = heuristic_models(
            df, "path", "total_conversions", var_value="total_conversion_value", flg_pro=False
        )
    else:
        out = markov_model(
            df,
            var_path="path",
            var_conv="total_conversions",
            var_value="total_conversion_value",
            var_null="total_null",
            flg_pro=False,
            verbose=False,
            **job.get("params", {}),
        )
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    frames = out if isinstance(out, dict) else {"result": out}
    return took, cpu, {name: frame.to_dict(orient="list") for name, frame in frames.items()}


def worker(spec: str) -> int:
    """Run one timed job (JSON spec) and print its time and result."""
    job = json.loads(spec)
    took, cpu, result = (_ours if job["side"] == "ours" else _ca)(job)
    sys.stdout.write(
        RESULT_MARK + json.dumps({"seconds": took, "cpu": cpu, "result": result}) + "\n"
    )
    return 0


# ----------------------------------------------------------------------------- parent side


@dataclass
class Timing:
    """Repeated measurements of one job."""

    label: str
    inproc: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    result: Json | None = None
    note: str = ""

    @staticmethod
    def stats(values: list[float]) -> tuple[float, float] | None:
        """(median, min), or None when nothing was measured."""
        return (statistics.median(values), min(values)) if values else None

    def all_stats(
        self,
    ) -> tuple[tuple[float, float] | None, tuple[float, float] | None, tuple[float, float] | None]:
        """(median, min) of in-process wall, in-process CPU and process wall times."""
        return self.stats(self.inproc), self.stats(self.cpu), self.stats(self.wall)


def run_worker(job: Json, timeout: float | None = None) -> tuple[float, float, float, Json]:
    """In-process wall and CPU seconds, whole-process wall seconds and result of one run."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"worker {job} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)][-1]
    data = json.loads(line[len(RESULT_MARK) :])
    return float(data["seconds"]), float(data["cpu"]), wall, data["result"]


def cli_command(file: Path, models: list[str], order: int = 1) -> list[str]:
    """The ``crm-attribution attribute`` command line timed as a subprocess."""
    exe = Path(sys.executable).with_name("crm-attribution")
    return [
        str(exe),
        "attribute",
        str(file),
        "--models",
        ",".join(models),
        "--order",
        str(order),
        "--format",
        "json",
    ]


def run_cli(cmd: list[str]) -> tuple[float, Json]:
    """Wall seconds and parsed JSON of one command run."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)


def collapsed_max_length(file: Path) -> int:
    """Longest path once consecutive repeats are merged (ChannelAttribution's default cap)."""
    sys.path.insert(0, str(REPO))
    import numpy as np

    from attribution.io.paths_reader import read_paths

    table = read_paths(file).table
    codes, lengths = table.codes, table.lengths
    path_of = np.repeat(np.arange(table.n_paths), lengths)
    new = np.ones(len(codes), dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (path_of[1:] != path_of[:-1])
    return int(np.bincount(path_of[new], minlength=table.n_paths).max())


# ----------------------------------------------------------------------------- comparisons


def ours_channels(result: Json, model: str) -> dict[str, Json]:
    """Channel credits of one of our models."""
    return dict(result["models"][model]["channels"])


def ca_markov_channels(result: Json) -> dict[str, Json]:
    """ChannelAttribution markov_model output as {channel: {conversions, value, re, re_value}}."""
    res = result["result"]
    out = {
        name: {"conversions": conv, "value": val}
        for name, conv, val in zip(
            res["channel_name"],
            res["total_conversions"],
            res["total_conversion_value"],
            strict=True,
        )
    }
    if "removal_effects" in result:
        re = result["removal_effects"]
        for name, rc, rv in zip(
            re["channel_name"],
            re["removal_effects_conversion"],
            re["removal_effects_conversion_value"],
            strict=True,
        ):
            out[name]["removal_effect"] = rc
            out[name]["removal_effect_value"] = rv
    return out


def rel(a: float, b: float) -> float:
    """Relative difference of a vs reference b."""
    return (a - b) / b if b else float("inf") if a else 0.0


def agreement_rows(ours: dict[str, Json], ca: dict[str, Json]) -> list[Json]:
    """Per-channel shares and relative differences, largest share first."""
    total = sum(c["conversions"] for c in ours.values())
    rows = []
    for name in sorted(ours, key=lambda n: -ours[n]["conversions"]):
        o, c = ours[name], ca.get(name, {"conversions": 0.0, "value": 0.0})
        row = {
            "channel": name,
            "share": o["conversions"] / total,
            "ours_conv": o["conversions"],
            "ca_conv": c["conversions"],
            "rel_conv": rel(c["conversions"], o["conversions"]),
            "ours_value": o["value"],
            "ca_value": c["value"],
            "rel_value": rel(c["value"], o["value"]),
        }
        if "removal_effect" in c and o.get("removal_effect") is not None:
            row["ours_re"] = o["removal_effect"]
            row["ca_re"] = c["removal_effect"]
        rows.append(row)
    return rows


def heuristic_diffs(ours: Json, ca: Json) -> list[Json]:
    """Max abs diff, conversions and value, of our first/last/linear vs ChannelAttribution's."""
    names = ca["result"]["channel_name"]
    out = []
    for model, prefix in CA_HEURISTIC_COLUMNS.items():
        mine = ours_channels(ours, model)
        conv_col = ca["result"][f"{prefix}_conversions"]
        value_col = ca["result"][f"{prefix}_value"]
        conv_diff = value_diff = 0.0
        for i, name in enumerate(names):
            credit = mine.get(name, {"conversions": 0.0, "value": 0.0})
            conv_diff = max(conv_diff, abs(credit["conversions"] - conv_col[i]))
            value_diff = max(value_diff, abs(credit["value"] - value_col[i]))
        extra = set(mine) - set(names)
        out.append(
            {
                "model": model,
                "max_abs_conv": conv_diff,
                "max_abs_value": value_diff,
                "total_conv": sum(conv_col),
                "total_value": sum(value_col),
                "channels_only_ours": sorted(extra),
            }
        )
    return out


# ----------------------------------------------------------------------------- report


def machine() -> Json:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for module in ("numpy", "pyarrow", "scipy", "pandas"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "-"
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "python": platform.python_version(),
        "versions": versions,
        "blas_env": blas,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": os.getloadavg(),
        "load_start": LOAD_AT_START,
    }


def fmt_s(pair: tuple[float, float] | None) -> str:
    """``median (min)`` seconds."""
    return "-" if pair is None else f"{pair[0]:.2f} ({pair[1]:.2f})"


def ratio(ca: tuple[float, float] | None, ours: tuple[float, float] | None) -> str:
    """CA/ours on medians and on minimums."""
    if ca is None or ours is None:
        return "-"
    return f"{ca[0] / ours[0]:.1f}x ({ca[1] / ours[1]:.1f}x)"


def pct(x: float) -> str:
    """Signed percentage."""
    return f"{100 * x:+.3f}%"


@dataclass
class Report:
    """Everything the run measured, rendered as markdown."""

    argv: str
    gen_cmds: list[str]
    files: Json
    machine: Json
    timings: dict[str, Timing]
    pairs: list[tuple[str, str, str, float | None]]
    exact_vs_long: list[Json]
    capped_vs_default: list[Json]
    exact_vs_default: list[Json]
    heuristics: list[Json]
    notes: list[str]
    cap: Json
    agreement_params: Json
    total_seconds: float

    def markdown(self) -> str:
        """The docs/benchmarks.md section."""
        m = self.machine
        out = [SECTION, ""]
        out.append(
            f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu']}), shared with other work: "
            f"1-minute load average {m['load_start'][0]:.2f} at the start of the run and "
            f"{m['load'][0]:.2f} at the end; Python {m['python']}, "
            + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
            + ", ChannelAttribution 2.2.5."
        )
        blas = ", ".join(f"`{k}={v}`" for k, v in m["blas_env"].items()) or "none set"
        out.append(
            f"BLAS/threading environment as found (not changed by the benchmark): {blas}. "
            "`OPENBLAS_CORETYPE`/`OPENBLAS_L2_SIZE`, when set on this machine, can slow numpy."
        )
        out.append("")
        out.append(f"Reproduce (a full run takes about {self.total_seconds / 60:.0f} minutes):")
        out.append("")
        out.append("```")
        out.append(".venv/bin/pip install ChannelAttribution==2.2.5 matplotlib pandas")
        out.extend(self.gen_cmds)
        out.append(self.argv)
        out.append("```")
        out.append("")
        out.append(
            "(the benchmark runs the generator itself when a file is missing). Inputs: "
            + "; ".join(
                f"`{Path(k).name}`: {v['rows']:,} distinct paths, {v['size_mb']:.1f} MB"
                for k, v in self.files.items()
            )
            + "."
        )
        out.append("")
        out.append(
            "Each number is the median (and min) of the repeats, each in a fresh Python process. "
            "*In-process* = read the CSV + compute, imports excluded (ours: `read_paths` + "
            "`attribute_paths`; ChannelAttribution: `pandas.read_csv` + the model function with "
            "default settings). *Process wall* = the whole process (interpreter start, imports, "
            "read, compute, output): for ours the `crm-attribution attribute ... --format json` "
            "command, for ChannelAttribution a Python process doing the same as in-process. "
            "*CPU* = process CPU seconds of the in-process part (all threads; ours reads the "
            "CSV on up to 4 threads), less sensitive than wall time to other work on the "
            "machine. Ratio = ChannelAttribution time / our time."
        )
        out.append("")
        out.append(
            "| job | ours in-process s | ours CPU s | ours process wall s | CA in-process s | "
            "CA CPU s | CA process wall s | ratio in-process | ratio CPU | ratio wall |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for label, ours_key, ca_key, _goal in self.pairs:
            o = self.timings.get(ours_key)
            c = self.timings.get(ca_key) if ca_key else None
            o_in, o_cpu, o_wall = o.all_stats() if o else (None, None, None)
            c_in, c_cpu, c_wall = c.all_stats() if c else (None, None, None)
            out.append(
                f"| {label} | {fmt_s(o_in)} | {fmt_s(o_cpu)} | {fmt_s(o_wall)} | "
                f"{fmt_s(c_in)} | {fmt_s(c_cpu)} | {fmt_s(c_wall)} | {ratio(c_in, o_in)} | "
                f"{ratio(c_cpu, o_cpu)} | {ratio(c_wall, o_wall)} |"
            )
        out.append("")
        goals = [p for p in self.pairs if p[3] is not None]
        for label, ours_key, ca_key, goal in goals:
            ours, ca = self.timings[ours_key].all_stats(), self.timings[ca_key].all_stats()
            parts = []
            for what, o_s, c_s in zip(("in-process", "CPU", "process wall"), ours, ca, strict=True):
                if o_s is None or c_s is None:
                    continue
                r_med, r_min = c_s[0] / o_s[0], c_s[1] / o_s[1]
                met = "met" if r_med >= (goal or 0) else "missed"
                parts.append(f"{what} {r_med:.1f}x on medians, {r_min:.1f}x on minimums ({met})")
            out.append(f"* Goal {label}: at least {goal:g}x faster. " + "; ".join(parts) + ".")
        out.extend(f"* {note}" for note in self.notes)
        out.append("")
        out.append("### Agreement")
        out.append("")
        p = self.agreement_params
        out.append(
            f"Our exact Markov order 1 credits vs ChannelAttribution `markov_model` with "
            f"`nsim_start={p['nsim_start']:g}, nfold={p['nfold']}, max_step={p['max_step']}` "
            f"({p['seconds']:.0f} s): relative difference CA vs ours."
        )
        out.append("")
        out.extend(self._agreement_table(self.exact_vs_long, with_re=True))
        out.append("")
        out.append(
            f"Walk cap. ChannelAttribution's default run stops a simulated walk after "
            f"{self.cap['ca_steps']} channel visits: the longest path once repeated touches are "
            "merged "
            f'({self.cap["longest_collapsed"]}) + 1 (its log: "maximum number of steps '
            f'({self.cap["ca_steps"]})"); a walk that has not ended by then counts as no '
            f"conversion. Our `max_steps` counts transitions including the last one into "
            f"(conversion), so the same cap is `max_steps={self.cap['ours_max_steps']}`. "
            "Ours capped vs CA's default "
            "run (100k simulations and up, until the 10 folds agree within 5%; one fold's "
            "result is returned, so a few % of Monte-Carlo noise is expected):"
        )
        out.append("")
        out.extend(
            self._agreement_table(
                self.capped_vs_default, with_re=False, other=self.exact_vs_default
            )
        )
        out.append("")
        out.append("Heuristics, ours vs `heuristic_models` (max abs diff over channels):")
        out.append("")
        out.append(
            "| model | max abs diff conversions | max abs diff value | total conversions | "
            "total value |"
        )
        out.append("|---|---|---|---|---|")
        for h in self.heuristics:
            out.append(
                f"| {h['model']} | {h['max_abs_conv']:.3g} | {h['max_abs_value']:.3g} | "
                f"{h['total_conv']:,.0f} | {h['total_value']:,.2f} |"
            )
        out.append("")
        return "\n".join(out)

    @staticmethod
    def _agreement_table(
        rows: list[Json], with_re: bool, other: list[Json] | None = None
    ) -> list[str]:
        if not rows:
            return ["(not run)"]
        head = (
            "| channel | share | ours conv | CA conv | diff conv | ours value | CA value "
            "| diff value |"
        )
        sep = "|---|---|---|---|---|---|---|---|"
        if with_re:
            head += " ours removal effect | CA removal effect |"
            sep += "---|---|"
        if other:
            head += " diff conv, CA default vs ours uncapped |"
            sep += "---|"
        lines = [head, sep]
        by_name = {r["channel"]: r for r in other or []}
        for r in rows:
            line = (
                f"| {r['channel']} | {100 * r['share']:.2f}% | {r['ours_conv']:,.1f} | "
                f"{r['ca_conv']:,.1f} | {pct(r['rel_conv'])} | {r['ours_value']:,.0f} | "
                f"{r['ca_value']:,.0f} | {pct(r['rel_value'])} |"
            )
            if with_re:
                line += (
                    f" {r.get('ours_re', float('nan')):.5f} | {r.get('ca_re', float('nan')):.5f} |"
                )
            if other:
                line += f" {pct(by_name[r['channel']]['rel_conv'])} |"
            lines.append(line)
        big = [r for r in rows if r["share"] >= 0.05]
        if big:
            worst = max(big, key=lambda r: abs(r["rel_conv"]))
            worst_v = max(big, key=lambda r: abs(r["rel_value"]))
            lines.append("")
            lines.append(
                f"Channels with >= 5% share: max |diff| conversions {pct(abs(worst['rel_conv']))} "
                f"({worst['channel']}), value {pct(abs(worst_v['rel_value']))} "
                f"({worst_v['channel']})."
            )
        return lines


def write_docs(section: str) -> None:
    """Replace (or append) our section of docs/benchmarks.md, leaving other sections alone."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        new = "\n".join(lines[:start] + section.rstrip("\n").splitlines() + [""] + lines[end:])
        new = new.rstrip("\n") + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(new)


# ----------------------------------------------------------------------------- main


def ensure_file(journeys: int, channels: int, seed: int) -> tuple[Path, str]:
    """The generated input (generated now if missing) and the command that makes it."""
    sys.path.insert(0, str(BENCH))
    from gen_paths import GenConfig, default_out, generate

    cfg = GenConfig(journeys=journeys, channels=channels, seed=seed)
    out = default_out(cfg)
    cmd = (
        f".venv/bin/python bench/gen_paths.py --journeys {journeys} --channels {channels} "
        f"--seed {seed}"
    )
    if not out.exists():
        log(f"generating {out.name} ...")
        generate(cfg, out)
    return out, cmd


def log(message: str) -> None:
    """Progress on stderr (stdout gets the markdown report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def count_rows(file: Path) -> int:
    """Data rows of a CSV file."""
    with file.open("rb") as handle:
        return sum(1 for _ in handle) - 1


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - a linear script
    """Command line entry."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--journeys", type=int, default=1_000_000)
    p.add_argument("--channels", type=int, default=12)
    p.add_argument("--many-channels", type=int, default=1000, help="0 skips the scaling run")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--agreement-sims",
        type=float,
        default=2e7,
        help="ChannelAttribution simulations for the agreement run (0 skips it)",
    )
    p.add_argument("--ca-orders", default="1,2,3", help="Markov orders to time on CA too")
    p.add_argument(
        "--ca-many-timeout",
        type=float,
        default=150.0,
        help="seconds allowed to CA on the many-channel file (0 skips it)",
    )
    p.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)

    started = time.perf_counter()
    argv_shown = ".venv/bin/python bench/bench_engine.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    file, gen12 = ensure_file(args.journeys, args.channels, args.seed)
    gen_cmds = [gen12]
    files = {str(file): {"rows": count_rows(file), "size_mb": file.stat().st_size / 1e6}}
    many_file = None
    if args.many_channels:
        many_file, gen_many = ensure_file(args.journeys, args.many_channels, args.seed)
        gen_cmds.append(gen_many)
        files[str(many_file)] = {
            "rows": count_rows(many_file),
            "size_mb": many_file.stat().st_size / 1e6,
        }
    ca_orders = [int(x) for x in args.ca_orders.split(",") if x.strip()]
    notes: list[str] = []

    # Jobs: key -> (label, runner returning (inproc|None, wall, result)).
    Runner = Callable[[], tuple[float | None, float | None, float, Json]]
    jobs: dict[str, tuple[str, Runner]] = {}

    def ours_job(models: list[str], order: int = 1, f: Path = file) -> Runner:
        job = {
            "side": "ours",
            "file": str(f),
            "models": models,
            "order": order,
            "preimport_pandas": True,
        }
        return lambda: run_worker(job)

    def cli_job(models: list[str], order: int = 1, f: Path = file) -> Runner:
        cmd = cli_command(f, models, order)

        def run() -> tuple[float | None, float | None, float, Json]:
            wall, result = run_cli(cmd)
            return None, None, wall, result

        return run

    def ca_job(kind: str, order: int = 1, f: Path = file) -> Runner:
        job: Json = {"side": "ca", "kind": kind, "file": str(f)}
        if kind == "markov":
            job["params"] = {"order": order}
        return lambda: run_worker(job)

    jobs["ours_markov1"] = ("ours markov order 1", ours_job(["markov"], 1))
    jobs["cli_markov1"] = ("ours markov order 1 (command)", cli_job(["markov"], 1))
    for order in ca_orders:
        jobs[f"ca_markov{order}"] = (f"CA markov order {order}", ca_job("markov", order))
    jobs["ours_heur_ca"] = ("ours first/last/linear", ours_job(HEURISTICS_CA))
    jobs["cli_heur_ca"] = ("ours first/last/linear (command)", cli_job(HEURISTICS_CA))
    jobs["ours_heur_all"] = ("ours all 5 heuristics", ours_job(HEURISTICS_ALL))
    jobs["cli_heur_all"] = ("ours all 5 heuristics (command)", cli_job(HEURISTICS_ALL))
    jobs["ca_heur"] = ("CA heuristic_models", ca_job("heuristic"))
    for order in (2, 3):
        jobs[f"ours_markov{order}"] = (f"ours markov order {order}", ours_job(["markov"], order))
        jobs[f"cli_markov{order}"] = (
            f"ours markov order {order} (command)",
            cli_job(["markov"], order),
        )
    if many_file:
        jobs["ours_markov_many"] = ("ours markov many channels", ours_job(["markov"], 1, many_file))
        jobs["cli_markov_many"] = (
            "ours markov many channels (command)",
            cli_job(["markov"], 1, many_file),
        )

    timings = {key: Timing(label) for key, (label, _) in jobs.items()}
    for r in range(args.repeats):
        for key, (label, runner) in jobs.items():
            log(f"repeat {r + 1}/{args.repeats}: {label}")
            try:
                inproc, cpu, wall, result = runner()
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                timings[key].note = str(error).splitlines()[0]
                log(f"  FAILED: {error}")
                continue
            if inproc is not None and cpu is not None:
                timings[key].inproc.append(inproc)
                timings[key].cpu.append(cpu)
            timings[key].wall.append(wall)
            timings[key].result = result
            log(
                f"  in-process {inproc if inproc is None else round(inproc, 3)} s, "
                f"cpu {cpu if cpu is None else round(cpu, 3)} s, wall {wall:.3f} s"
            )

    # Fold the command's wall times into the in-process job they mirror (one table row each).
    for key in list(timings):
        if key.startswith("cli_"):
            twin = "ours_" + key[len("cli_") :]
            timings[twin].wall = timings[key].wall
            if timings[key].note:
                timings[twin].note += f" command: {timings[key].note}"

    # CA on the many-channel file: once, under a time limit (it may take very long).
    if many_file and args.ca_many_timeout > 0:
        log(f"CA markov on {args.many_channels} channels (limit {args.ca_many_timeout:.0f} s)")
        t = Timing(f"CA markov {args.many_channels} channels")
        try:
            inproc, cpu, wall, _ = run_worker(
                {"side": "ca", "kind": "markov", "file": str(many_file), "params": {}},
                timeout=args.ca_many_timeout,
            )
            t.inproc.append(inproc)
            t.cpu.append(cpu)
            t.wall.append(wall)
        except subprocess.TimeoutExpired:
            notes.append(
                f"ChannelAttribution `markov_model` (default settings) on the "
                f"{args.many_channels}-channel file did not finish within "
                f"{args.ca_many_timeout:.0f} s (one attempt, stopped)."
            )
        except RuntimeError as error:
            notes.append(f"ChannelAttribution on the many-channel file failed: {error}")
        timings["ca_markov_many"] = t

    # Agreement runs (once each).
    exact_vs_long: list[Json] = []
    agreement_params: Json = {
        "nsim_start": args.agreement_sims,
        "nfold": 1,
        "max_step": 1000,
        "seconds": 0.0,
    }
    ours_exact = timings["ours_markov1"].result
    if args.agreement_sims > 0 and ours_exact:
        log(f"CA markov agreement run, {args.agreement_sims:g} simulations")
        params = {"nsim_start": args.agreement_sims, "nfold": 1, "max_step": 1000, "out_more": True}
        inproc, _, _, ca_long = run_worker(
            {"side": "ca", "kind": "markov", "file": str(file), "params": params}
        )
        agreement_params["seconds"] = inproc
        exact_vs_long = agreement_rows(
            ours_channels(ours_exact, "markov"), ca_markov_channels(ca_long)
        )

    longest = collapsed_max_length(file)
    # CA's default max_step is longest + 1 channel visits: a walk converts only if it reaches
    # (conversion) within that many visits. Our max_steps counts transitions, the last one
    # into (conversion) included, so the same cap is one more (bench/README.md shows both).
    cap = {"longest_collapsed": longest, "ca_steps": longest + 1, "ours_max_steps": longest + 2}
    capped_vs_default: list[Json] = []
    exact_vs_default: list[Json] = []
    ca_default = timings.get("ca_markov1")
    if ca_default and ca_default.result and ours_exact:
        log(f"ours markov with max_steps={cap['ours_max_steps']}")
        capped_job = {
            "side": "ours",
            "file": str(file),
            "models": ["markov"],
            "order": 1,
            "max_steps": cap["ours_max_steps"],
        }
        _, _, _, capped = run_worker(capped_job)
        ca_def = ca_markov_channels(ca_default.result)
        capped_vs_default = agreement_rows(ours_channels(capped, "markov"), ca_def)
        exact_vs_default = agreement_rows(ours_channels(ours_exact, "markov"), ca_def)

    heuristics: list[Json] = []
    if timings["ours_heur_ca"].result and timings["ca_heur"].result:
        heuristics = heuristic_diffs(timings["ours_heur_ca"].result, timings["ca_heur"].result)

    for t in timings.values():
        if t.note:
            notes.append(f"{t.label}: {t.note}")
    pairs: list[tuple[str, str, str, float | None]] = [
        ("markov order 1", "ours_markov1", "ca_markov1", 5.0),
        ("markov order 2", "ours_markov2", "ca_markov2", None),
        ("markov order 3", "ours_markov3", "ca_markov3", None),
        ("first_touch + last_touch + linear", "ours_heur_ca", "ca_heur", None),
        ("all 5 of our heuristics vs CA's heuristic_models", "ours_heur_all", "ca_heur", 3.0),
    ]
    if many_file:
        pairs.append(
            (
                f"markov order 1, {args.many_channels} channels",
                "ours_markov_many",
                "ca_markov_many",
                None,
            )
        )
    report = Report(
        argv=argv_shown,
        gen_cmds=gen_cmds,
        files=files,
        machine=machine(),
        timings=timings,
        pairs=pairs,
        exact_vs_long=exact_vs_long,
        capped_vs_default=capped_vs_default,
        exact_vs_default=exact_vs_default,
        heuristics=heuristics,
        notes=notes,
        cap=cap,
        agreement_params=agreement_params,
        total_seconds=time.perf_counter() - started,
    )
    section = report.markdown()
    print(section)
    if not args.no_docs:
        write_docs(section)
        log(f"wrote the section to {DOCS}")
    raw = BENCH / "out" / "bench_engine.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(
        json.dumps(
            {
                k: {"inproc": t.inproc, "cpu": t.cpu, "wall": t.wall, "note": t.note}
                for k, t in timings.items()
            },
            indent=1,
        )
    )
    log(f"done in {time.perf_counter() - started:.0f} s; raw timings in {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
