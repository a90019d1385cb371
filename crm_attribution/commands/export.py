"""``crm-attribution export``: the SQL sink's tables of an event log, as Parquet and DuckDB."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from crm_attribution.cli import UserError
from crm_attribution.commands.common import apply_record_limits, settings_from
from crm_attribution.commands.input_report import report_invalid, stage_status


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "export",
        help="write the SQL sink's tables of an event log as Parquet files (and DuckDB)",
        description=(
            "Attribute and analyse an event log as `report` does, and write the tables that "
            "`sink postgres` keeps (docs/sql.md): one Parquet file per table in --to DIR, "
            "and with --duckdb FILE a DuckDB database holding the same tables."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="event log (JSON Lines, CSV or Parquet)")
    p.add_argument("--to", metavar="DIR", required=True, help="directory for the Parquet files")
    p.add_argument(
        "--duckdb", metavar="FILE", help="also write a DuckDB database file (default: none)"
    )
    p.add_argument(
        "--input-format",
        choices=("jsonl", "csv", "parquet"),
        help="format of the event log (default: from the extension)",
    )
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated models, or all (default: config attribution.models)",
    )
    p.add_argument(
        "--lookback-days",
        type=float,
        default=None,
        help="touches older than this before a purchase get no credit "
        "(default: config attribution.lookback_days)",
    )
    p.add_argument("--as-of", metavar="ISO", help="report time (default: the newest event)")
    p.add_argument("--compare-days", type=float, default=30.0, help="RFM movement span (days)")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) on any invalid record")
    p.add_argument(
        "--invalid-report",
        metavar="FILE",
        help="write invalid records here (default: none written)",
    )
    p.set_defaults(handler=run, customers=True)


def table_rows(built: Any, models: list[str], options: Any) -> dict[str, list[dict[str, Any]]]:
    """Every warehouse table's rows for a built report."""
    from attribution.order_credits import markov_effects_of, order_records
    from attribution.warehouse import attribution_rows, credits_daily_rows, snapshot_rows

    effects = markov_effects_of(built.attribution.results.get("markov"))
    records = order_records(built.journey_objects(), models, options, effects)
    rows = [row for record in records for row in attribution_rows(record)]
    return {
        "attributions": rows,
        "credits_daily": credits_daily_rows(rows),
        **snapshot_rows(built.report),
    }


def run(args: argparse.Namespace) -> int:
    """Read, analyse and write the tables."""
    apply_record_limits(args)
    from attribution.warehouse import TABLES, arrow_table
    from crm_attribution.commands.report import built_report, check_args, read_log

    settings = settings_from(args)
    as_of = check_args(args)
    target = Path(args.to)
    if target.exists() and not target.is_dir():
        raise UserError(f"--to {target}: exists and is not a directory")
    err = Console(stderr=True)
    events, read, models = read_log(args, settings, as_of, err)
    with stage_status(err, "analysing") as stage:
        built = built_report(events, settings, models, args, as_of, True, stage)
        stage("crediting every order")
        options = settings.attribution.model_options
        tables = table_rows(built, models, options)
    report_invalid(args, read.invalid, err)
    import pyarrow.parquet as pq

    try:
        target.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            pq.write_table(arrow_table(table, tables[table.name]), target / f"{table.name}.parquet")
    except OSError as error:
        raise UserError(f"cannot write to {target}: {error.strerror or error}") from None
    err.print(f"wrote {len(TABLES)} Parquet tables to {target}", highlight=False)
    if args.duckdb:
        write_duckdb(Path(args.duckdb), target)
        err.print(f"wrote DuckDB database {args.duckdb}", highlight=False)
    return 0


def write_duckdb(database: Path, parquet_dir: Path) -> None:
    """A DuckDB file with every table (keys and indexes as in PostgreSQL), from the Parquet."""
    try:
        import duckdb
    except ImportError:
        raise UserError(
            "--duckdb needs the duckdb package: pip install 'crm-attribution[sql]'"
        ) from None
    from attribution.warehouse import TABLES, create_statements

    if database.exists():
        database.unlink()  # a fresh file: the export is a whole snapshot
    with duckdb.connect(str(database)) as con:
        for table in TABLES:
            for statement in create_statements(table, "duckdb"):
                con.execute(statement)
            source = str(parquet_dir / f"{table.name}.parquet")
            con.execute(f"INSERT INTO {table.name} SELECT * FROM read_parquet(?)", [source])
