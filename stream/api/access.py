"""Who may call which route of the worker's HTTP API, and how often (no web framework here).

Routes fall in four classes: probes (``/health``, ``/ready``, ``/openapi.json``) are open;
``/metrics`` is open or needs the token (``api.metrics``); ``/internal/*`` (one worker asking
another for its share) needs the workers' shared secret; everything else, Faust's own pages
and unknown paths included, needs the analysts' bearer token. Deny by default: a route added
later is protected until it is listed here as open.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from crm_attribution.settings.typed import Settings
from stream.broker.launcher import cache_dir_for

OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json"})
# A browser cannot send a bearer header when a person opens a page: /dashboard?token=T sets
# this cookie (HttpOnly, SameSite=Strict) and redirects, and the page's polls carry it.
DASHBOARD_PATHS = frozenset({"/dashboard", "/dashboard.json"})
DASHBOARD_COOKIE = "crm_dashboard"
METRICS_PATH = "/metrics"
INTERNAL_PREFIX = "/internal/"
TOKEN_FILE_NAME = "api-token"


class Access(enum.Enum):
    """What a route asks of its caller."""

    OPEN = "open"
    METRICS = "metrics"
    ANALYST = "analyst token"
    INTERNAL = "workers' secret"


def route_access(path: str) -> Access:
    """The class of the route at ``path``."""
    if path in OPEN_PATHS:
        return Access.OPEN
    if path == METRICS_PATH:
        return Access.METRICS
    if path.startswith(INTERNAL_PREFIX):
        return Access.INTERNAL
    return Access.ANALYST


def token_file(settings: Settings) -> Path:
    """Where the token is kept when ``api.token`` is not set."""
    if settings.api.token_file:
        return Path(settings.api.token_file).expanduser().resolve()
    return cache_dir_for(settings) / TOKEN_FILE_NAME


def configured_token(settings: Settings) -> str:
    """``api.token`` (config file or CRM_API__TOKEN), empty when unset."""
    return settings.api.token.get_secret_value().strip()


def client_token(settings: Settings) -> str | None:
    """The token a client sends: the configured one, else the token file's, else none."""
    token = configured_token(settings)
    if token:
        return token
    try:
        return Path(token_file(settings)).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def client_headers(settings: Settings) -> dict[str, str]:
    """HTTP headers with the bearer token, when the client has one."""
    token = client_token(settings)
    return {"Authorization": f"Bearer {token}"} if token else {}


