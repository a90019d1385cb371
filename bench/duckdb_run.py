"""Run bench/duckdb_journeys.sql on a Parquet log: ``duckdb_run.py LOG.parquet LOOKBACK_DAYS``."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

sql = (Path(__file__).with_name("duckdb_journeys.sql")).read_text()
rows = duckdb.sql(sql.replace("{log}", sys.argv[1]).replace("{lookback_days}", sys.argv[2]))
for row in rows.fetchall():
    print(*row, sep="\t")
