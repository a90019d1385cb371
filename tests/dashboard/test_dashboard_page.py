"""The dashboard in a real browser: it loads clean, shows the JSON's numbers, and goes live."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crm_attribution.cli import main
from crm_attribution.generator import GeneratorConfig, generate
from tests.dashboard.conftest import Page
from tests.dashboard.expected import (
    markov_cells,
    mismatches,
    models_cells,
    money,
    paths_cells,
    report_cells,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "crm_attribution" / "examples"
VIEWS = (
    "view-models",
    "view-paths",
    "view-markov",
    "view-rfm",
    "view-clv",
    "view-holdout",
    "view-campaigns",
    "view-share",
)
# Generous: a page draws in well under a second; this only bounds a broken one.
WAIT_MS = 60_000


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def library_truth(log: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Markov result and the paths summary of the log, straight from the library."""
    from attribution.engine import attribute_events
    from attribution.events import Purchase, Touchpoint
    from attribution.io.events_reader import read_events
    from attribution.journeys import JourneyRules, build_journeys, journeys_to_table
    from attribution.models.options import ModelOptions
    from attribution.paths_summary import paths_summary

    events = read_events(log).events
    rules = JourneyRules.from_days(30.0, 30.0, 1.0)
    result = attribute_events(events, rules, ["markov"], ModelOptions()).results["markov"]
    markov = {
        "channels": result.to_json()["channels"],
        "transition_matrix": result.extras["transition_matrix"],
    }
    journeys, _ = build_journeys([e for e in events if isinstance(e, Touchpoint | Purchase)], rules)
    return markov, paths_summary(journeys_to_table(journeys))


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard") / "events.jsonl"
    config = GeneratorConfig(customers=300, days=75)
    path.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")
    return path


def open_page(page: Page, url: str) -> None:
    # Playwright's own 30 s navigation limit failed this on a machine at load 45: WAIT_MS too.
    page.page.goto(url, timeout=WAIT_MS)
    page.page.wait_for_selector("body[data-generated]", state="attached", timeout=WAIT_MS)


@pytest.mark.slow
def test_report_dashboard_shows_the_json_numbers(
    capsys: pytest.CaptureFixture[str], log: Path, tmp_path: Path, page: Page
) -> None:
    html = tmp_path / "report.html"
    assert main(["report", str(log), "--format", "html", "-o", str(html)]) == 0
    capsys.readouterr()
    report = cli_json(capsys, "report", str(log), "--customers")
    attribution = cli_json(capsys, "attribute", str(log), "--events")
    markov, paths = library_truth(log)
    # Offline: the page may load nothing but itself.
    page.page.route("http*://**", lambda route: route.abort())
    open_page(page, html.as_uri())
    assert page.errors == []
    for view in VIEWS:
        assert page.page.locator(f"#{view} .chart .main-svg").count() > 0, view
    shown = page.cells()
    expected = {
        **models_cells(attribution),
        **paths_cells(paths),
        **markov_cells(markov),
        **report_cells(report),
    }
    assert len(expected) > 500
    assert mismatches(shown, expected) == []


@pytest.mark.slow
def test_attribute_dashboard_of_a_path_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, page: Page
) -> None:
    paths_file = EXAMPLES / "paths.csv"
    html = tmp_path / "paths.html"
    assert main(["attribute", str(paths_file), "--format", "html", "-o", str(html)]) == 0
    capsys.readouterr()
    attribution = cli_json(capsys, "attribute", str(paths_file))
    open_page(page, html.as_uri())
    assert page.errors == []
    shown = page.cells()
    assert mismatches(shown, models_cells(attribution)) == []
    effects = {
        f"markov-effects|{ch}|removal_effect": f"{c['removal_effect']:.4f}"
        for ch, c in attribution["models"]["markov"]["channels"].items()
    }
    assert mismatches(shown, effects) == []
    assert page.page.locator("#view-paths table[data-table=paths-top]").count() == 1
    assert "path files do not have them" in page.page.inner_text("#view-paths")
    assert "No customer analytics" in page.page.inner_text("#view-rfm")