def server_token(settings: Settings) -> tuple[str, str]:
    """(token, where it comes from) for a worker: configured, or read or created in the file.

    A created token is 32 random bytes (URL-safe base64), written with mode 0600 and linked
    into place only if no file is there yet, so workers starting together on one machine end
    with the same token.
    """
    token = configured_token(settings)
    if token:
        return token, "setting api.token"
    path = token_file(settings)
    existing = _read_token(path)
    if existing:
        return existing, str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(32)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".api-token-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600
            handle.write(fresh + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            if path.stat().st_size:  # another worker won; an empty file was a crash mid-write
                return _read_token(path) or fresh, str(path)
            os.replace(temporary, path)
            return fresh, f"{path} (created)"
    finally:
        Path(temporary).unlink(missing_ok=True)
    return fresh, f"{path} (created)"


def _read_token(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def internal_secret(settings: Settings, token: str) -> str:
    """The workers' shared secret: ``api.internal_secret``, else derived from the token.

    Derived with HMAC so that it is not the token itself: a log or proxy that sees one
    worker-to-worker request learns nothing an analyst could use.
    """
    configured = settings.api.internal_secret.get_secret_value().strip()
    if configured:
        return configured
    return hmac.new(
        token.encode("utf-8"), b"crm-attribution /internal/", hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class Denial:
    """A refused request: HTTP status, the reason (one line), and headers to send."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, bursts up to ``burst``."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: dict[str, _Bucket] = {}

    def wait_seconds(self, client: str) -> float:
        """0 and one request counted if ``client`` may go on; else seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self.buckets.get(client)
        if bucket is None:
            self._make_room(now)
            bucket = self.buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _make_room(self, now: float) -> None:
        # Many addresses must not grow memory without bound: forget the clients whose bucket
        # has refilled (they lose nothing), and if all are busy, the oldest.
        if len(self.buckets) < self.max_clients:
            return
        full = self.burst / self.rate
        for client in [c for c, b in self.buckets.items() if now - b.at >= full]:
            del self.buckets[client]
        while len(self.buckets) >= self.max_clients:
            del self.buckets[next(iter(self.buckets))]


class AccessPolicy:
    """Decides, per request, whether it may go on (``None``) or is refused (a :class:`Denial`)."""

    def __init__(
        self, token: str, secret: str, metrics_open: bool, limiter: RateLimiter | None
    ) -> None:
        self._token = token.encode("utf-8")
        self._secret = secret.encode("utf-8")
        # Not the token itself: the cookie opens the dashboard and nothing else.
        self.dashboard_cookie = hmac.new(
            self._token, b"crm-attribution dashboard", hashlib.sha256
        ).hexdigest()
        self.metrics_open = metrics_open
        self.limiter = limiter

    @classmethod
    def from_settings(cls, settings: Settings, token: str) -> AccessPolicy:
        """The policy of a worker with these settings and this analysts' token."""
        api = settings.api
        limiter = (
            RateLimiter(api.requests_per_minute, api.burst) if api.requests_per_minute else None
        )
        return cls(token, internal_secret(settings, token), api.metrics == "open", limiter)

    def token_matches(self, token: str | None) -> bool:
        """True if ``token`` is the analysts' token (a dashboard link's ``?token=``)."""
        return token is not None and hmac.compare_digest(token.encode("utf-8"), self._token)

    def check(
        self, path: str, authorization: str | None, client: str, cookie: str | None = None
    ) -> Denial | None:
        """Refuse a request without the credential its route needs, or over its client's limit."""
        access = route_access(path)
        if access is Access.OPEN or (access is Access.METRICS and self.metrics_open):
            return None
        if access is Access.INTERNAL:
            if not _matches(authorization, self._secret):
                return _unauthorized(
                    authorization,
                    "/internal/* is for the workers of a group: it needs their shared secret "
                    "(the same api.internal_secret, or the same api.token, on every worker)",
                )
            return None  # a query fans out to every worker: never limit the group itself
        by_cookie = (
            path in DASHBOARD_PATHS
            and cookie is not None
            and hmac.compare_digest(cookie.encode("utf-8"), self.dashboard_cookie.encode("ascii"))
        )
        if not by_cookie and not _matches(authorization, self._token):
            return _unauthorized(
                authorization,
                f"{path} needs the worker's API token: send 'Authorization: Bearer <token>' "
                "(api.token or CRM_API__TOKEN; unset, the worker keeps one in its api.token_file, "
                "which `crm-attribution query` reads)",
            )
        if self.limiter is not None:
            wait = self.limiter.wait_seconds(client)
            if wait > 0:
                retry = max(1, math.ceil(wait))
                return Denial(
                    429,
                    f"too many requests from {client or 'this client'}: at most "
                    f"{self.limiter.rate * 60:g} a minute (api.requests_per_minute); "
                    f"retry in {retry} s",
                    {"Retry-After": str(retry)},
                )
        return None


def _presented(authorization: str | None) -> bytes | None:
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip().encode("utf-8")


def _matches(authorization: str | None, expected: bytes) -> bool:
    presented = _presented(authorization)
    # compare_digest: the time taken says nothing about how much of the token was right.
    return presented is not None and hmac.compare_digest(presented, expected)


def _unauthorized(authorization: str | None, need: str) -> Denial:
    if not authorization:
        reason, code = f"no bearer token: {need}", "invalid_request"
    elif _presented(authorization) is None:
        reason, code = (
            f"the Authorization header is not 'Bearer <token>': {need}",
            "invalid_request",
        )
    else:
        reason, code = f"wrong bearer token: {need}", "invalid_token"
    return Denial(
        401, reason, {"WWW-Authenticate": f'Bearer realm="crm-attribution", error="{code}"'}
    )
