"""``export``: the SQL sink's tables of an event log as Parquet files and a DuckDB database."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from attribution.warehouse import TABLES
from crm_attribution.cli import main
from crm_attribution.generator import GeneratorConfig, generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("export")
    log = tmp / "events.jsonl"
    config = GeneratorConfig(customers=200, days=60)
    log.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")
    assert (
        main(["export", str(log), "--to", str(tmp / "tables"), "--duckdb", str(tmp / "crm.duckdb")])
        == 0
    )
    return log, tmp / "tables", tmp / "crm.duckdb"


def test_every_table_is_written(exported: tuple[Path, Path, Path]) -> None:
    import pyarrow.parquet as pq

    _, tables, _ = exported
    for table in TABLES:
        data = pq.read_table(tables / f"{table.name}.parquet")
        assert data.column_names == table.names
        if table.name != "holdout" or data.num_rows:
            assert data.num_rows > 0, table.name


def test_order_rows_add_up_to_the_batch_credits(
    exported: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    log, _, database = exported
    capsys.readouterr()
    assert main(["attribute", str(log), "--events"]) == 0
    batch: dict[str, Any] = json.loads(capsys.readouterr().out)
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "SELECT model, channel, sum(conversions), sum(value) FROM attributions GROUP BY ALL"
        ).fetchall()
        per_order = con.execute(
            "SELECT max(abs(s - 1)) FROM (SELECT sum(conversions) AS s FROM attributions "
            "GROUP BY purchase_event_id, model)"
        ).fetchone()
    got = {(m, c): (conv, value) for m, c, conv, value in rows}
    for model in ("first_touch", "last_touch", "linear", "position_based", "time_decay", "shapley"):
        for channel, credit in batch["models"][model]["channels"].items():
            conv, value = got.get((model, channel), (0.0, 0.0))
            assert math.isclose(conv, credit["conversions"], abs_tol=1e-6), (model, channel)
            assert math.isclose(value, credit["value"], abs_tol=1e-6), (model, channel)
    assert per_order is not None and per_order[0] < 1e-9  # every order's credit adds up to 1


def test_the_docs_bi_queries_run_in_duckdb(exported: tuple[Path, Path, Path]) -> None:
    import duckdb

    _, _, database = exported
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    with duckdb.connect(str(database), read_only=True) as con:
        for sql in blocks:
            assert con.execute(sql).fetchall(), sql


def test_export_needs_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    events = str(ROOT / "crm_attribution" / "examples" / "events.jsonl")
    assert main(["export", events, "--to", str(target)]) == 2
    assert "not a directory" in capsys.readouterr().err
