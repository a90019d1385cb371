"""OpenAPI description of the worker's HTTP API, with which credential each route needs."""

from __future__ import annotations

from typing import Any

from stream.api.access import Access, route_access

_JSON = {"application/json": {"schema": {"type": "object"}}}
_ERROR = {"description": "invalid parameter", "content": _JSON}
_BUSY = {"description": "rebalancing or recovering; retry", "content": _JSON}
_UNAUTHORIZED = {
    "description": "no credential, or a wrong one (the reason says which)",
    "content": _JSON,
}
_LIMITED = {
    "description": "over the client's request limit; retry after Retry-After",
    "content": _JSON,
}
# Security requirement objects: [] is open; the schemes are under components below.
_NONE: list[dict[str, list[str]]] = []
_TOKEN: list[dict[str, list[str]]] = [{"analystToken": []}]
_SECRET: list[dict[str, list[str]]] = [{"workerSecret": []}]


def _get(
    summary: str,
    parameters: list[dict[str, Any]] | None = None,
    content: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters or [],
            "responses": {
                "200": {"description": "OK", "content": content or _JSON},
                "400": _ERROR,
                "503": _BUSY,
            },
        }
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _with_headers(item: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """``item`` whose 200 response describes ``headers`` (name -> description)."""
    ok = item["get"]["responses"]["200"]
    ok["headers"] = {
        name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
    }
    return item


# How fresh an /analytics answer is (stream/versioned_cache.py, the rebuild budget).
_FRESHNESS = {
    "X-Data-Version": "an opaque tag of the group's data version the report was built from",
    "X-Built-At": "when its build read the data (ISO 8601, UTC): no later change is in it",
    "Age": "seconds since X-Built-At",
    "X-Newer-Data": (
        "true: a worker's data changed since X-Data-Version and the rebuild budget "
        "(analytics.rebuild_cpu_share) defers the rebuild, so this is the kept report; "
        "false: the report is exact for the data now"
    ),
}


def _customer(summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [
                {
                    "name": "customer_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {"description": "OK", "content": _JSON},
                "404": {"description": "unknown customer", "content": _JSON},
                "503": _BUSY,
            },
        }
    }


_PATHS: dict[str, Any] = {
    "/attribution": _get(
        "Everything processed, as the JSON object of `crm-attribution attribute --events`"
    ),
    "/totals": _get("Conversions, value, null paths, unattributed conversions, invalid records"),
    "/credits": _get(
        "Credits by model and channel, all time or for a range of purchase days (UTC)",
        [
            _query("model", "comma-separated models, or all"),
            _query("from", "first day, YYYY-MM-DD", {"type": "string", "format": "date"}),
            _query("to", "last day, YYYY-MM-DD", {"type": "string", "format": "date"}),
            _query(
                "ci",
                "a level such as 0.95: all-time credits with percentile bootstrap intervals "
                "over customers, as `attribute --events --ci` (needs "
                "attribution.credit_intervals = true)",
            ),
            _query("resamples", "bootstrap resamples with ci (default 200, 2 to 10,000)"),
            _query("seed", "bootstrap seed with ci (default 0)"),
        ],
    ),
    "/analytics": _with_headers(
        _get(
            "Customer analytics (RFM, CLV, revenue share, assisted, holdout, campaigns), "
            "as the JSON object of `crm-attribution report --format json`. Kept while no "
            "worker's data changes; while it changes, rebuilt at most within "
            "analytics.rebuild_cpu_share of the worker's time, the kept report served "
            "meanwhile (headers: how fresh it is)",
            [
                _query("customers", "1 to include every customer's RFM scores"),
                _query(
                    "compare_days",
                    "RFM movement from this many days before (default 30)",
                    {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 36525},
                ),
                _query(
                    "fresh",
                    "1 to wait for the report of the data now (a rebuild if the data changed, "
                    "whatever the rebuild budget)",
                ),
            ],
        ),
        _FRESHNESS,
    ),
    "/markov": _get(
        "Markov removal effects, conversion probability and transition matrix",
        [_query("refresh", "1 to re-solve now")],
    ),
    "/customers/{customer_id}": _customer(
        "One customer's retained events, journeys and attributions"
    ),
    "/dashboard": _get(
        "The live dashboard page (HTML; a browser opens /dashboard?token=T once, which sets a "
        "cookie for the page and its polls)",
        content={"text/html": {"schema": {"type": "string"}}},
    ),
    "/dashboard.json": _get("The data the dashboard draws, refreshed by the page"),
    "/metrics-json": _get("A few worker metrics as JSON"),
    "/health": _get("Liveness"),
    "/ready": _get("Readiness: recovered, not rebalancing, and able to process"),
    "/openapi.json": _get("This description"),
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/internal/local": _get(
        "This worker's share of the aggregates (for the other workers of the group)",
        [_query("kinds", "comma-separated aggregate kinds")],
    ),
    "/internal/analytics": _get(
        "This worker's customers' analytics parts (for the other workers of the group)"
    ),
    "/internal/version": _get(
        "The version of this worker's data: /analytics answers from its cache while no "
        "worker's version changes (for the other workers of the group)"
    ),
    "/internal/customers/{customer_id}": _customer(
        "One customer as held by this worker (for the other workers of the group)"
    ),
}


def openapi_description(metrics_open: bool = True) -> dict[str, Any]:
    """The description; ``metrics_open``: whether /metrics is served without the token."""
    paths: dict[str, Any] = {}
    for path, item in _PATHS.items():
        access = route_access(path)
        security = {
            Access.OPEN: _NONE,
            Access.METRICS: _NONE if metrics_open else _TOKEN,
            Access.ANALYST: _TOKEN,
            Access.INTERNAL: _SECRET,
        }[access]
        operation = dict(item["get"])
        responses = dict(operation["responses"])
        if security:
            responses["401"] = _UNAUTHORIZED
        if security == _TOKEN:
            responses["429"] = _LIMITED
        operation["responses"] = responses
        operation["security"] = security
        paths[path] = {"get": operation}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "crm-attribution worker API",
            "version": "0.1.0",
            "description": (
                "Routes whose `security` names analystToken need `Authorization: Bearer "
                "<api.token>`; workerSecret routes need the workers' shared secret; routes with "
                "an empty `security` are open. A missing or wrong credential gets 401 with the "
                "reason; a client over api.requests_per_minute gets 429."
            ),
        },
        "components": {
            "securitySchemes": {
                "analystToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "api.token (CRM_API__TOKEN), or the worker's api.token_file",
                },
                "workerSecret": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "api.internal_secret, or derived from api.token",
                },
            }
        },
        "security": _TOKEN,
        "paths": paths,
    }
