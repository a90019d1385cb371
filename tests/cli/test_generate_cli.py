"""``generate``: the same log in every format, written a day at a time, arguments checked."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from crm_attribution.cli import main
from crm_attribution.generator import FILE_COLUMNS, GeneratorConfig, generate, write_log


@pytest.mark.parametrize("invalid_rate", [0.0, 0.03])
def test_file_writer_writes_the_lines_generate_yields(tmp_path: Path, invalid_rate: float) -> None:
    cfg = GeneratorConfig(customers=120, days=20, seed=4, invalid_rate=invalid_rate)
    path = tmp_path / "log.jsonl"
    count = write_log(cfg, path, "jsonl")
    lines = path.read_text().splitlines()
    assert lines == list(generate(cfg))
    assert count == len(lines)
    if invalid_rate:
        assert any(not line.startswith('{"type"') for line in lines)


def test_parquet_and_csv_hold_the_same_records(tmp_path: Path) -> None:
    cfg = GeneratorConfig(customers=80, days=15, seed=9)
    records = [json.loads(line) for line in generate(cfg)]
    write_log(cfg, tmp_path / "log.parquet", "parquet")
    write_log(cfg, tmp_path / "log.csv", "csv")
    parquet = pl.read_parquet(tmp_path / "log.parquet")
    assert parquet.columns == list(FILE_COLUMNS)
    assert str(parquet.schema["ts"]) == "Datetime(time_unit='ms', time_zone='UTC')"
    from_parquet = [
        {k: v for k, v in row.items() if v is not None}
        | {"ts": row["ts"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        for row in parquet.to_dicts()
    ]
    assert from_parquet == records
    csv = pl.read_csv(tmp_path / "log.csv", infer_schema=False)
    from_csv = [
        {k: (float(v) if k == "amount" else v) for k, v in row.items() if v is not None}
        for row in csv.to_dicts()
    ]
    assert from_csv == records


def test_a_day_at_a_time_keeps_arrival_order(tmp_path: Path) -> None:
    cfg = GeneratorConfig(customers=200, days=10, seed=3, lateness_minutes=600)
    records = [json.loads(line) for line in generate(cfg)]
    kinds = {r["type"] for r in records}
    assert kinds == {"touchpoint", "purchase", "cost", "assignment"}
    # Arrival order: an event may precede one that happened earlier by at most the lateness.
    times = [pl.Series([r["ts"]]).str.to_datetime().item().timestamp() for r in records[:2000]]
    latest = float("-inf")
    for t in times:
        assert t >= latest - cfg.lateness_minutes * 60 - 1e-6
        latest = max(latest, t)


def test_event_ids_are_unique_apart_from_duplicates() -> None:
    cfg = GeneratorConfig(customers=300, days=30, seed=5, duplicate_rate=0.0)
    ids = [json.loads(line)["event_id"] for line in generate(cfg)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x.parquet", "--invalid-rate", "0.1"], "Parquet cannot hold"),
        (["x.txt"], "cannot tell the format"),
        (["x.csv", "--control-share", "1.5"], "--control-share must be between 0 and 1"),
        (["x.csv", "--duplicate-rate", "1"], "--duplicate-rate must be in [0, 1)"),
        (["x.csv", "--customers", "0"], "at least 1"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    argv[0] = str(tmp_path / argv[0])
    assert main(["generate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not Path(argv[0]).exists()
