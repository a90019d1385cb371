"""Terminal tables never cut a digit: piped, at any width, every number of the JSON is whole."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from attribution.report_figures import campaign_economics, campaign_rates
from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.render_fit import Sheet, num, pct, points
from crm_attribution.render_report import report_tables

WIDTHS = (30, 50, 80, 132)
ROOT = Path(__file__).resolve().parents[2]


def tokens(text: str) -> set[str]:
    """Every run of non-space characters between table borders, and each whole line part."""
    found = set()
    for line in text.splitlines():
        for cell in re.split(r"[│┃]", line):
            cell = cell.strip()
            if cell:
                found.add(cell)
                found.update(cell.split(": ", 1)[-1:])
    return found


def cli(*argv: str, width: int) -> str:
    """Run the command line with stdout piped, as a user's `| less` or `> file` would."""
    env = {**os.environ, "COLUMNS": str(width)}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [sys.executable, "-m", "crm_attribution.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_fits(text: str, width: int) -> None:
    assert "…" not in text and "..." not in text
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert too_wide == [], f"{len(too_wide)} lines wider than {width}: {too_wide[:2]}"


def assert_all_shown(text: str, expected: list[str]) -> None:
    found = tokens(text)
    missing = [value for value in expected if value not in found]
    assert missing == [], f"{len(missing)} of {len(expected)} figures not whole: {missing[:5]}"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "events.jsonl"
    config = GeneratorConfig(customers=300, days=60)
    path.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report_json(log: Path) -> dict[str, Any]:
    return json.loads(cli("report", str(log), "--format", "json", width=80))


def report_figures(report: dict[str, Any]) -> list[str]:
    """Figures from every section of the report, formatted as the tables show them."""
    out = [num(report["revenue_share"]["total_revenue"]), num(report["attribution"]["null"])]
    out += [num(n) for n in report["rfm"]["segments"].values()]
    out += [num(n) for n in report["rfm"]["grades"].values()]
    for row in report["rfm"]["movement"]["grades"].values():
        out += [num(n) for n in row.values()]
    for row in report["clv"]["segments"].values():
        out += [num(row["historical_revenue"]), num(row["forecast_revenue"])]
    for model in report["revenue_share"]["models"].values():
        out += [num(c["value"]) for c in model["channels"].values()]
        out += [pct(c["share"]) for c in model["channels"].values()]
    for period in report["revenue_share"]["periods"].values():
        out.append(num(period["total_revenue"]))
        out += [pct(v) for v in period["crm_share"].values()]
    out += [num(row["assisted"]) for row in report["assisted"].values()]
    overall = report["holdout"]["overall"]
    out += [
        num(overall["incremental_revenue"]),
        points(overall["conversion_lift"]),
        pct(overall["conversion_lift_relative"]),
        num(overall["min_detectable_incremental_revenue"]),
        num(overall["incremental_revenue_ci"][0]),
    ]
    for periods in report["holdout"]["periods"].values():
        out += [num(row["incremental_revenue"]) for row in periods.values()]
    for campaign in report["campaigns"].values():
        out.append(num(campaign["funnel"]["delivered"]))
        out.append(pct(campaign_rates(campaign)["ctor"]))
        for model in campaign["models"]:
            economics = campaign_economics(campaign, model)
            out += [num(economics["attributed_revenue"]), num(economics["cpo"])]
            out += [num(economics["cac"]), pct(economics["conversion_rate"])]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_report_table_piped_shows_every_figure_whole(
    log: Path, report_json: dict[str, Any], width: int
) -> None:
    text = cli("report", str(log), "--format", "table", width=width)
    assert_fits(text, width)
    assert_all_shown(text, report_figures(report_json))
    for title in ("Lifetime value", "RFM segment movement", "Assisted conversions", "CTOR"):
        assert title in text.replace("\n", " ") or title in text


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_attribute_table_piped_shows_every_figure_whole(log: Path, width: int) -> None:
    data = json.loads(cli("attribute", str(log), "--events", width=80))
    text = cli("attribute", str(log), "--events", "--format", "table", width=width)
    assert_fits(text, width)
    expected = [
        num(credit[name])
        for model in data["models"].values()
        for credit in model["channels"].values()
        for name in ("conversions", "value")
    ]
    expected += [num(v) for v in data["totals"].values()]
    assert_all_shown(text, expected)


def render(sheet: Sheet | Any, width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(sheet)
    return buffer.getvalue()


def wide_sheet() -> Sheet:
    sheet = Sheet("Money", ["channel", *(f"model {i}" for i in range(8))])
    for ch in ("email", "paid search", "a very long channel name"):
        sheet.add_row(ch, *(num(123456789.123 * (i + 1)) for i in range(8)))
    return sheet


@pytest.mark.parametrize("width", [20, 24, 40, 60, 100, 400])
def test_a_sheet_folds_or_goes_vertical_and_keeps_every_cell(width: int) -> None:
    sheet = wide_sheet()
    text = render(sheet, width)
    assert_fits(text, width)
    assert_all_shown(text, [cell for row in sheet.rows for cell in row[1:]])


def test_layouts_by_width() -> None:
    sheet = wide_sheet()
    assert "(1/" not in render(sheet, 400)  # one table
    assert "(1/" in render(sheet, 60)  # folded
    assert "┃" not in render(sheet, 20)  # vertical blocks


def test_undefined_figures_are_dashes() -> None:
    campaign = {
        "cost": 0.0,
        "open_rate": 0.0,
        "ctr": 0.0,
        "ctor": None,
        "funnel": {"delivered": 10, "opens": 0},
        "models": {"last_touch": {"cac": 0.0, "cpo": 0.0, "attributed_revenue": 5.0}},
    }
    assert campaign_rates(campaign)["open_rate"] is None
    economics = campaign_economics(campaign, "last_touch")
    assert economics["cac"] is None and economics["cpo"] is None
    assert economics["attributed_revenue"] == 5.0
    assert num(None) == pct(None) == points(None) == "-"
    assert points(0.1214) == "+12.1 pts"


def test_retention_rate_only_over_a_log_longer_than_the_window(
    report_json: dict[str, Any],
) -> None:
    short = render(report_tables(report_json, rfm_window_days=365.0), 200)
    assert "100% by construction" in short
    long = render(report_tables(report_json, rfm_window_days=7.0), 200)
    rate = pct(report_json["retention"]["retention_rate"])
    assert "100% by construction" not in long
    assert any(
        line.split("│")[-2].strip() == rate
        for line in long.splitlines()
        if "retention rate" in line
    )
