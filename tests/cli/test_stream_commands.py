"""The stream-side commands fail with readable messages, without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_attribution.cli import main
from tests.integration.stream_harness import free_port


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_writes_a_valid_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "events.jsonl"
    code, _, err = run(["generate", str(target), "--customers", "50", "--days", "5"], capsys)
    assert code == 0 and "wrote" in err
    records = [json.loads(line) for line in target.read_text().splitlines()]
    kinds = {r["type"] for r in records}
    assert {"touchpoint", "assignment"} <= kinds
    assert len({r["customer_id"] for r in records if "customer_id" in r}) == 50


def test_generate_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["generate", str(tmp_path / "x.jsonl"), "--customers", "0"], capsys)
    assert code == 2 and "--customers" in err and "Traceback" not in err
    code, _, err = run(["generate", str(tmp_path / "x.jsonl"), "--start", "soon"], capsys)
    assert code == 2 and "'soon'" in err


def test_produce_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(["produce", str(tmp_path / "nope.jsonl"), "--bootstrap", "x:1"], capsys)
    assert code == 2 and "does not exist" in err


def test_produce_unreachable_broker(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"type": "touchpoint"}\n')
    port = free_port()
    code, _, err = run(["produce", str(events), "--bootstrap", f"127.0.0.1:{port}"], capsys)
    assert code == 2 and "cannot reach Kafka" in err and "Traceback" not in err


def test_worker_with_an_unusable_rates_file_says_so_before_any_broker(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,valid_from,rate\nUSD,2026-01-01,-1\n")
    monkeypatch.setenv("CRM_BUSINESS__RATES_FILE", str(rates))
    code, _, err = run(["worker", "--bootstrap", f"127.0.0.1:{free_port()}"], capsys)
    assert code == 2 and "line 2: rate must be" in err and "business.rates_file" in err
    assert "cannot reach Kafka" not in err and "Traceback" not in err


def test_query_without_a_worker(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(["query", "totals", "--url", url], capsys)
    assert code == 2 and "no worker answers" in err


def test_query_customer_needs_an_id(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["query", "customer", "--url", "http://127.0.0.1:1"], capsys)
    assert code == 2 and "customer id" in err


def test_invalid_setting_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TOPICS__PARTITIONS", "many")
    code, _, err = run(["query", "totals", "--url", "http://127.0.0.1:1"], capsys)
    assert code == 2 and "topics.partitions" in err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BATCH_EVENTS", "0"),
        ("BATCH_EVENTS", "lots"),
        ("BACKLOG_RECORDS", "0"),
        ("BACKLOG_RECORDS", "-5"),
        ("BACKLOG_RECORDS", "some"),
        ("BATCH_SECONDS", "-1"),
        ("BATCH_SECONDS", "0"),
        ("FULL_GC_SECONDS", "0"),
        ("FULL_GC_SECONDS", "soon"),
        ("FETCH_MAX_KB_PER_PARTITION", "0"),
        ("FETCH_MAX_KB_PER_PARTITION", "1.5"),
        ("FETCH_MAX_KB_PER_PARTITION", "plenty"),
        ("FETCH_MAX_KB_PER_PARTITION", "1000000"),
        ("FETCH_MAX_WAIT_MS", "0"),
        ("FETCH_MAX_WAIT_MS", "soon"),
        ("FETCH_MAX_WAIT_MS", "60000"),
    ],
)
def test_bad_batch_setting_is_named(
    name: str, value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"CRM_WORKER__{name}", value)
    code, _, err = run(["worker", "--bootstrap", "127.0.0.1:1"], capsys)
    assert code == 2 and f"worker.{name.lower()}" in err and "Traceback" not in err


def test_an_unknown_guarantee_is_refused_with_the_choices(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_WORKER__PROCESSING_GUARANTEE", "at_most_once")
    code, _, err = run(["worker", "--bootstrap", "127.0.0.1:1"], capsys)
    assert code == 2 and "worker.processing_guarantee" in err
    assert "exactly_once or at_least_once" in err and "Traceback" not in err


def test_exactly_once_is_the_default() -> None:
    from crm_attribution.settings.typed import load_settings

    assert load_settings(environ={}).worker.processing_guarantee == "exactly_once"


def test_demo_analytics_panel_shows_segments_lift_and_crm_share() -> None:
    """The demo's live customer panel renders a real report's headline numbers."""
    import argparse
    import json

    from rich.console import Console

    from attribution.events import InvalidRecord, parse_event
    from crm_attribution.commands.demo import analytics_table
    from crm_attribution.commands.report import build_report
    from crm_attribution.generator import GeneratorConfig, generate
    from crm_attribution.settings.typed import load_settings

    events = []
    for line in generate(GeneratorConfig(customers=300, days=30, seed=2)):
        try:
            events.append(parse_event(json.loads(line)))
        except InvalidRecord:
            continue
    settings = load_settings(environ={})
    args = argparse.Namespace(lookback_days=None, compare_days=30.0, customers=False)
    report = build_report(events, settings, ["last_touch", "linear"], args, None)
    console = Console(record=True, width=120)
    console.print(analytics_table(report))
    text = console.export_text()
    top = max(report["rfm"]["segments"], key=report["rfm"]["segments"].get)
    assert f"RFM {top}" in text
    assert "holdout incremental revenue" in text
    assert "CRM revenue share, linear" in text
    assert f"{report['revenue_share']['crm_share']['linear']:.1%}" in text


@pytest.mark.parametrize("raw", ["soon", "-3", "0", "nan"])
def test_analytics_compare_days_must_be_a_positive_number(raw: str) -> None:
    from stream.api.params import BadRequest, parse_positive

    with pytest.raises(BadRequest, match="compare_days"):
        parse_positive("compare_days", raw, 30.0)
    assert parse_positive("compare_days", None, 30.0) == 30.0
    assert parse_positive("compare_days", "7.5", 30.0) == 7.5


@pytest.mark.parametrize("raw", ["maybe", "2", "yes please"])
def test_a_yes_no_query_parameter_refuses_anything_else(raw: str) -> None:
    """``fresh=no`` used to ask for a rebuild (anything but 0 and false meant yes)."""
    from stream.api.params import BadRequest, parse_flag

    with pytest.raises(BadRequest, match="fresh"):
        parse_flag("fresh", raw)
    assert [parse_flag("fresh", v) for v in (None, "", "0", "false", "No")] == [False] * 5
    assert [parse_flag("fresh", v) for v in ("1", "true", "YES")] == [True] * 3


def test_demo_deletes_only_its_own_run_topics() -> None:
    from crm_attribution.commands.demo import run_topics

    names = [
        "demo-100-touchpoints",
        "demo-100-attributions",
        "crm-demo-100-customers-changelog",
        "crm-demo-100-ticks",
        "crm-demo-100-__assignor-__leader",
        "demo-1000-touchpoints",  # another run whose id starts alike
        "crm-demo-101-ticks",
        "touchpoints",
        "__consumer_offsets",
    ]
    assert run_topics(names, "100") == [
        "crm-demo-100-__assignor-__leader",
        "crm-demo-100-customers-changelog",
        "crm-demo-100-ticks",
        "demo-100-attributions",
        "demo-100-touchpoints",
    ]


def test_records_kafka_never_acknowledged_fail_produce_with_the_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once, records refused while a new topic settled were reported as sent."""
    import stream.kafka.admin
    import stream.kafka.producer
    from tests.stream.kafka.test_producer import FlakyKafka

    monkeypatch.setattr(stream.kafka.admin, "ensure_topics", lambda *args, **kwargs: None)
    monkeypatch.setattr(stream.kafka.producer, "KafkaProducer", lambda **kw: FlakyKafka(3, **kw))
    events = tmp_path / "events.jsonl"
    touch = {"type": "touchpoint", "customer_id": "c1", "channel": "email"}
    events.write_text(
        "".join(
            json.dumps({**touch, "event_id": f"e{i}", "ts": "2026-01-01T00:00:00Z"}) + "\n"
            for i in range(9)
        )
    )
    code, _, err = run(["produce", str(events), "--bootstrap", "127.0.0.1:1"], capsys)
    assert code == 2 and "did not acknowledge 3 record" in err and "Traceback" not in err


