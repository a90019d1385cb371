"""The worker's HTTP API on the real broker: who may call what, how often, and the dashboard.

Every route of ``/openapi.json`` is tried without a credential and with a wrong one; the
description's ``security`` says which routes need one.
"""

from __future__ import annotations

import io
import json
import stat
import urllib.error
import urllib.request
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from crm_attribution.cli import main as cli_main
from tests.integration.stream_harness import API_TOKEN, Worker, get_json, unique_env, wait_until

pytestmark = pytest.mark.kafka


def request(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET that follows no redirect."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def concrete(path: str) -> str:
    return path.replace("{customer_id}", "c000001")


def test_every_route_of_the_description_refuses_a_missing_or_wrong_credential(
    api_worker: Worker,
) -> None:
    worker = api_worker
    status, spec = get_json(f"{worker.url}/openapi.json", token=None)
    assert status == 200
    schemes = spec["components"]["securitySchemes"]
    assert set(schemes) == {"analystToken", "workerSecret"}
    protected = {
        path: item["get"]["security"]
        for path, item in spec["paths"].items()
        if item["get"]["security"]
    }
    assert {"/attribution", "/analytics", "/dashboard", "/internal/local"} <= set(protected)
    for path, item in spec["paths"].items():
        url = worker.url + concrete(path)
        if not item["get"]["security"]:
            status, _, _ = request(url)
            assert status == 200, path
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            status, answer_headers, body = request(url, headers)
            assert status == 401, (path, headers, status)
            assert "Bearer" in answer_headers["WWW-Authenticate"]
            reason = json.loads(body)["error"]
            assert ("token" in reason or "secret" in reason) and len(reason) > 30, reason
        if protected[path] == [{"analystToken": []}]:
            status, _, _ = request(url, {"Authorization": f"Bearer {API_TOKEN}"})
            assert status in (200, 404), (path, status)
        else:  # the analysts' token opens no /internal/* route
            status, _, _ = request(url, {"Authorization": f"Bearer {API_TOKEN}"})
            assert status == 401, path

    # Faust's own pages would show any table entry: gone, or behind the token.
    for path in ("/table/customers/c000001", "/router/", "/graph/", "/stats/", "/"):
        assert request(worker.url + path)[0] in (401, 404), path

    # Numbers an analyst cannot mean are refused, not a server error.
    for raw in ("1e308", "inf", "-inf", "nan", "0", "36526"):
        status, body = get_json(f"{worker.url}/analytics?compare_days={raw}")
        assert status == 400 and "compare_days" in body["error"], (raw, status, body)
    for name in ("fresh", "customers"):
        status, body = get_json(f"{worker.url}/analytics?{name}=maybe")
        assert status == 400 and name in body["error"], (name, status, body)
    status, body = get_json(f"{worker.url}/markov?refresh=maybe")
    assert status == 400 and "refresh" in body["error"], (status, body)

    # The dashboard: behind the token; a link with ?token= sets a cookie for the page only.
    status, headers, page = request(
        f"{worker.url}/dashboard", {"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'id="dashboard-data"' in page and b"/dashboard.json" in page
    status, data = get_json(f"{worker.url}/dashboard.json")
    assert status == 200
    _, attribution = get_json(f"{worker.url}/attribution")
    linear = attribution["models"]["linear"]["channels"]
    assert data["models"]["conversions"]["linear"] == {
        channel: linear.get(channel, {}).get("conversions", 0.0)
        for channel in data["models"]["channels"]
    }
    assert data["models"]["totals"] == attribution["totals"]
    assert data["rfm"] is not None and data["markov"] is not None
    status, headers, _ = request(f"{worker.url}/dashboard?token={API_TOKEN}")
    assert status == 303 and headers["Location"] == "/dashboard"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and API_TOKEN not in cookie
    assert request(f"{worker.url}/dashboard.json", {"Cookie": cookie})[0] == 200
    assert request(f"{worker.url}/attribution", {"Cookie": cookie})[0] == 401
    assert request(f"{worker.url}/dashboard?token=wrong")[0] == 401
    # The fixture stops the worker: exit 0, and the token never in its log.


def test_without_a_token_the_worker_makes_one_that_the_cli_reads(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "secrets" / "api-token"
    env = {
        **unique_env(partitions=1),
        "CRM_API__TOKEN": "",
        "CRM_API__TOKEN_FILE": str(token_file),
        "CRM_API__METRICS": "token",
        # A limit this test's few requests stay under; the burst at its end goes over it.
        "CRM_API__REQUESTS_PER_MINUTE": "60",
        "CRM_API__BURST": "40",
    }
    worker = Worker(kafka_bootstrap, env, tmp_path, "w0").start()
    try:
        wait_until(
            lambda: get_json(f"{worker.url}/ready", token=None)[0] == 200, 180, "ready", [worker]
        )
        token = token_file.read_text().strip()
        assert len(token) >= 40
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert get_json(f"{worker.url}/totals", token=None)[0] == 401
        assert get_json(f"{worker.url}/totals", token=API_TOKEN)[0] == 401
        assert get_json(f"{worker.url}/totals", token=token)[0] == 200
        assert request(f"{worker.url}/metrics")[0] == 401  # api.metrics = "token"
        status, _, body = request(f"{worker.url}/metrics", {"Authorization": f"Bearer {token}"})
        assert status == 200 and b"crm_" in body

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        out = io.StringIO()
        with redirect_stdout(out):
            assert cli_main(["query", "totals", "--format", "json", "--url", worker.url]) == 0
        assert "conversions" in json.loads(out.getvalue())
        out = io.StringIO()
        with redirect_stdout(out):
            assert cli_main(["query", "dashboard", "--url", worker.url]) == 0
        link = out.getvalue().strip()
        assert request(link)[0] == 303
        monkeypatch.setenv("CRM_API__TOKEN_FILE", str(tmp_path / "elsewhere"))
        assert cli_main(["query", "totals", "--url", worker.url]) == 2  # 401, said in one line

        # A client over its limit gets 429 with Retry-After; probes are never limited.
        statuses = [
            request(f"{worker.url}/totals", {"Authorization": f"Bearer {token}"}) for _ in range(45)
        ]
        limited = [s for s in statuses if s[0] == 429]
        assert limited, [s[0] for s in statuses]
        assert int(limited[0][1]["Retry-After"]) >= 1
        assert "requests_per_minute" in json.loads(limited[0][2])["error"]
        assert request(f"{worker.url}/health")[0] == 200
        assert worker.stop() == 0, worker.log_tail()
        log = worker.log_path.read_text(errors="replace")
        assert token not in log and str(token_file) in log
    finally:
        if worker.alive():
            worker.stop()
