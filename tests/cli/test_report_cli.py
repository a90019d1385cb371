"""The ``report`` command end to end on generated and bundled event logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_attribution.cli import main
from crm_attribution.generator import GeneratorConfig, generate

EXAMPLES = Path(__file__).resolve().parents[2] / "crm_attribution" / "examples"
EVENTS = str(EXAMPLES / "events.jsonl")
SECTIONS = {"rfm", "clv", "revenue_share", "assisted", "holdout", "campaigns"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report") / "events.jsonl"
    config = GeneratorConfig(customers=150, days=40, invalid_rate=0.01)
    path.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")
    return str(path)


def test_json_shape(capsys: pytest.CaptureFixture[str], log: str, tmp_path: Path) -> None:
    invalid_file = tmp_path / "invalid.jsonl"
    code, out, err = run(
        capsys, log, "--models", "last_touch,linear", "--invalid-report", str(invalid_file)
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) >= SECTIONS
    assert data["invalid_records"] > 0
    assert len(invalid_file.read_text().splitlines()) == data["invalid_records"]
    assert f"{data['invalid_records']} invalid records skipped" in err and "line " in err
    assert set(data["revenue_share"]["models"]) == {"last_touch", "linear"}
    assert data["rfm"]["movement"]["to"] == data["as_of"]
    assert "customers" not in data["rfm"]
    assert list(data) == sorted(data)  # deterministic: sorted keys


def test_as_of_and_customers(capsys: pytest.CaptureFixture[str], log: str) -> None:
    code, out, _ = run(
        capsys,
        log,
        "--models",
        "last_touch",
        "--as-of",
        "2026-01-31T00:00:00Z",
        "--compare-days",
        "7",
        "--customers",
    )
    assert code == 0
    data = json.loads(out)
    assert data["as_of"] == "2026-01-31T00:00:00Z"
    assert data["rfm"]["movement"]["from"] == "2026-01-24T00:00:00Z"
    assert len(data["rfm"]["customers"]) == data["rfm"]["active_customers"]


def test_table_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, EVENTS, "--format", "table", "--models", "last_touch,linear")
    assert code == 0
    titles = ("RFM segments", "RFM grades", "Retention", "Revenue share", "per month", "Holdout")
    for title in (*titles, "Campaigns"):
        assert title in out


def test_strict_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, EVENTS, "--strict")
    assert code == 2 and out == ""
    assert "line 11" in err and "--strict" in err and "Traceback" not in err


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, str(tmp_path / "none.jsonl"))
    assert code == 2 and out == ""
    assert "none.jsonl does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("value", "reason"),
    [("2026-02-01", "no UTC offset"), ("soon", "not ISO 8601"), ("2026-13-01T00:00Z", "ISO")],
)
def test_bad_as_of(capsys: pytest.CaptureFixture[str], value: str, reason: str) -> None:
    code, out, err = run(capsys, EVENTS, "--as-of", value)
    assert code == 2 and out == ""
    assert "--as-of" in err and reason in err and "Traceback" not in err


def test_as_of_before_every_event(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, EVENTS, "--as-of", "1990-01-01T00:00:00Z")
    assert code == 2 and "no valid event at or before --as-of" in err


def test_bad_numbers_and_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, EVENTS, "--compare-days", "0")[2].count("--compare-days must be") == 1
    code, _, err = run(capsys, EVENTS, "--models", "nope")
    assert code == 2 and "unknown model 'nope'" in err


def test_customers_carry_their_lifetime_value_forecast(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.analytics.test_clv_customers import cdnow_events

    # CDNOW's first 39 weeks: enough repeat buying to fit BG/NBD (a short generated log is not).
    path = tmp_path / "cdnow.jsonl"
    path.write_text("".join(json.dumps(e.to_record()) + "\n" for e in cdnow_events()))
    monkeypatch.setenv("CRM_ANALYTICS__CLV_HORIZON_WEEKS", "26")
    code, out, _ = run(capsys, str(path), "--customers", "--models", "last_touch")
    assert code == 0
    clv = json.loads(out)["clv"]
    assert clv["horizon_weeks"] == 26 and clv["forecast_status"] == "fitted"
    rows = clv["per_customer"].values()
    assert rows and all(0 < r["probability_alive"] <= 1 for r in rows)
    assert all(r["forecast"] == pytest.approx(r["expected_purchases"] * r["expected_spend"])
               for r in rows)  # fmt: skip
    code, out, _ = run(capsys, str(path), "--customers", "--models", "last_touch",
                       "--format", "table")  # fmt: skip
    assert code == 0 and "Lifetime value per customer (26 weeks ahead)" in " ".join(out.split())
    assert "P(alive)" in out
