"""OpenAPI description of the worker's HTTP API."""

from __future__ import annotations

from typing import Any

_JSON = {"application/json": {"schema": {"type": "object"}}}
_ERROR = {"description": "invalid parameter", "content": _JSON}
_BUSY = {"description": "rebalancing or recovering; retry", "content": _JSON}


def _get(summary: str, parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters or [],
            "responses": {
                "200": {"description": "OK", "content": _JSON},
                "400": _ERROR,
                "503": _BUSY,
            },
        }
    }


def _query(name: str, description: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if fmt:
        schema["format"] = fmt
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "crm-attribution worker API", "version": "0.1.0"},
    "paths": {
        "/attribution": _get(
            "Everything processed, as the JSON object of `crm-attribution attribute --events`"
        ),
        "/totals": _get(
            "Conversions, value, null paths, unattributed conversions, invalid records"
        ),
        "/credits": _get(
            "Credits by model and channel, all time or for a range of purchase days (UTC)",
            [
                _query("model", "comma-separated models, or all"),
                _query("from", "first day, YYYY-MM-DD", "date"),
                _query("to", "last day, YYYY-MM-DD", "date"),
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
        "/analytics": _get(
            "Customer analytics (RFM, CLV, revenue share, assisted, holdout, campaigns), "
            "as the JSON object of `crm-attribution report --format json`",
            [
                _query("customers", "1 to include every customer's RFM scores"),
                _query("compare_days", "RFM movement from this many days before (default 30)"),
            ],
        ),
        "/markov": _get(
            "Markov removal effects, conversion probability and transition matrix",
            [_query("refresh", "1 to re-solve now")],
        ),
        "/customers/{customer_id}": {
            "get": {
                "summary": "One customer's retained events, journeys and attributions",
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
                },
            }
        },
        "/health": _get("Liveness"),
        "/ready": _get("Readiness: recovered and not rebalancing"),
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OK"}}}
        },
    },
}
