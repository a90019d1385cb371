"""The analysts' tables, one definition for PostgreSQL, Parquet and DuckDB.

``attributions`` holds one row per order, model and channel (the stream's attribution
records with retractions applied, or the batch engine's per-order credit); ``credits_daily``
sums it per day. The snapshot tables (``rfm_customers``, ``rfm_movement``, ``clv_segments``,
``clv_customers``, ``holdout``, ``campaigns``) are the analytics report's sections as rows,
replaced whole at each snapshot. Undefined figures are NULL (:mod:`attribution.report_figures`).
docs/sql.md documents every column and gives BI queries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from attribution.report_figures import campaign_economics, campaign_rates


@dataclass(frozen=True)
class Table:
    """A table: columns as (name, kind), its primary key, and secondary indexes."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [name for name, _ in self.columns]


ATTRIBUTIONS = Table(
    "attributions",
    (
        ("purchase_event_id", "text"),
        ("model", "text"),
        ("channel", "text"),
        ("order_id", "text"),
        ("customer_id", "text"),
        ("ts", "timestamp"),
        ("day", "date"),
        ("conversions", "float"),
        ("value", "float"),
        ("order_value", "float"),
        ("path", "text"),
        ("journey", "text"),
    ),
    ("purchase_event_id", "model", "channel"),
    (("day", "model"), ("model", "channel", "day"), ("customer_id",), ("order_id",)),
)
CREDITS_DAILY = Table(
    "credits_daily",
    (
        ("day", "date"),
        ("model", "text"),
        ("channel", "text"),
        ("conversions", "float"),
        ("value", "float"),
        ("orders", "int"),
    ),
    ("day", "model", "channel"),
    (("model", "channel"),),
)
RFM_CUSTOMERS = Table(
    "rfm_customers",
    (
        ("customer_id", "text"),
        ("as_of", "timestamp"),
        ("recency_days", "float"),
        ("frequency", "int"),
        ("monetary", "float"),
        ("r", "int"),
        ("f", "int"),
        ("m", "int"),
        ("code", "text"),
        ("segment", "text"),
        ("grade", "text"),
    ),
    ("customer_id",),
    (("segment",), ("grade",)),
)
RFM_MOVEMENT = Table(
    "rfm_movement",
    (
        ("kind", "text"),
        ("from_label", "text"),
        ("to_label", "text"),
        ("customers", "int"),
        ("from_ts", "timestamp"),
        ("to_ts", "timestamp"),
    ),
    ("kind", "from_label", "to_label"),
)
CLV_SEGMENTS = Table(
    "clv_segments",
    (
        ("segment", "text"),
        ("as_of", "timestamp"),
        ("customers", "int"),
        ("historical_revenue", "float"),
        ("historical_mean", "float"),
        ("forecast_revenue", "float"),
        ("forecast_mean", "float"),
        ("horizon_weeks", "float"),
        ("forecast_status", "text"),
    ),
    ("segment",),
)
CLV_CUSTOMERS = Table(
    "clv_customers",
    (
        ("customer_id", "text"),
        ("as_of", "timestamp"),
        ("historical", "float"),
        ("forecast", "float"),
        ("expected_purchases", "float"),
        ("probability_alive", "float"),
        ("expected_spend", "float"),
    ),
    ("customer_id",),
)
HOLDOUT = Table(
    "holdout",
    (
        ("experiment", "text"),
        ("period", "text"),
        ("as_of", "timestamp"),
        ("n_treated", "int"),
        ("n_control", "int"),
        ("conversion_rate_treated", "float"),
        ("conversion_rate_control", "float"),
        ("conversion_lift", "float"),
        ("conversion_lift_low", "float"),
        ("conversion_lift_high", "float"),
        ("conversion_lift_relative", "float"),
        ("min_detectable_conversion_lift", "float"),
        ("incremental_revenue", "float"),
        ("incremental_revenue_low", "float"),
        ("incremental_revenue_high", "float"),
        ("min_detectable_incremental_revenue", "float"),
        ("underpowered", "bool"),
        ("warning", "text"),
    ),
    ("experiment", "period"),
)
CAMPAIGNS = Table(
    "campaigns",
    (
        ("campaign", "text"),
        ("model", "text"),
        ("as_of", "timestamp"),
        ("cost", "float"),
        ("attributed_revenue", "float"),
        ("roi", "float"),
        ("revenue_cost_ratio", "float"),
        ("cac", "float"),
        ("cpl", "float"),
        ("cpo", "float"),
        ("conversion_rate", "float"),
        ("orders", "float"),
        ("new_customers", "float"),
        ("reached", "int"),
        ("sent", "int"),
        ("delivered", "int"),
        ("opens", "int"),
        ("clicks", "int"),
        ("leads", "int"),
        ("open_rate", "float"),
        ("ctr", "float"),
        ("ctor", "float"),
    ),
    ("campaign", "model"),
    (("model",),),
)