def answer_queries(
    monkeypatch: pytest.MonkeyPatch, answer: object
) -> list[tuple[str, dict[str, str] | None]]:
    """Make ``crm-attribution query`` get ``answer`` for every request; the requests, in order."""
    import crm_attribution.commands.query as query

    asked: list[tuple[str, dict[str, str] | None]] = []

    def fetch_from(
        url: str,
        path: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> object:
        asked.append((path, params))
        return answer

    monkeypatch.setattr(query, "fetch_from", fetch_from)
    return asked


def test_query_credits_asks_for_intervals_and_shows_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = {
        "from": None,
        "to": None,
        "models": {"linear": {"channels": {"email": {
            "conversions": 3.0, "value": 30.0,
            "ci": {"conversions": [2.0, 4.0], "value": [21.5, 38.25]},
        }}}},
        "confidence": {"level": 0.9, "resamples": 50, "seed": 3, "customers": 12,
                       "method": "percentile bootstrap over customers"},
    }  # fmt: skip
    asked = answer_queries(monkeypatch, answer)
    code, out, _ = run(
        ["query", "credits", "--ci", "0.9", "--resamples", "50", "--seed", "3", "--url", "x"],
        capsys,
    )
    assert code == 0
    assert asked == [("/credits", {"ci": "0.9", "resamples": "50", "seed": "3"})]
    assert "50 resamples" in out and "[21.50, 38.25]" in out


def test_query_analytics_asks_fresh_only_when_told(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = answer_queries(monkeypatch, {"as_of": "2026-01-01T00:00:00Z"})
    for extra in ([], ["--fresh"], ["--fresh", "--customers"]):
        code, _, _ = run(["query", "analytics", *extra, "--format", "json", "--url", "x"], capsys)
        assert code == 0
    assert asked == [
        ("/analytics", None),
        ("/analytics", {"fresh": "1"}),
        ("/analytics", {"customers": "1", "fresh": "1"}),
    ]
