"""The HTTP middleware that puts :class:`~stream.api.access.AccessPolicy` before every route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from stream.api.access import DASHBOARD_COOKIE, AccessPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("crm_attribution.stream.api")


def access_middleware(
    policy: AccessPolicy,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: refused requests get their status and reason as JSON."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/dashboard" and "token" in request.query:
            return _dashboard_login(policy, request.query.get("token"))
        denial = policy.check(
            request.path,
            request.headers.get("Authorization"),
            request.remote or "",
            request.cookies.get(DASHBOARD_COOKIE),
        )
        if denial is not None:
            return web.json_response(
                {"error": denial.reason}, status=denial.status, headers=denial.headers
            )
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            # A bug must not leak a traceback to the caller; the log keeps it.
            log.exception("%s %s failed", request.method, request.path)
            return web.json_response(
                {"error": "internal error; the worker's log has the details"}, status=500
            )

    return guard


def _dashboard_login(policy: AccessPolicy, token: str | None) -> web.StreamResponse:
    """``/dashboard?token=T``: set the dashboard cookie and drop the token from the address."""
    if not policy.token_matches(token):
        return web.json_response(
            {"error": "wrong token in the dashboard link: use the worker's API token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="crm-attribution", error="invalid_token"'},
        )
    response = web.Response(status=303, headers={"Location": "/dashboard"})
    response.set_cookie(
        DASHBOARD_COOKIE, policy.dashboard_cookie, httponly=True, samesite="Strict", path="/"
    )
    return response
