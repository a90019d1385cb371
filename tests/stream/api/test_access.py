"""Who may call which route, how often, and where a worker's token comes from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crm_attribution.settings.typed import Settings, load_settings
from stream.api.access import (
    Access,
    AccessPolicy,
    RateLimiter,
    client_headers,
    internal_secret,
    route_access,
    server_token,
)
from stream.api.openapi import openapi_description


def settings_with(**env: str) -> Settings:
    return load_settings(environ={f"CRM_API__{k.upper()}": v for k, v in env.items()})


def test_routes_are_protected_unless_listed_as_open() -> None:
    assert route_access("/health") is Access.OPEN
    assert route_access("/ready") is Access.OPEN
    assert route_access("/openapi.json") is Access.OPEN
    assert route_access("/metrics") is Access.METRICS
    assert route_access("/internal/local") is Access.INTERNAL
    for path in ("/attribution", "/dashboard", "/table/customers/x", "/", "/health/", "/new"):
        assert route_access(path) is Access.ANALYST, path


def test_the_description_says_which_routes_need_which_credential() -> None:
    spec = openapi_description(metrics_open=True)
    security = {path: item["get"]["security"] for path, item in spec["paths"].items()}
    assert security["/health"] == [] and security["/metrics"] == []
    assert security["/attribution"] == [{"analystToken": []}]
    assert security["/internal/analytics"] == [{"workerSecret": []}]
    for path, item in spec["paths"].items():
        assert ("401" in item["get"]["responses"]) == bool(security[path]), path
    closed = openapi_description(metrics_open=False)
    assert closed["paths"]["/metrics"]["get"]["security"] == [{"analystToken": []}]


def test_the_policy_wants_the_right_credential_on_each_route() -> None:
    policy = AccessPolicy("tok", "sec", metrics_open=True, limiter=None)
    assert policy.check("/health", None, "a") is None
    assert policy.check("/metrics", None, "a") is None
    assert policy.check("/attribution", "Bearer tok", "a") is None
    assert policy.check("/attribution", "bearer  tok ", "a") is None
    for header, words in ((None, "no bearer token"), ("Bearer nope", "wrong"), ("tok", "not")):
        denial = policy.check("/attribution", header, "a")
        assert denial is not None and denial.status == 401 and words in denial.reason
        assert "WWW-Authenticate" in denial.headers
    assert policy.check("/internal/local", "Bearer sec", "a") is None
    denial = policy.check("/internal/local", "Bearer tok", "a")
    assert denial is not None and "secret" in denial.reason
    closed = AccessPolicy("tok", "sec", metrics_open=False, limiter=None)
    assert closed.check("/metrics", None, "a") is not None


def test_the_dashboard_cookie_opens_the_dashboard_only() -> None:
    policy = AccessPolicy("tok", "sec", metrics_open=True, limiter=None)
    cookie = policy.dashboard_cookie
    assert "tok" not in cookie
    assert policy.check("/dashboard.json", None, "a", cookie) is None
    assert policy.check("/dashboard", None, "a", cookie) is None
    assert policy.check("/attribution", None, "a", cookie) is not None
    assert policy.check("/dashboard", None, "a", "forged") is not None
    assert policy.token_matches("tok") and not policy.token_matches("to")


def test_a_client_over_its_limit_waits_and_others_do_not() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.wait_seconds("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_seconds("a") == pytest.approx(1.0)
    assert limiter.wait_seconds("b") == 0.0
    now[0] = 2.0
    assert limiter.wait_seconds("a") == 0.0  # one request a second refills
    policy = AccessPolicy("tok", "sec", True, RateLimiter(60, 1, clock=lambda: now[0]))
    assert policy.check("/totals", "Bearer tok", "c") is None
    denial = policy.check("/totals", "Bearer tok", "c")
    assert denial is not None and denial.status == 429 and denial.headers["Retry-After"] == "1"
    assert policy.check("/internal/local", "Bearer sec", "c") is None  # the group: no limit
    assert RateLimiter(0, 1).wait_seconds("x") == 0.0  # 0: no limit


def test_the_limiter_forgets_clients_rather_than_grow_without_bound() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0], max_clients=100)
    for i in range(1000):
        now[0] += 0.001
        limiter.wait_seconds(f"10.0.{i // 250}.{i % 250}")
    assert len(limiter.buckets) <= 100


def test_a_worker_without_a_token_makes_one_file_that_every_worker_and_client_shares(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dir" / "api-token"
    settings = settings_with(token_file=str(path))
    token, source = server_token(settings)
    assert len(token) >= 40 and "created" in source and token not in source
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_token(settings) == (token, str(path))  # the next worker reads it
    assert client_headers(settings) == {"Authorization": f"Bearer {token}"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["api-token"]
    path.write_text("")  # a crash while writing: made again
    again, _ = server_token(settings)
    assert again and again != token and path.read_text().strip() == again


def test_a_configured_token_wins_and_no_file_is_written(tmp_path: Path) -> None:
    path = tmp_path / "api-token"
    settings = settings_with(token=" s3cret ", token_file=str(path))
    assert server_token(settings) == ("s3cret", "setting api.token")
    assert not path.exists()
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)


def test_the_workers_secret_is_configured_or_derived_never_the_token() -> None:
    derived = internal_secret(settings_with(), "tok")
    assert derived != "tok" and derived == internal_secret(settings_with(), "tok")
    assert derived != internal_secret(settings_with(), "other")
    assert internal_secret(settings_with(internal_secret="shared"), "tok") == "shared"


def test_a_client_without_any_token_sends_no_header(tmp_path: Path) -> None:
    assert client_headers(settings_with(token_file=str(tmp_path / "none"))) == {}
