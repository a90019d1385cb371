"""The notebook API: same numbers as the command line, any input kind, readable results."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import attribution
from attribution.report_build import ReportParameters
from crm_attribution.cli import main
from crm_attribution.generator import GeneratorConfig, generate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "crm_attribution" / "examples"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notebook") / "events.jsonl"
    config = GeneratorConfig(customers=150, days=45)
    path.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_attribute_is_the_cli_for_files_and_every_table_kind(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    expected = cli(capsys, "attribute", str(log), "--events")
    frame = pd.read_json(log, lines=True, dtype=False)
    for data in (log, str(log), frame, pl.from_pandas(frame), pa.Table.from_pandas(frame)):
        assert attribution.attribute(data).to_json() == expected, type(data)


def test_attribute_a_path_table(capsys: pytest.CaptureFixture[str]) -> None:
    paths = EXAMPLES / "paths.csv"
    expected = cli(capsys, "attribute", str(paths))
    assert attribution.attribute(paths).to_json() == expected
    assert attribution.attribute(pd.read_csv(paths)).to_json() == expected


def test_report_is_the_cli(capsys: pytest.CaptureFixture[str], log: Path) -> None:
    expected = cli(capsys, "report", str(log), "--customers", "--compare-days", "14")
    got = attribution.report(log, compare_days=14).to_json()
    assert got == expected


def test_results_turn_into_dataframes(log: Path) -> None:
    credits = attribution.attribute(log, models=["linear", "markov"])
    frame = credits.to_pandas()
    assert set(frame.model) == {"linear", "markov"}
    linear = frame[frame.model == "linear"]
    assert math.isclose(
        linear.conversions.sum(),
        credits.totals["conversions"] - credits.totals["unattributed_conversions"],
    )
    assert credits.to_polars().height == len(frame)
    report = attribution.report(log, models=["last_touch"])
    segments = report.to_pandas("segments")
    assert segments.customers.sum() == report.data["rfm"]["active_customers"]
    campaigns = report.to_polars("campaigns")
    assert (
        campaigns.filter(pl.col("cost").is_null())["cac"].null_count()
        == campaigns.filter(pl.col("cost").is_null()).height
    )
    with pytest.raises(ValueError, match="unknown table"):
        report.to_pandas("nope")


def test_reprs_are_short_summaries(log: Path) -> None:
    credits = repr(attribution.attribute(log))
    report = repr(attribution.report(log))
    assert credits.startswith("AttributionResult:") and len(credits.splitlines()) <= 12
    assert report.startswith("ReportResult as of") and "holdout" in report
    assert len(report.splitlines()) <= 8


def test_defaults_are_the_shipped_configuration() -> None:
    shipped = tomllib.loads((ROOT / "config" / "defaults.toml").read_text(encoding="utf-8"))
    a, an = shipped["attribution"], shipped["analytics"]
    params = ReportParameters()
    assert params.models == tuple(a["models"])
    assert params.lookback_days == a["lookback_days"]
    assert params.journey_timeout_days == a["journey_timeout_days"]
    assert params.allowed_lateness_hours == a["allowed_lateness_hours"]
    assert params.markov_order == a["markov_order"]
    assert params.markov_states == a["markov_states"] == "merged"
    assert params.clv_horizon_weeks == an["clv_horizon_weeks"]
    assert params.half_life_days == a["half_life_days"]
    assert params.direct_channel == a["direct_channel"]
    assert params.crm_channels == tuple(a["crm_channels"])
    assert params.rfm_window_days == an["rfm_window_days"]
    assert params.holdout_salt == an["holdout_salt"]
    assert params.holdout_control_share == an["holdout_control_share"]
    assert params.holdout_from_hash == an["holdout_from_hash"]


@pytest.mark.slow
def test_the_documented_example_runs(log: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "notebook.py"), str(log)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "AttributionResult:" in done.stdout and "ReportResult as of" in done.stdout
    assert "incremental_revenue" in done.stdout
