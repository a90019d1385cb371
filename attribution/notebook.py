"""The notebook API: ``attribution.attribute(...)`` and ``attribution.report(...)``.

Both take a file path, a pandas or Polars DataFrame, or a pyarrow Table, and plain keyword
parameters (defaults: the shipped configuration). They run the batch engine's own functions
(:func:`attribution.engine.attribute_events` / ``attribute_paths`` and
:func:`attribution.report_build.build_report`) and return results that print as short
summaries and turn into DataFrames with ``.to_pandas()`` / ``.to_polars()``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from attribution.io import InvalidRow, ReadError
from attribution.report_build import ALL_MODELS, BuiltReport, ReportParameters

PATH_MODELS = tuple(m for m in ALL_MODELS if m != "time_decay")


def _arrow(data: Any) -> Any:
    """A pyarrow Table from a pandas or Polars DataFrame or an Arrow table (None: other)."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return data.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    return None


def _is_paths(table: Any, path_column: str) -> bool:
    return path_column in table.column_names and "type" not in table.column_names


def _events_of_table(table: Any) -> tuple[Any, list[InvalidRow]]:
    """Validate an Arrow table of events as the readers do (an empty string is absent)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from attribution.io.parquet_events import read_arrow_table

    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
        columns[name] = column
    read = read_arrow_table(pa.table(columns))
    return read.table, read.invalid


def _read_events(data: Any) -> tuple[Any, list[InvalidRow]]:
    """The event table of a file or an in-memory table, and its invalid records."""
    from attribution.io.events_reader import read_event_table

    table = _arrow(data)
    if table is not None:
        return _events_of_table(table)
    read = read_event_table(Path(data))
    return read.table, read.invalid


def _source_kind(data: Any, path_column: str) -> str:
    table = _arrow(data)
    if table is not None:
        return "paths" if _is_paths(table, path_column) else "events"
    name = Path(data).name.lower()
    if not Path(data).exists():
        raise ReadError(f"{data} does not exist")
    if name.endswith((".csv", ".csv.gz")):
        import gzip

        opener = gzip.open if name.endswith(".gz") else open
        with opener(Path(data), "rb") as handle:
            head = handle.read(4096)
        first = head.decode("utf-8", errors="replace").splitlines()[0] if head else ""
        columns = [c.strip().strip('"') for c in first.split(",")]
        return "paths" if path_column in columns and "type" not in columns else "events"
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        columns = pq.read_schema(data).names
        return "paths" if path_column in columns and "type" not in columns else "events"
    return "events"


@dataclass
class AttributionResult:
    """Channel credits under each model; ``.to_pandas()`` gives one row per model and channel."""

    report: Any
    invalid: list[InvalidRow] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """Models in the order they were asked for."""
        return list(self.report.results)

    @property
    def totals(self) -> dict[str, Any]:
        """What the input held: conversions, value, null paths, unattributed, invalid."""
        totals: dict[str, Any] = self.report.totals.to_json()
        return totals

    def to_json(self) -> dict[str, Any]:
        """The ``attribute --format json`` object."""
        data: dict[str, Any] = self.report.to_json()
        return data

    def rows(self) -> list[dict[str, Any]]:
        """One dict per model and channel (removal effects for Markov, else None)."""
        out = []
        for model, result in self.to_json()["models"].items():
            for channel, credit in result["channels"].items():
                out.append(
                    {
                        "model": model,
                        "channel": channel,
                        "conversions": credit["conversions"],
                        "value": credit["value"],
                        "removal_effect": credit.get("removal_effect"),
                        "removal_effect_value": credit.get("removal_effect_value"),
                        **_interval_columns(credit),
                    }
                )
        return out

    def to_arrow(self) -> Any:
        """The rows as a pyarrow Table."""
        import pyarrow as pa

        return pa.Table.from_pylist(self.rows())

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (``pivot(index="channel", columns="model")`` widens)."""
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        """The rows as a Polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self.to_arrow())

    def __repr__(self) -> str:
        t = self.totals
        lines = [
            f"AttributionResult: {t['conversions']:,} conversions worth {t['value']:,.2f}, "
            f"{len(self.models)} models; invalid records {len(self.invalid)}",
            "value credited (top channels per model):",
        ]
        for model, result in self.to_json()["models"].items():
            top = sorted(result["channels"].items(), key=lambda kv: -kv[1]["value"])[:3]
            shown = ", ".join(f"{ch} {c['value']:,.2f}" for ch, c in top)
            more = len(result["channels"]) - len(top)
            lines.append(f"  {model}: {shown}" + (f" (+{more} more)" if more > 0 else ""))
        lines.append(".to_pandas() / .to_polars(): one row per model and channel")
        return "\n".join(lines)


def _interval_columns(credit: dict[str, Any]) -> dict[str, float]:
    """conversions_low/high and value_low/high, when the credit has an interval."""
    interval = credit.get("ci")
    if not interval:
        return {}
    (c_low, c_high), (v_low, v_high) = interval["conversions"], interval["value"]
    return {"conversions_low": c_low, "conversions_high": c_high, "value_low": v_low,
            "value_high": v_high}  # fmt: skip


def attribute(
    data: Any,
    *,
    models: Sequence[str] | None = None,
    lookback_days: float = 30.0,
    journey_timeout_days: float = 0.0,
    allowed_lateness_hours: float = 1.0,
    markov_order: int = 1,
    markov_states: Literal["merged", "raw"] = "merged",
    max_steps: int | None = None,
    half_life_days: float = 7.0,
    direct_channel: str = "direct",
    sep: str = ">",
    path_column: str = "path",
    conversions_column: str = "total_conversions",
    value_column: str = "total_conversion_value",
    null_column: str = "total_null",
    ci: float | None = None,
    resamples: int = 200,
    seed: int = 0,
    base_currency: str = "EUR",
    rates: str | Path | None = None,
) -> AttributionResult:
    """Attribute an event log or a path table (ChannelAttribution's layout) to channels.

    ``data``: a file (JSON Lines, CSV or Parquet events; CSV or Parquet paths), or a pandas or
    Polars DataFrame, or a pyarrow Table. A table with a ``path`` column and no ``type`` column
    is a path table; anything else is events. ``ci=0.95``: every credit of an event log gets
    its 95% interval, by ``resamples`` bootstrap resamples of the customers (``seed``).
    Amounts are summed in ``base_currency`` (others converted by ``rate`` events and the
    ``rates`` CSV file) and net of refunds (attribution/money.py).
    """
    from attribution.engine import attribute_journeys, attribute_paths
    from attribution.journeys import JourneyRules
    from attribution.models.options import ModelOptions
    from attribution.models.registry import resolve_models

    options = ModelOptions(
        order=markov_order,
        max_steps=max_steps,
        direct_channel=direct_channel,
        half_life_days=half_life_days,
        markov_states=markov_states,
    )
    if _source_kind(data, path_column) == "paths":
        if ci is not None:
            raise ValueError("ci resamples customers, which only an event log has, not paths")
        wanted = resolve_models(",".join(models or PATH_MODELS))
        read = _read_paths(data, sep, path_column, conversions_column, value_column, null_column)
        return AttributionResult(
            attribute_paths(read.table, read.totals, wanted, options), read.invalid
        )
    wanted = resolve_models(",".join(models or ALL_MODELS))
    events, invalid = _read_events(data)
    events, invalid = _with_money(events, invalid, base_currency, rates)
    rules = JourneyRules.from_days(
        lookback_days, journey_timeout_days or lookback_days, allowed_lateness_hours
    )
    from attribution.journey_table import build_journey_table

    journeys = build_journey_table(events, rules)
    report = attribute_journeys(journeys, wanted, options)
    if ci is not None:
        from attribution.bootstrap import journey_credit_intervals

        report.confidence = journey_credit_intervals(journeys, wanted, options, resamples, ci, seed)
    report.totals.invalid_records = len(invalid)
    return AttributionResult(report, invalid)


def _with_money(
    events: Any, invalid: list[InvalidRow], base_currency: str, rates: str | Path | None
) -> tuple[Any, list[InvalidRow]]:
    """Amounts in the base currency, net of refunds; records that cannot be, invalid."""
    from attribution.money import MoneySettings, apply_money, merged_invalid, read_rates_file

    money = MoneySettings(base_currency, read_rates_file(rates) if rates else ())
    events, unapplied = apply_money(events, money)
    return events, merged_invalid(invalid, unapplied)


def _read_paths(data: Any, sep: str, path: str, conversions: str, value: str, null: str) -> Any:
    """A path table through the path-file reader (its validation), via Parquet for tables."""
    from attribution.io.paths_reader import PathColumns, read_paths

    columns = PathColumns(path, conversions, value, null)
    table = _arrow(data)
    if table is None:
        return read_paths(Path(data), sep=sep, columns=columns)
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "paths.parquet"
        pq.write_table(table, file)
        return read_paths(file, sep=sep, columns=columns)


REPORT_TABLES = (
    "segments",
    "revenue_share",
    "assisted",
    "attributions",
    "credits_daily",
    "rfm_customers",
    "rfm_movement",
    "clv_segments",
    "clv_customers",
    "holdout",
    "calibration",
    "campaigns",
)


@dataclass
class ReportResult:
    """The analytics report; ``.to_pandas(table)`` gives one of :data:`REPORT_TABLES`."""

    built: BuiltReport
    params: ReportParameters
    invalid: list[InvalidRow] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        """The ``report --format json`` object (with every customer's scores)."""
        return self.built.report

    def to_json(self) -> dict[str, Any]:
        """The report JSON."""
        return self.data

    @property
    def attribution(self) -> AttributionResult:
        """The attribution the report was made from."""
        return AttributionResult(self.built.attribution, self.invalid)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The rows of one table (see :data:`REPORT_TABLES`; the SQL tables of docs/sql.md)."""
        if table not in REPORT_TABLES:
            raise ValueError(f"unknown table {table!r}; one of {', '.join(REPORT_TABLES)}")
        r = self.data
        if table == "segments":
            clv = r["clv"]["segments"]
            return [
                {"segment": name, "customers": n, **{k: v for k, v in clv.get(name, {}).items()}}
                for name, n in r["rfm"]["segments"].items()
            ]
        if table == "revenue_share":
            return [
                {"model": model, "channel": ch, "value": c["value"], "share": c["share"]}
                for model, m in r["revenue_share"]["models"].items()
                for ch, c in m["channels"].items()
            ]
        if table == "calibration":
            from attribution.analytics.calibration import calibration_rows

            return calibration_rows(r)
        if table == "assisted":
            return [{"channel": ch, **row} for ch, row in sorted(r["assisted"].items())]
        return self._warehouse()[table]

    def _warehouse(self) -> dict[str, list[dict[str, Any]]]:
        from attribution.models.options import ModelOptions
        from attribution.order_credits import markov_effects_of, order_records
        from attribution.warehouse import attribution_rows, credits_daily_rows, snapshot_rows

        p = self.params
        options = ModelOptions(
            order=p.markov_order,
            direct_channel=p.direct_channel,
            half_life_days=p.half_life_days,
            markov_states=p.markov_states,
        )
        effects = markov_effects_of(self.built.attribution.results.get("markov"))
        records = order_records(self.built.journey_objects(), list(p.models), options, effects)
        rows = [row for record in records for row in attribution_rows(record)]
        return {
            "attributions": rows,
            "credits_daily": credits_daily_rows(rows),
            **snapshot_rows(self.data),
        }

    def to_arrow(self, table: str = "segments") -> Any:
        """One table as a pyarrow Table."""
        import pyarrow as pa

        from attribution.warehouse import TABLES, arrow_table

        typed = {t.name: t for t in TABLES}
        rows = self.rows(table)
        return arrow_table(typed[table], rows) if table in typed else pa.Table.from_pylist(rows)

    def to_pandas(self, table: str = "segments") -> Any:
        """One table as a pandas DataFrame."""
        return self.to_arrow(table).to_pandas()

    def to_polars(self, table: str = "segments") -> Any:
        """One table as a Polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self.to_arrow(table))

    def __repr__(self) -> str:
        r = self.data
        share = r["revenue_share"]
        overall = r["holdout"].get("overall") or {}
        crm = ", ".join(f"{m} {v:.1%}" for m, v in share["crm_share"].items() if v is not None)
        lines = [
            f"ReportResult as of {r['as_of']}: {r['rfm']['active_customers']:,} active customers,"
            f" revenue {share['total_revenue']:,.2f}",
            f"  CRM share of revenue: {crm or '-'}",
        ]
        if overall:
            ci = overall.get("incremental_revenue_ci") or [None, None]
            lift = overall.get("conversion_lift")
            relative = overall.get("conversion_lift_relative")
            lines.append(
                f"  holdout: incremental revenue {_money(overall.get('incremental_revenue'))} "
                f"(95% {_money(ci[0])} to {_money(ci[1])}), conversion lift "
                f"{_points(lift)} ({_pct(relative)} relative)"
                + (", underpowered" if overall.get("underpowered") else "")
            )
        top = sorted(r["rfm"]["segments"].items(), key=lambda kv: -kv[1])[:3]
        lines.append("  largest segments: " + ", ".join(f"{s} {n:,}" for s, n in top))
        lines.append(f"  invalid records: {len(self.invalid)}")
        lines.append(f"  tables (.to_pandas(name) / .to_polars(name)): {', '.join(REPORT_TABLES)}")
        return "\n".join(lines)


def _money(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _points(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f} pts"


def _as_of_ms(as_of: str | datetime | None) -> int | None:
    from attribution.events import parse_timestamp

    if as_of is None:
        return None
    moment = parse_timestamp(as_of)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // _MS


_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)


def report(
    data: Any,
    *,
    models: Sequence[str] | None = None,
    as_of: str | datetime | None = None,
    compare_days: float = 30.0,
    lookback_days: float = 30.0,
    journey_timeout_days: float = 0.0,
    allowed_lateness_hours: float = 1.0,
    markov_order: int = 1,
    markov_states: Literal["merged", "raw"] = "merged",
    half_life_days: float = 7.0,
    direct_channel: str = "direct",
    crm_channels: Sequence[str] = ("email", "push", "sms", "whatsapp"),
    rfm_window_days: float = 365.0,
    holdout_from_hash: bool = False,
    holdout_salt: str = "crm-attribution",
    holdout_control_share: float = 0.05,
    clv_horizon_weeks: float = 52.0,
    base_currency: str = "EUR",
    rates: str | Path | None = None,
    time_zone: str = "UTC",
) -> ReportResult:
    """The customer analytics report of an event log (file, DataFrame or Arrow table).

    Amounts are in ``base_currency`` and net of refunds (as in :func:`attribute`); day and
    month buckets are those of ``time_zone``.
    """
    from attribution.models.registry import resolve_models
    from attribution.report_build import build_report

    if compare_days <= 0:
        raise ValueError(f"compare_days must be positive, got {compare_days}")
    params = ReportParameters(
        models=tuple(resolve_models(",".join(models or ALL_MODELS))),
        lookback_days=lookback_days,
        journey_timeout_days=journey_timeout_days,
        allowed_lateness_hours=allowed_lateness_hours,
        markov_order=markov_order,
        markov_states=markov_states,
        direct_channel=direct_channel,
        half_life_days=half_life_days,
        crm_channels=tuple(crm_channels),
        rfm_window_days=rfm_window_days,
        holdout_from_hash=holdout_from_hash,
        holdout_salt=holdout_salt,
        holdout_control_share=holdout_control_share,
        compare_days=compare_days,
        clv_horizon_weeks=clv_horizon_weeks,
        time_zone=time_zone,
    )
    from attribution.analytics._common import check_time_zone

    check_time_zone(time_zone)
    events, invalid = _read_events(data)
    when = _as_of_ms(as_of)
    if when is not None:
        events = events.filter(events["ts_ms"] <= when)
    events, invalid = _with_money(events, invalid, base_currency, rates)
    if events.height == 0:
        raise ValueError("no valid event to report on")
    built = build_report(events, params, when, customer_scores=True)
    built.report["invalid_records"] = len(invalid)
    built.report["attribution"]["invalid_records"] = len(invalid)
    return ReportResult(built, params, invalid)
