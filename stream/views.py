"""HTTP API of a worker: analysts' queries, ops endpoints and the internal fan-out view."""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING, Any

from config.settings import KNOWN_MODELS
from stream.aggregates import local_items
from stream.openapi import OPENAPI

if TYPE_CHECKING:
    from stream.app import Pipeline


class BadRequest(ValueError):
    """A query parameter is invalid; answered with HTTP 400 and the reason."""


def local_share(pipeline: Pipeline, kinds: str) -> dict[str, Any]:
    """This worker's aggregate items, for the partitions it owns, limited to ``kinds``."""
    wanted = {k for k in kinds.split(",") if k} if kinds else set()
    items = (
        (key, value)
        for key, value in pipeline.aggregates.items()
        if not wanted or key.split("|", 2)[1] in wanted
    )
    partitions = pipeline.assigned_partitions()
    share = local_items(items, partitions)
    # The newest event times live in memory between aggregate writes.
    context = getattr(pipeline, "context", None)
    if context is not None and (not wanted or "totals" in wanted):
        for partition in partitions:
            mark = context.watermarks.get(partition, 0)
            totals = dict(share.setdefault(str(partition), {}).get("totals") or {})
            if mark > totals.get("wm", 0):
                totals["wm"] = mark
                share[str(partition)]["totals"] = totals
    return {"url": str(pipeline.app.conf.canonical_url), "partitions": share}


def parse_day(name: str, raw: str | None) -> str | None:
    """Validate a YYYY-MM-DD query parameter."""
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not a date (expected YYYY-MM-DD)") from None


def parse_positive(name: str, raw: str | None, default: float) -> float:
    """Validate a positive number query parameter."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise BadRequest(f"{name}={raw!r} must be positive")
    return value


def update_analytics_gauges(metrics: Any, answer: dict[str, Any]) -> None:
    """Publish the headline analytics numbers of a fresh report as gauges."""
    for segment, count in (answer.get("rfm", {}).get("segments") or {}).items():
        metrics.rfm_segment_customers.labels(segment).set(count)
    overall = (answer.get("holdout") or {}).get("overall") or {}
    if overall.get("incremental_revenue") is not None:
        metrics.holdout_incremental_revenue.set(overall["incremental_revenue"])
    share = answer.get("revenue_share") or {}
    if share.get("total_revenue") is not None:
        metrics.total_revenue.set(share["total_revenue"])
    for model, value in (share.get("crm_share") or {}).items():
        if value is not None:
            metrics.crm_revenue_share.labels(model).set(value)


def parse_models(pipeline: Pipeline, raw: str | None) -> list[str]:
    """Validate a comma-separated model list against the models this pipeline runs."""
    if not raw or raw == "all":
        return list(pipeline.models)
    models = [m.strip() for m in raw.split(",") if m.strip()]
    for model in models:
        if model not in KNOWN_MODELS:
            raise BadRequest(f"unknown model {model!r}; known: {', '.join(KNOWN_MODELS)}")
        if model not in pipeline.models:
            raise BadRequest(f"model {model!r} is not computed by this stream (config models)")
    return models


def attach(pipeline: Pipeline) -> None:
    """Register the web views on the pipeline's app."""
    from faust.web import Request, Response, View

    from stream import report
    from stream.fanout import FanoutError

    app = pipeline.app
    metrics = pipeline.metrics

    def error(web: Any, status: int, reason: str) -> Response:
        return web.json({"error": reason}, status=status)

    def not_ready_reason() -> str | None:
        if app.rebalancing:
            return "the worker group is rebalancing; retry in a few seconds"
        if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return "the worker is recovering its tables; retry in a few seconds"
        return None

    async def guarded(web: Any, produce: Any) -> Response:
        reason = not_ready_reason()
        if reason:
            return error(web, 503, reason)
        try:
            return web.json(await produce())
        except BadRequest as bad:
            return error(web, 400, str(bad))
        except FanoutError as failure:
            return error(web, 503, str(failure))

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "uptime_seconds": time.monotonic() - _STARTED})

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            reason = not_ready_reason()
            if reason:
                return self.json({"ready": False, "reason": reason}, status=503)
            return self.json({"ready": True})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            report.update_gauges(pipeline)
            # aiohttp refuses a charset inside content_type; text/plain is Prometheus' format.
            return self.text(metrics.render().decode("utf-8"), content_type="text/plain")

    @app.page("/metrics-json")
    class MetricsJson(View):
        async def get(self, request: Request) -> Response:
            report.update_gauges(pipeline)
            return self.json(report.metrics_summary(pipeline))

    @app.page("/openapi.json")
    class OpenApi(View):
        async def get(self, request: Request) -> Response:
            return self.json(OPENAPI)

    @app.page("/internal/local")
    class Local(View):
        async def get(self, request: Request) -> Response:
            return self.json(local_share(pipeline, request.query.get("kinds", "")))

    @app.page("/attribution")
    class Attribution(View):
        async def get(self, request: Request) -> Response:
            return await guarded(self, lambda: report.attribution_json(pipeline))

    @app.page("/totals")
    class Totals(View):
        async def get(self, request: Request) -> Response:
            return await guarded(self, lambda: report.totals_json(pipeline))

    @app.page("/credits")
    class Credits(View):
        async def get(self, request: Request) -> Response:
            async def produce() -> Any:
                models = parse_models(pipeline, request.query.get("model"))
                start = parse_day("from", request.query.get("from"))
                end = parse_day("to", request.query.get("to"))
                if start and end and start > end:
                    raise BadRequest(f"from={start} is after to={end}")
                return await report.credits_json(pipeline, models, start, end)

            return await guarded(self, produce)

    @app.page("/markov")
    class Markov(View):
        async def get(self, request: Request) -> Response:
            refresh = request.query.get("refresh", "0") not in ("0", "false", "")
            return await guarded(self, lambda: report.markov_json(pipeline, refresh))

    @app.page("/internal/analytics")
    class LocalAnalytics(View):
        async def get(self, request: Request) -> Response:
            from stream.analytics_report import local_analytics

            return self.json(local_analytics(pipeline))

    @app.page("/analytics")
    class Analytics(View):
        async def get(self, request: Request) -> Response:
            from stream.analytics_report import EmptyStream, analytics_json

            async def produce() -> Any:
                scores = request.query.get("customers", "0") not in ("0", "false", "")
                compare = parse_positive("compare_days", request.query.get("compare_days"), 30.0)
                try:
                    answer = await analytics_json(pipeline, scores, compare)
                except EmptyStream as empty:
                    raise BadRequest(str(empty)) from None
                update_analytics_gauges(metrics, answer)
                return answer

            return await guarded(self, produce)

    @app.page("/customers/{customer_id}")
    class Customer(View):
        @app.table_route(table=pipeline.customers_table, match_info="customer_id")  # type: ignore[arg-type]
        async def get(self, request: Request, customer_id: str) -> Response:
            data = pipeline.customers.get(customer_id.encode("utf-8"))
            if data is None:
                return error(self, 404, f"no customer {customer_id!r} in the stream")
            return self.json(report.customer_json(pipeline, customer_id, data))


_STARTED = time.monotonic()