@pytest.mark.slow
def test_attribute_dashboard_shows_the_intervals(
    capsys: pytest.CaptureFixture[str], log: Path, tmp_path: Path, page: Page
) -> None:
    html = tmp_path / "ci.html"
    argv = ["attribute", str(log), "--events", "--models", "last_touch,linear,markov",
            "--ci", "0.95", "--resamples", "20"]  # fmt: skip
    assert main([*argv, "--format", "html", "-o", str(html)]) == 0
    capsys.readouterr()
    attribution = cli_json(capsys, *argv)
    open_page(page, html.as_uri())
    assert page.errors == []
    expected = {}
    for model, result in attribution["models"].items():
        for ch, credit in result["channels"].items():
            for kind in ("value", "conversions"):
                low, high = credit["ci"][kind]
                expected[f"models-{kind}|{ch}|{model}"] = (
                    f"{money(credit[kind])} ({money(low)} to {money(high)})"
                )
    assert mismatches(page.cells(), expected) == []
    bars = page.page.evaluate(
        "() => document.getElementById('chart-models-value').data.map("
        "(t) => [t.name, t.error_y.array, t.error_y.arrayminus])"
    )
    channels = sorted({ch for m in attribution["models"].values() for ch in m["channels"]})
    for model, above, below in bars:
        credits = attribution["models"][model]["channels"]
        for ch, up, down in zip(channels, above, below, strict=True):
            low, high = credits[ch]["ci"]["value"]
            assert up == pytest.approx(high - credits[ch]["value"])
            assert down == pytest.approx(credits[ch]["value"] - low)
    assert "95% interval" in page.page.inner_text("#view-models")


def test_html_needs_an_output_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", str(EXAMPLES / "events.jsonl"), "--format", "html"])
    assert code == 2
    assert "-o FILE" in capsys.readouterr().err


class LiveSource:
    """Serves the live page and its data, recomputed from the event log when it changes."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.requests = 0
        self._lock = threading.Lock()
        self._cached: tuple[tuple[float, int], bytes] | None = None

    def data(self) -> bytes:
        from attribution.io.events_reader import read_events
        from attribution.report_build import ReportParameters, build_report
        from crm_attribution.dashboard.batch import report_data

        with self._lock:
            stat = self.log.stat()
            key = (stat.st_mtime, stat.st_size)
            if self._cached is None or self._cached[0] != key:
                built = build_report(read_events(self.log).events, ReportParameters(), None, True)
                body = json.dumps(report_data(built, 365.0)).encode("utf-8")
                self._cached = (key, body)
            return self._cached[1]

    def page(self) -> bytes:
        from crm_attribution.dashboard import render_dashboard

        initial = json.loads(self.data())
        return render_dashboard(initial, poll_url="/data", poll_seconds=0.5).encode("utf-8")


@pytest.fixture
def live_server(log: Path, tmp_path: Path) -> Iterator[tuple[str, LiveSource, Path]]:
    copy = tmp_path / "live.jsonl"
    copy.write_bytes(log.read_bytes())
    source = LiveSource(copy)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            source.requests += 1
            if self.path == "/":
                body, kind = source.page(), "text/html; charset=utf-8"
            elif self.path == "/data":
                body, kind = source.data(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", source, copy
    finally:
        server.shutdown()
        server.server_close()


NEW_EVENTS = [
    {
        "type": "touchpoint",
        "event_id": "t-live-1",
        "customer_id": "c-live",
        "channel": "email",
        "campaign": "email-01",
        "interaction": "click",
        "ts": "{day}T10:00:00Z",
    },
    {
        "type": "purchase",
        "event_id": "p-live-1",
        "customer_id": "c-live",
        "order_id": "o-live-1",
        "amount": 12345.67,
        "currency": "EUR",
        "ts": "{day}T11:00:00Z",
    },
]


@pytest.mark.slow
def test_a_live_page_follows_new_events(
    live_server: tuple[str, LiveSource, Path], page: Page
) -> None:
    url, source, log = live_server
    open_page(page, url + "/")
    before = json.loads(source.data())
    shown = page.cells()
    total = before["share"]["total_revenue"]
    assert shown["share|all time|revenue"] == f"{total:,.2f}"
    as_of = before["as_of"][:10]
    with log.open("a", encoding="utf-8") as handle:
        for event in NEW_EVENTS:
            line = json.dumps(event).replace("{day}", as_of)
            handle.write(line + "\n")
    after = json.loads(source.data())
    assert after["share"]["total_revenue"] == pytest.approx(total + 12345.67)
    expected = f"{after['share']['total_revenue']:,.2f}"
    page.page.wait_for_function(
        "(want) => document.querySelector('td[data-key=\"all time|revenue\"]')"
        ".textContent === want",
        arg=expected,
        timeout=WAIT_MS,
    )
    shown = page.cells()
    assert shown["share|all time|revenue"] == expected
    email = after["models"]["value"]["last_touch"]["email"]
    assert shown["models-value|email|last_touch"] == f"{email:,.2f}"
    assert page.page.inner_text("#live").startswith("live")
    assert page.errors == []