SNAPSHOT_TABLES = (RFM_CUSTOMERS, RFM_MOVEMENT, CLV_SEGMENTS, CLV_CUSTOMERS, HOLDOUT, CAMPAIGNS)
TABLES = (ATTRIBUTIONS, CREDITS_DAILY, *SNAPSHOT_TABLES)

Row = dict[str, Any]


def parse_ts(value: str | int | None) -> datetime | None:
    """An ISO 8601 string or epoch milliseconds as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def journey_fingerprint(path: Iterable[str], ts_ms: int, value: float) -> str:
    """Identifies one version of an order's journey: a retraction removes only that version."""
    text = json.dumps([list(path), ts_ms, value], separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def attribution_rows(record: Mapping[str, Any]) -> list[Row]:
    """The ``attributions`` rows of one attribution record (the stream's output topic shape)."""
    ts = parse_ts(int(record["ts"]))
    assert ts is not None
    path = list(record.get("path") or [])
    fingerprint = journey_fingerprint(path, int(record["ts"]), float(record["value"]))
    return [
        {
            "purchase_event_id": record["purchase_event_id"],
            "model": record["model"],
            "channel": channel,
            "order_id": record["order_id"],
            "customer_id": record["customer_id"],
            "ts": ts,
            "day": ts.date(),
            "conversions": float(credit.get("conversions", 0.0)),
            "value": float(credit.get("value", 0.0)),
            "order_value": float(record["value"]),
            "path": " > ".join(path),
            "journey": fingerprint,
        }
        for channel, credit in sorted((record.get("credits") or {}).items())
    ]


def credits_daily_rows(rows: Iterable[Row]) -> list[Row]:
    """``credits_daily`` from ``attributions`` rows."""
    sums: dict[tuple[date, str, str], list[Any]] = {}
    for row in rows:
        slot = sums.setdefault((row["day"], row["model"], row["channel"]), [0.0, 0.0, set()])
        slot[0] += row["conversions"]
        slot[1] += row["value"]
        slot[2].add(row["purchase_event_id"])
    return [
        {"day": d, "model": m, "channel": c, "conversions": cv, "value": v, "orders": len(orders)}
        for (d, m, c), (cv, v, orders) in sorted(sums.items())
    ]


def _ci(pair: list[float] | None, i: int) -> float | None:
    return None if not pair else pair[i]


def snapshot_rows(report: Mapping[str, Any]) -> dict[str, list[Row]]:
    """Rows of every snapshot table from an analytics report (``report --customers`` JSON)."""
    as_of = parse_ts(report["as_of"])
    rfm = report["rfm"]
    out: dict[str, list[Row]] = {t.name: [] for t in SNAPSHOT_TABLES}
    for customer, e in sorted((rfm.get("customers") or {}).items()):
        out["rfm_customers"].append(
            {"customer_id": customer, "as_of": as_of, **{k: e[k] for k in RFM_CUSTOMERS.names[2:]}}
        )
    moved = rfm.get("movement")
    if moved:
        for kind, key in (("grade", "grades"), ("segment", "segments")):
            for source, targets in sorted(moved[key].items()):
                for target, n in sorted(targets.items()):
                    out["rfm_movement"].append(
                        {
                            "kind": kind,
                            "from_label": source,
                            "to_label": target,
                            "customers": n,
                            "from_ts": parse_ts(moved["from"]),
                            "to_ts": parse_ts(moved["to"]),
                        }
                    )
    clv = report["clv"]
    for segment, row in sorted((clv.get("segments") or {}).items()):
        out["clv_segments"].append(
            {
                "segment": segment,
                "as_of": as_of,
                **{k: row.get(k) for k in CLV_SEGMENTS.names[2:7]},
                "horizon_weeks": clv.get("horizon_weeks"),
                "forecast_status": clv.get("forecast_status"),
            }
        )
    for customer, row in sorted((clv.get("per_customer") or {}).items()):
        out["clv_customers"].append(
            {
                "customer_id": customer,
                "as_of": as_of,
                **{k: row.get(k) for k in CLV_CUSTOMERS.names[2:]},
            }
        )
    out["holdout"] = _holdout_rows(report["holdout"], as_of)
    for campaign, c in sorted((report.get("campaigns") or {}).items()):
        funnel = c.get("funnel") or {}
        rates = campaign_rates(c)
        for model in sorted(c.get("models") or {}):
            e = campaign_economics(c, model)
            out["campaigns"].append(
                {
                    "campaign": campaign,
                    "model": model,
                    "as_of": as_of,
                    "cost": c.get("cost") or None,
                    **{k: e.get(k) for k in CAMPAIGNS.names[4:13]},
                    **{k: funnel.get(k) for k in ("reached", "sent", "delivered", "opens")},
                    **{k: funnel.get(k) for k in ("clicks", "leads")},
                    **rates,
                }
            )
    return out


def _holdout_rows(holdout: Mapping[str, Any], as_of: datetime | None) -> list[Row]:
    found: list[tuple[str, str, Mapping[str, Any] | None]] = [
        ("(overall)", "all", holdout.get("overall"))
    ]
    found += [(n, "all", r) for n, r in sorted((holdout.get("campaigns") or {}).items())]
    for name, periods in sorted((holdout.get("periods") or {}).items()):
        found += [(name, p, r) for p, r in sorted(periods.items())]
    rows = []
    for name, period, r in found:
        if r is None:
            continue
        rows.append(
            {
                "experiment": name,
                "period": period,
                "as_of": as_of,
                **{k: r.get(k) for k in HOLDOUT.names[3:8]},
                "conversion_lift_low": _ci(r.get("conversion_lift_ci"), 0),
                "conversion_lift_high": _ci(r.get("conversion_lift_ci"), 1),
                "conversion_lift_relative": r.get("conversion_lift_relative"),
                "min_detectable_conversion_lift": r.get("min_detectable_conversion_lift"),
                "incremental_revenue": r.get("incremental_revenue"),
                "incremental_revenue_low": _ci(r.get("incremental_revenue_ci"), 0),
                "incremental_revenue_high": _ci(r.get("incremental_revenue_ci"), 1),
                "min_detectable_incremental_revenue": r.get("min_detectable_incremental_revenue"),
                "underpowered": bool(r.get("underpowered")),
                "warning": r.get("warning"),
            }
        )
    return rows


SQL_TYPES = {
    "postgres": {
        "text": "text",
        "float": "double precision",
        "int": "bigint",
        "bool": "boolean",
        "date": "date",
        "timestamp": "timestamptz",
    },
    "duckdb": {
        "text": "VARCHAR",
        "float": "DOUBLE",
        "int": "BIGINT",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
    },
}


def create_statements(table: Table, dialect: str, schema: str | None = None) -> list[str]:
    """``CREATE TABLE``/``CREATE INDEX`` statements (IF NOT EXISTS: safe to run at every start)."""
    types = SQL_TYPES[dialect]
    qualified = f"{schema}.{table.name}" if schema else table.name
    columns = ", ".join(f"{name} {types[kind]}" for name, kind in table.columns)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {qualified} ({columns}, PRIMARY KEY ({', '.join(table.key)}))"
    ]
    for index in table.indexes:
        name = f"{table.name}_{'_'.join(index)}_idx"
        statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {qualified} ({', '.join(index)})")
    return statements


def arrow_table(table: Table, rows: list[Row]) -> Any:
    """The rows as a pyarrow Table with the table's column types."""
    import pyarrow as pa

    kinds = {
        "text": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    schema = pa.schema([(name, kinds[kind]) for name, kind in table.columns])
    return pa.Table.from_pylist([{n: r.get(n) for n in table.names} for r in rows], schema=schema)
