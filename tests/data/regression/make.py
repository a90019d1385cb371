"""Write the regression logs and the answers of the engine that produced them.

Run once, at commit 2518d3e (the per-event Python engine), before the columnar engine replaced
it: ``python tests/data/regression/make.py``. The tests in tests/regression compare every
later engine with these answers; the logs are kept as files (gzip), so a change of the
generator does not change them. Running this again with a later engine would overwrite the
reference with that engine's answers: don't, unless a change of numbers is intended and
explained.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CLI = [sys.executable, "-m", "crm_attribution"]

# (name, generate arguments)
LOGS = {
    "small": ["--customers", "250", "--days", "40", "--seed", "5", "--invalid-rate", "0.05",
              "--lateness-minutes", "5"],
    "medium": ["--customers", "400", "--days", "75", "--seed", "11", "--invalid-rate", "0.02",
               "--duplicate-rate", "0.02"],
    "long": ["--customers", "900", "--days", "150", "--seed", "23", "--lateness-minutes", "240",
             "--duplicate-rate", "0.03", "--control-share", "0.15"],
}  # fmt: skip

# (case name, command arguments after the input, environment overrides)
ATTRIBUTE_CASES: list[tuple[str, list[str], dict[str, str]]] = [
    ("default", [], {}),
    ("lookback7-order2", ["--lookback-days", "7", "--order", "2", "--half-life-days", "3"], {}),
    (
        "timeout10-lateness48",
        ["--lookback-days", "20"],
        {
            "CRM_ATTRIBUTION__JOURNEY_TIMEOUT_DAYS": "10",
            "CRM_ATTRIBUTION__ALLOWED_LATENESS_HOURS": "48",
        },
    ),
    (
        "timeout45-order3",
        ["--order", "3", "--max-steps", "6"],
        {"CRM_ATTRIBUTION__JOURNEY_TIMEOUT_DAYS": "45", "CRM_ATTRIBUTION__DIRECT_CHANNEL": "email"},
    ),
]  # fmt: skip
REPORT_CASES: list[tuple[str, list[str], dict[str, str]]] = [
    ("default", ["--customers"], {}),
    ("asof-compare14", ["--as-of", "AS_OF", "--compare-days", "14", "--lookback-days", "14"], {}),
    (
        "hash-holdout",
        ["--models", "last_touch,linear,markov", "--customers"],
        {"CRM_ANALYTICS__HOLDOUT_FROM_HASH": "true", "CRM_ANALYTICS__RFM_WINDOW_DAYS": "30",
         "CRM_ANALYTICS__HOLDOUT_CONTROL_SHARE": "0.3"},
    ),
]  # fmt: skip


def run(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run the CLI; return its standard output."""
    full_env = {**os.environ, "TTY_COMPATIBLE": "0", **(env or {})}
    done = subprocess.run(
        CLI + args, cwd=ROOT, env=full_env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def conflicts(source: Path, target: Path, seed: int) -> None:
    """A log with hard cases: same event_id with other content, equal times, odd customer ids."""
    rng = random.Random(seed)
    lines = source.read_text().splitlines()
    out: list[str] = []
    renamed: dict[str, str] = {}
    for line in lines:
        out.append(line)
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or "customer_id" not in record:
            continue
        customer = record["customer_id"]
        if isinstance(customer, str) and customer.endswith("7"):
            # Non-ASCII ids sort by code point, as Python's sort and Arrow's byte order agree.
            renamed.setdefault(customer, rng.choice(["é", "Z", "ß", "ü-", "a "]) + customer)
            out[-1] = json.dumps({**record, "customer_id": renamed[customer]})
            record = json.loads(out[-1])
        roll = rng.random()
        if roll < 0.02 and record.get("type") in ("touchpoint", "purchase"):
            # Same event_id, another time: the journeys keep the first copy in file order,
            # the purchase ledger the smaller (time, amount, order) record.
            other = dict(record)
            other["ts"] = record["ts"].replace("T1", "T0")
            out.insert(len(out) - rng.randrange(0, 2), json.dumps(other))
        elif roll < 0.03 and record.get("type") == "purchase":
            other = dict(record, amount=round(record["amount"] * 0.5, 2))
            out.append(json.dumps(other))
        elif roll < 0.05 and record.get("type") == "touchpoint":
            # Another touch at exactly the same time: ties break by event_id.
            other = dict(record, event_id=record["event_id"] + "-tie", channel="direct")
            out.append(json.dumps(other))
        elif roll < 0.055 and record.get("type") == "purchase":
            # A touch at the purchase's very time, ordered by event_id against it.
            tie = {
                "type": "touchpoint", "event_id": "a" + record["event_id"],
                "customer_id": record["customer_id"], "channel": "sms", "ts": record["ts"],
            }  # fmt: skip
            out.append(json.dumps(tie))
        elif roll < 0.06 and record.get("type") == "touchpoint":
            out.append(json.dumps(dict(record, campaign=None, interaction="OPEN")))
    target.write_text("\n".join(out) + "\n")


CSV_COLUMNS = [
    "type", "event_id", "customer_id", "channel", "campaign", "interaction", "order_id",
    "amount", "currency", "group", "ts",
]  # fmt: skip


def to_csv(source: Path, target: Path) -> None:
    """The JSON records as CSV (invalid JSON lines become rows of their own kind)."""
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                writer.writerow(["touchpoint", f"broken-{number}", "c1", "email", "", "", "", "",
                                 "", "", "", "extra"])  # fmt: skip
                continue
            if not isinstance(record, dict):
                writer.writerow(["", "", "", "", "", "", "", "", "", "", ""])
                continue
            writer.writerow(["" if record.get(c) is None else record.get(c) for c in CSV_COLUMNS])


def to_parquet(source: Path, target: Path) -> None:
    """The JSON objects as Parquet with typed columns; non-objects and bad JSON left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for line in source.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        amount = record.get("amount")
        rows.append(
            {
                **{c: record.get(c) for c in CSV_COLUMNS if c != "amount"},
                # A text amount cannot live in a double column: it becomes a missing amount.
                "amount": amount if isinstance(amount, int | float) else None,
            }
        )
    schema = pa.schema([(c, pa.float64() if c == "amount" else pa.string()) for c in CSV_COLUMNS])
    table = pa.Table.from_pylist(
        [{c: (str(r[c]) if r[c] is not None and c != "amount" else r[c]) for c in CSV_COLUMNS}
         for r in rows],
        schema=schema,
    )  # fmt: skip
    pq.write_table(table, target, row_group_size=1000)


def main() -> None:
    """Generate the logs, run every case, write logs and answers under this folder."""
    logs_dir = HERE / "logs"
    answers_dir = HERE / "answers"
    for folder in (logs_dir, answers_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs: dict[str, Path] = {}
        for name, arguments in LOGS.items():
            path = work / f"{name}.jsonl"
            run(["generate", str(path), *arguments])
            inputs[name] = path
        conflicts(inputs["small"], work / "conflicts.jsonl", seed=3)
        inputs["conflicts"] = work / "conflicts.jsonl"
        to_csv(inputs["medium"], work / "medium-csv.csv")
        inputs["medium-csv"] = work / "medium-csv.csv"
        to_parquet(inputs["medium"], work / "medium-parquet.parquet")
        inputs["medium-parquet"] = work / "medium-parquet.parquet"
        for name, path in inputs.items():
            if path.suffix == ".parquet":
                stored = logs_dir / path.name
                shutil.copy(path, stored)
            else:
                stored = logs_dir / (path.name + ".gz")
                with path.open("rb") as raw, gzip.open(stored, "wb", compresslevel=9) as zipped:
                    shutil.copyfileobj(raw, zipped)
            as_of = _middle_time(path) if path.suffix == ".jsonl" else None
            for case, arguments, env in ATTRIBUTE_CASES:
                invalid = work / "invalid.jsonl"
                out = run(
                    ["attribute", str(stored), "--events", "--models", "all", "--format",
                     "json", "--invalid-report", str(invalid), *arguments],
                    env,
                )  # fmt: skip
                _write(answers_dir / f"{name}.attribute.{case}.json", json.loads(out))
                if case == "default":
                    invalid_rows = [json.loads(x) for x in invalid.read_text().splitlines()]
                    _write(answers_dir / f"{name}.invalid.json", invalid_rows)
            for case, arguments, env in REPORT_CASES:
                if "AS_OF" in arguments and as_of is None:
                    continue
                arguments = [as_of if a == "AS_OF" else a for a in arguments]  # type: ignore[misc]
                out = run(["report", str(stored), "--format", "json", *arguments], env)
                _write(answers_dir / f"{name}.report.{case}.json", json.loads(out))
    manifest = {
        "engine_commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip(),
        "logs": {name: args for name, args in LOGS.items()},
        "attribute_cases": ATTRIBUTE_CASES,
        "report_cases": REPORT_CASES,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def _middle_time(path: Path) -> str:
    times = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("ts"), str):
            times.append(record["ts"])
    times.sort()
    return times[len(times) * 2 // 3]


def _write(path: Path, data: Any) -> None:
    with gzip.open(path.with_suffix(path.suffix + ".gz"), "wt", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)


if __name__ == "__main__":
    main()
