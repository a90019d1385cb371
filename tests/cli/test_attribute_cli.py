"""The ``attribute`` command end to end on the bundled examples."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from crm_attribution.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "crm_attribution" / "examples"
EVENTS = str(EXAMPLES / "events.jsonl")
PATHS = str(EXAMPLES / "paths.csv")
HEURISTICS = "first_touch,last_touch,last_non_direct,linear,position_based"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["attribute", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_shape_on_example_events(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, EVENTS, "--events", "--models", f"{HEURISTICS},time_decay")
    assert code == 0
    data = json.loads(out)
    assert data["totals"] == {
        "conversions": 38,
        "value": data["totals"]["value"],
        "null": 13,
        "unattributed_conversions": 1,
        "invalid_records": 2,
    }
    assert math.isclose(data["totals"]["value"], 3519.71)
    assert list(data["models"]) == [*HEURISTICS.split(","), "time_decay"]
    for model in data["models"].values():
        assert set(model) == {"channels"}
        total = sum(c["conversions"] for c in model["channels"].values())
        assert math.isclose(total, 37)  # every conversion but the unattributed one
        for credit in model["channels"].values():
            assert set(credit) == {"conversions", "value"}
    assert "line 11: field 'ts'" in err and "no UTC offset" in err
    assert "line 21: not valid JSON" in err


def test_paths_file_gives_the_same_heuristic_credits(capsys: pytest.CaptureFixture[str]) -> None:
    _, by_events, _ = run(capsys, EVENTS, "--events", "--models", HEURISTICS)
    code, by_paths, _ = run(capsys, PATHS, "--models", HEURISTICS)
    assert code == 0
    events_models = json.loads(by_events)["models"]
    paths_models = json.loads(by_paths)["models"]
    assert events_models.keys() == paths_models.keys()
    for model, result in events_models.items():
        other = paths_models[model]["channels"]
        assert result["channels"].keys() == other.keys()
        for channel, credit in result["channels"].items():
            assert math.isclose(credit["conversions"], other[channel]["conversions"])
            assert math.isclose(credit["value"], other[channel]["value"], rel_tol=1e-9)


def test_default_models_for_paths_leave_out_time_decay(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("attribution.models.markov")
    pytest.importorskip("attribution.models.shapley")
    code, out, _ = run(capsys, PATHS)
    assert code == 0
    models = json.loads(out)["models"]
    assert "time_decay" not in models and "markov" in models
    assert "conversion_probability" in models["markov"]


def test_strict_exits_2_with_the_first_invalid_record(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, EVENTS, "--events", "--models", "linear", "--strict")
    assert code == 2
    assert out == ""
    assert "line 11" in err and "--strict" in err


def test_unknown_model_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, PATHS, "--models", "linear,markow")
    assert code == 2
    assert "unknown model 'markow'" in err and "first_touch" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([PATHS, "--models", "time_decay"], "--events"),
        ([PATHS, "--sep=->"], "--sep must be exactly one character"),
        ([PATHS, "--order", "0"], "--order must be at least 1"),
        (["/nonexistent/paths.csv"], "does not exist"),
        ([str(EXAMPLES / "events.jsonl")], "unknown path file format '.jsonl'"),
    ],
)
def test_user_errors_without_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_unreadable_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "paths.xlsx"
    bad.write_text("x")
    code, _, err = run(capsys, str(bad), "--models", "linear")
    assert code == 2 and "unknown path file format '.xlsx'" in " ".join(err.split())


def test_missing_column_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "paths.csv"
    bad.write_text("journey,conversions\na>b,1\n")
    code, _, err = run(capsys, str(bad), "--models", "linear")
    assert code == 2
    assert "missing column 'path', 'total_conversions'" in " ".join(err.split())
    code, out, _ = run(
        capsys,
        str(bad),
        "--models",
        "linear",
        "--path-column",
        "journey",
        "--conversions-column",
        "conversions",
    )
    assert code == 0 and json.loads(out)["totals"]["conversions"] == 1


def test_csv_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, PATHS, "--models", "first_touch,linear", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "model",
        "channel",
        "conversions",
        "value",
        "removal_effect",
        "removal_effect_value",
    ]
    assert {r["model"] for r in rows} == {"first_touch", "linear"}
    assert math.isclose(sum(float(r["conversions"]) for r in rows if r["model"] == "linear"), 37)


def test_table_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, EVENTS, "--events", "--models", "linear,time_decay", "--format", "table"
    )
    assert code == 0
    assert "linear" in out and "time_decay" in out and "email" in out
    assert "unattributed_conversions" in out


def test_invalid_report_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    report = tmp_path / "invalid.jsonl"
    code, _, _ = run(
        capsys, EVENTS, "--events", "--models", "linear", "--invalid-report", str(report)
    )
    assert code == 0
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["line"] for r in rows] == [11, 21]
    assert all(r["reason"] for r in rows)


def test_many_invalid_records_are_summarised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "bad.jsonl"
    # One valid event: a log of invalid records only is an error (test_contracts.py).
    valid = '{"type": "touchpoint", "event_id": "t", "ts": 0, "customer_id": "c", "channel": "a"}'
    invalid = "".join(f'{{"type": "nope", "event_id": "{i}"}}\n' for i in range(25))
    log.write_text(invalid + valid + "\n")
    code, out, err = run(capsys, str(log), "--events", "--models", "linear")
    assert code == 0
    assert json.loads(out)["totals"]["invalid_records"] == 25
    assert "line 20:" in err and "line 21:" not in err
    assert "... and 5 more" in err


def test_markov_states_from_the_option_and_the_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = tmp_path / "paths.csv"
    paths.write_text(
        "path,total_conversions,total_conversion_value,total_null\na > a,1,1,0\nb > a > a,0,0,1\n"
    )

    def credit(*extra: str) -> dict[str, float]:
        code, out, err = run(capsys, str(paths), "--models", "markov", "--order", "2", *extra)
        assert code == 0, err
        channels = json.loads(out)["models"]["markov"]["channels"]
        return {ch: round(c["conversions"], 9) for ch, c in channels.items()}

    assert credit() == {"a": 1.0, "b": 0.0}  # merged, the default
    assert credit("--markov-states", "raw") == {"a": round(2 / 3, 9), "b": round(1 / 3, 9)}
    monkeypatch.setenv("CRM_ATTRIBUTION__MARKOV_STATES", "raw")
    assert credit() == {"a": round(2 / 3, 9), "b": round(1 / 3, 9)}
    assert credit("--markov-states", "merged") == {"a": 1.0, "b": 0.0}
    monkeypatch.setenv("CRM_ATTRIBUTION__MARKOV_STATES", "kept")
    code, _, err = run(capsys, str(paths), "--models", "markov")
    assert code == 2 and "attribution.markov_states" in err


def test_ci_gives_every_credit_its_interval(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from crm_attribution.generator import GeneratorConfig, generate

    log = tmp_path / "events.jsonl"
    log.write_text("".join(line + "\n" for line in generate(GeneratorConfig(customers=300))))
    argv = [str(log), "--events", "--ci", "0.9", "--resamples", "30", "--seed", "5"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    data = json.loads(out)
    assert data["confidence"]["level"] == 0.9 and data["confidence"]["resamples"] == 30
    assert data["confidence"]["customers"] > 0
    for model in data["models"].values():
        for credit in model["channels"].values():
            (c_low, c_high), (v_low, v_high) = credit["ci"]["conversions"], credit["ci"]["value"]
            assert c_low <= c_high and v_low <= v_high
    code, again, _ = run(capsys, *argv)
    assert json.loads(again) == data  # seeded: the same intervals
    code, out, _ = run(capsys, *argv, "--format", "csv", "--models", "linear")
    header, first = out.splitlines()[:2]
    assert header.endswith("conversions_low,conversions_high,value_low,value_high")
    assert len(first.split(",")) == 10
    code, out, _ = run(capsys, *argv, "--format", "table", "--models", "linear")
    assert code == 0 and "90% interval, 30 resamples" in " ".join(out.split())


def test_ci_needs_customers_and_a_level(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, PATHS, "--ci", "0.95")
    assert code == 2 and "--events" in err
    code, _, err = run(capsys, EVENTS, "--events", "--ci", "95")
    assert code == 2 and "between 0 and 1" in err
    code, _, err = run(capsys, EVENTS, "--events", "--ci", "0.95", "--resamples", "1")
    assert code == 2 and "--resamples must be at least 2" in err


def test_notebook_attribute_with_intervals() -> None:
    import attribution

    result = attribution.attribute(EVENTS, models=["linear", "markov"], ci=0.95, resamples=20)
    rows = result.rows()
    assert rows and all(r["conversions_low"] <= r["conversions_high"] for r in rows)
    assert result.to_json()["confidence"]["resamples"] == 20
