"""The worker's HTTP endpoints (the server side): analysts' queries, ops, the internal shares."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from faust.web import Request, Response, View

from crm_attribution.dashboard import dashboard_data, render_dashboard
from stream.api import queries
from stream.api.access import AccessPolicy, internal_secret, server_token
from stream.api.fanout import (
    ANALYTICS_PATH,
    CUSTOMER_PATH,
    LOCAL_PATH,
    VERSION_PATH,
    FanoutError,
    find_customer,
)
from stream.api.guard import access_middleware
from stream.api.merge_analytics import EmptyStream
from stream.api.openapi import openapi_description
from stream.api.params import (
    BadRequest,
    NotFound,
    parse_day,
    parse_flag,
    parse_intervals,
    parse_models,
    parse_positive,
)
from stream.api.shares import local_analytics, local_share, local_version
from stream.api.status import metrics_summary, update_gauges
from stream.pipeline import Pipeline

_STARTED = time.monotonic()
# Longest RFM comparison /analytics takes: 100 years (a larger one overflows a date).
MAX_COMPARE_DAYS = 36525.0


def unexpected_partition(pipeline: Pipeline) -> str | None:
    """Why the worker cannot process what it was assigned (a topic grew past the config)."""
    try:
        assigned = pipeline.app.assignor.assigned_actives()
    except Exception:  # noqa: BLE001 - nothing assigned yet
        return None
    for tp in sorted(assigned):
        if tp.partition >= pipeline.partitions:
            return (
                f"topic {tp.topic} has a partition {tp.partition} but topics.partitions is "
                f"{pipeline.partitions}: this worker cannot process it (docs/stream.md, Topics)"
            )
    return None


def attach(pipeline: Pipeline) -> None:
    """Register the web views on the pipeline's app, behind the API's access policy."""
    app = pipeline.app
    metrics = pipeline.metrics
    settings = pipeline.settings
    token, source = server_token(settings)
    policy = AccessPolicy.from_settings(settings, token)
    pipeline.internal_headers = {"Authorization": f"Bearer {internal_secret(settings, token)}"}
    # Faust's aiohttp driver: its Application takes middlewares until the server starts.
    app.web.web_app.middlewares.append(access_middleware(policy))  # type: ignore[attr-defined]
    # Where the token is, never the token.
    logging.getLogger("crm_attribution.stream").info("API token: %s", source)
    openapi = openapi_description(metrics_open=policy.metrics_open)

    def error(web: Any, status: int, reason: str) -> Response:
        return web.json({"error": reason}, status=status)

    def not_ready_reason() -> str | None:
        unexpected = unexpected_partition(pipeline)
        if unexpected:
            return unexpected
        if app.rebalancing:
            return "the worker group is rebalancing; retry in a few seconds"
        if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return "the worker is recovering its tables; retry in a few seconds"
        return None

    async def guarded(
        web: Any, produce: Callable[[], Awaitable[Any]], headers: dict[str, str] | None = None
    ) -> Response:
        """``produce``'s answer as JSON, or the error; ``headers``: filled in by ``produce``."""
        reason = not_ready_reason()
        if reason:
            return error(web, 503, reason)
        try:
            value = await produce()
            return web.json(value, headers=headers or None)
        except BadRequest as bad:
            return error(web, 400, str(bad))
        except NotFound as missing:
            return error(web, 404, str(missing))
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
            update_gauges(pipeline)
            # aiohttp refuses a charset inside content_type; text/plain is Prometheus' format.
            return self.text(metrics.render().decode("utf-8"), content_type="text/plain")

    @app.page("/metrics-json")
    class MetricsJson(View):
        async def get(self, request: Request) -> Response:
            update_gauges(pipeline)
            return self.json(metrics_summary(pipeline))

    @app.page("/openapi.json")
    class OpenApi(View):
        async def get(self, request: Request) -> Response:
            return self.json(openapi)

    @app.page(LOCAL_PATH)
    class Local(View):
        async def get(self, request: Request) -> Response:
            return self.json(await local_share(pipeline, request.query.get("kinds", "")))

    @app.page("/attribution")
    class Attribution(View):
        async def get(self, request: Request) -> Response:
            return await guarded(self, lambda: queries.attribution_json(pipeline))

    @app.page("/totals")
    class Totals(View):
        async def get(self, request: Request) -> Response:
            return await guarded(self, lambda: queries.totals_json(pipeline))

    @app.page("/credits")
    class Credits(View):
        async def get(self, request: Request) -> Response:
            async def produce() -> Any:
                models = parse_models(pipeline.models, request.query.get("model"))
                start = parse_day("from", request.query.get("from"))
                end = parse_day("to", request.query.get("to"))
                if start and end and start > end:
                    raise BadRequest(f"from={start} is after to={end}")
                intervals = parse_intervals(request.query)
                return await queries.credits_json(pipeline, models, start, end, intervals)

            return await guarded(self, produce)

    @app.page("/markov")
    class Markov(View):
        async def get(self, request: Request) -> Response:
            async def produce() -> Any:
                refresh = parse_flag("refresh", request.query.get("refresh"))
                return await queries.markov_json(pipeline, refresh)

            return await guarded(self, produce)

    @app.page(VERSION_PATH)
    class LocalVersion(View):
        async def get(self, request: Request) -> Response:
            return self.json(await local_version(pipeline))

    @app.page(ANALYTICS_PATH)
    class LocalAnalytics(View):
        async def get(self, request: Request) -> Response:
            return self.json(await local_analytics(pipeline))

    @app.page("/analytics")
    class Analytics(View):
        async def get(self, request: Request) -> Response:
            headers: dict[str, str] = {}

            async def produce() -> Any:
                scores = parse_flag("customers", request.query.get("customers"))
                fresh = parse_flag("fresh", request.query.get("fresh"))
                compare = parse_positive(
                    "compare_days", request.query.get("compare_days"), 30.0, MAX_COMPARE_DAYS
                )
                try:
                    answer = await queries.analytics_answer(pipeline, scores, compare, fresh)
                except EmptyStream as empty:
                    raise BadRequest(str(empty)) from None
                metrics.publish_analytics(answer.value)
                headers.update(queries.freshness_headers(answer, time.time()))
                return answer.value

            return await guarded(self, produce, headers)

    def local_customer(customer_id: str) -> dict[str, Any] | None:
        value = pipeline.customers.get(customer_id.encode("utf-8"))
        if (
            value is None
            or pipeline.customer_partition(customer_id.encode("utf-8"), value)
            not in pipeline.assigned_partitions()
        ):
            return None  # never seen, or left behind by a partition now owned elsewhere
        return queries.customer_json(pipeline, customer_id, value)

    @app.page(CUSTOMER_PATH + "/{customer_id}")
    class LocalCustomer(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            found = local_customer(customer_id)
            if found is None:
                return error(self, 404, f"no customer {customer_id!r} on this worker")
            return self.json(found)

    @app.page("/customers/{customer_id}")
    class Customer(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            async def produce() -> Any:
                found = local_customer(customer_id) or await find_customer(pipeline, customer_id)
                if found is None:
                    raise NotFound(f"no customer {customer_id!r} in the stream")
                return found

            return await guarded(self, produce)

    async def dashboard_json() -> dict[str, Any]:
        try:
            report: dict[str, Any] | None = (
                await queries.analytics_answer(pipeline, True, 30.0)
            ).value
        except EmptyStream:
            report = None  # nothing processed yet: the page shows its views empty
        return dashboard_data(
            await queries.attribution_json(pipeline),
            report,
            await queries.markov_json(pipeline, False),
            None,  # the stream keeps no paths summary yet (docs/dashboard.md)
            settings.analytics.rfm_window_days,
        )

    @app.page("/dashboard.json")
    class DashboardJson(View):
        async def get(self, request: Request) -> Response:
            return await guarded(self, dashboard_json)

    @app.page("/dashboard")
    class Dashboard(View):
        async def get(self, request: Request) -> Response:
            reason = not_ready_reason()
            if reason:
                return error(self, 503, reason)
            try:
                data = await dashboard_json()
            except FanoutError as failure:
                return error(self, 503, str(failure))
            return self.html(render_dashboard(data, poll_url="/dashboard.json"))
