"""The PostgreSQL sink against a real PostgreSQL server and a real Kafka broker."""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crm_attribution.cli import main
from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import KafkaSettings
from stream.sinks.postgres import PostgresSink, connect, prepare, replace_snapshot
from tests.stream.sinks.conftest import query

ROOT = Path(__file__).resolve().parents[3]
ADDITIVE = ["first_touch", "last_touch", "linear", "position_based", "time_decay", "shapley"]
MODELS = [*ADDITIVE, "markov"]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sink") / "events.jsonl"
    config = GeneratorConfig(customers=200, days=60)
    path.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def batch(log: Path) -> dict[str, Any]:
    """The batch engine's channel credits of the log (what the sink's rows must add up to)."""
    from attribution.engine import attribute_events
    from attribution.io.events_reader import read_events
    from attribution.journeys import JourneyRules
    from attribution.models.options import ModelOptions

    events = read_events(log).events
    rules = JourneyRules.from_days(30.0, 30.0, 1.0)
    return attribute_events(events, rules, MODELS, ModelOptions()).to_json()


@pytest.fixture(scope="module")
def records(log: Path, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a worker writes to the attributions topic for the log, by its own code."""
    from attribution.engine import attribute_events
    from attribution.events import Purchase, Touchpoint
    from attribution.io.events_reader import read_events
    from attribution.journeys import ConvertedJourney, JourneyRules, build_journeys
    from attribution.models.options import ModelOptions
    from stream.processing.contributions import contributions
    from stream.processing.crediting import attribution_records

    events = read_events(log).events
    rules = JourneyRules.from_days(30.0, 30.0, 1.0)
    journeys, _ = build_journeys([e for e in events if isinstance(e, Touchpoint | Purchase)], rules)
    converted = [j for j in journeys if isinstance(j, ConvertedJourney) and not j.unattributed]
    changes = [(+1, j) for j in converted]
    options = ModelOptions()
    markov = attribute_events(events, rules, ["markov"], options).results["markov"].extras
    effects = {
        "removal_effects": markov["removal_effects"],
        "removal_effects_value": markov["removal_effects_value"],
    }
    out = []
    for (sign, journey), delta in zip(
        changes, contributions(changes, MODELS, options), strict=True
    ):
        out += attribution_records(sign, journey, delta, MODELS, effects)
    return out


def late_order(path: list[str], value: float, retracted: bool) -> dict[str, Any]:
    """An order outside the log whose journey a late event changes (linear credit)."""
    share = 1.0 / len(path)
    return {
        "order_id": "o-late",
        "customer_id": "c-late",
        "purchase_event_id": "p-late",
        "ts": 1_767_300_000_000,
        "value": value,
        "path": path,
        "retracted": retracted,
        "model": "linear",
        "credits": {ch: {"conversions": share, "value": value * share} for ch in path},
    }


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"crm-sink-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


def produce(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for record in records:
        producer.send(topic, key=record["customer_id"].encode(), value=json.dumps(record).encode())
    producer.flush()
    producer.close()


def sums(dsn: str, table: str = "attributions") -> dict[tuple[str, str], tuple[float, float]]:
    rows = query(
        dsn, f"SELECT model, channel, sum(conversions), sum(value) FROM {table} GROUP BY 1, 2"
    )
    return {(m, c): (conv, value) for m, c, conv, value in rows}


def run_sink(dsn: str, bootstrap: str, topic: str) -> int:
    sink = PostgresSink(dsn, bootstrap, topic, KafkaSettings())
    try:
        sink.start()
        return sink.catch_up()
    finally:
        sink.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_rows_match_the_batch_and_survive_restarts_and_redelivery(
    kafka_bootstrap: str,
    topic: str,
    postgres_dsn: str,
    records: list[dict[str, Any]],
    batch: dict[str, Any],
) -> None:
    late = [
        late_order(["email", "sms"], 100.0, retracted=False),
        late_order(["email", "sms"], 100.0, retracted=True),  # a late touch changes it...
        late_order(["push", "email", "sms"], 120.0, retracted=False),  # ...into this
    ]
    produce(kafka_bootstrap, topic, records + late)
    assert run_sink(postgres_dsn, kafka_bootstrap, topic) == len(records) + len(late)

    got = sums(postgres_dsn)
    for model in ADDITIVE:
        for channel, credit in batch["models"][model]["channels"].items():
            conv, value = got.get((model, channel), (0.0, 0.0))
            if model == "linear" and channel in ("push", "email", "sms"):
                conv -= 1 / 3
                value -= 40.0
            assert math.isclose(conv, credit["conversions"], abs_tol=1e-6), (model, channel)
            assert math.isclose(value, credit["value"], rel_tol=1e-9, abs_tol=1e-6)
    orders = query(postgres_dsn, "SELECT count(DISTINCT purchase_event_id) FROM attributions")
    assert orders[0][0] == len({r["purchase_event_id"] for r in records}) + 1
    late_rows = query(
        postgres_dsn,
        "SELECT channel, value, path FROM attributions WHERE order_id = 'o-late' ORDER BY 1",
    )
    assert late_rows == [
        ("email", 40.0, "push > email > sms"),
        ("push", 40.0, "push > email > sms"),
        ("sms", 40.0, "push > email > sms"),
    ]
    daily = sums(postgres_dsn, "credits_daily")
    assert daily.keys() == got.keys()
    assert all(math.isclose(daily[k][1], got[k][1], abs_tol=1e-6) for k in got)

    # A restart reads from the stored offsets: nothing applied twice.
    assert run_sink(postgres_dsn, kafka_bootstrap, topic) == 0
    assert sums(postgres_dsn) == got
    # Redelivered records (at-least-once upstream) and a stale retraction change nothing.
    stale = late_order(["email", "sms"], 100.0, retracted=True)
    produce(kafka_bootstrap, topic, records[:40] + [stale])
    assert run_sink(postgres_dsn, kafka_bootstrap, topic) == 41
    after = sums(postgres_dsn)
    assert after.keys() == got.keys()
    assert all(math.isclose(after[k][1], got[k][1], abs_tol=1e-6) for k in got)


@pytest.mark.kafka
def test_records_of_an_aborted_transaction_never_reach_the_tables(
    kafka_bootstrap: str, topic: str, postgres_dsn: str
) -> None:
    """A worker killed mid-batch leaves its transaction's records on the topic, aborted; the
    batch runs again in a new transaction. Only the committed copy may count."""
    from kafka import KafkaProducer

    aborted = late_order(["email", "sms"], 1000.0, retracted=False)
    committed = late_order(["push"], 10.0, retracted=False)
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"sink-test-{uuid.uuid4().hex[:8]}"
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, key=b"c-late", value=json.dumps(aborted).encode())
        producer.flush()
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send(topic, key=b"c-late", value=json.dumps(committed).encode())
        producer.commit_transaction()
    finally:
        producer.close()
    assert run_sink(postgres_dsn, kafka_bootstrap, topic) == 1
    rows = query(postgres_dsn, "SELECT channel, value FROM attributions ORDER BY 1")
    assert rows == [("push", 10.0)]


@pytest.mark.kafka
def test_cli_once_and_bad_records(
    kafka_bootstrap: str, topic: str, postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = late_order(["email"], 10.0, retracted=False)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, key=b"c", value=b"{not json")
    producer.send(topic, key=b"c", value=json.dumps({"model": "linear"}).encode())
    producer.flush()
    producer.close()
    produce(kafka_bootstrap, topic, [good])
    argv = ["sink", "postgres", "--dsn", postgres_dsn, "--bootstrap", kafka_bootstrap]
    code = main([*argv, "--topic", topic, "--no-snapshots", "--once"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 records applied, 2 skipped" in err
    assert query(postgres_dsn, "SELECT count(*) FROM attributions") == [(1,)]


def test_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = f"postgresql://nobody@127.0.0.1:{port}/none"
    code = main(["sink", "postgres", "--dsn", dsn, "--bootstrap", "127.0.0.1:1", "--once"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot connect to PostgreSQL" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def report(log: Path) -> dict[str, Any]:
    from attribution.io.events_reader import read_events
    from attribution.report_build import ReportParameters, build_report

    return build_report(read_events(log).events, ReportParameters(), None, True).report


@pytest.fixture
def worker(report: dict[str, Any]) -> Iterator[str]:
    """A stand-in for a worker's /analytics: serves the batch report (the same JSON, tested)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            if not self.path.startswith("/analytics?customers=1"):
                self.send_error(404)
                return
            body = json.dumps(report).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_snapshot_tables_hold_the_report(
    postgres_dsn: str, worker: str, report: dict[str, Any]
) -> None:
    sink = PostgresSink(postgres_dsn, "unused:9092", "unused", KafkaSettings(), worker_url=worker)
    sink._con = connect(postgres_dsn)
    try:
        prepare(sink._con)
        assert sink.refresh_snapshot()
        assert sink.refresh_snapshot()  # replaced, not appended
    finally:
        sink.close()
    rfm = report["rfm"]
    assert query(postgres_dsn, "SELECT count(*) FROM rfm_customers") == [(len(rfm["customers"]),)]
    segments = dict(query(postgres_dsn, "SELECT segment, count(*) FROM rfm_customers GROUP BY 1"))
    assert segments == {k: v for k, v in rfm["segments"].items() if v}
    moved = query(
        postgres_dsn,
        "SELECT from_label, to_label, customers FROM rfm_movement WHERE kind = 'grade'",
    )
    grades = rfm["movement"]["grades"]
    assert {(a, b): n for a, b, n in moved} == {
        (a, b): n for a, row in grades.items() for b, n in row.items()
    }
    overall = report["holdout"]["overall"]
    row = query(
        postgres_dsn,
        "SELECT incremental_revenue, conversion_lift, conversion_lift_relative, underpowered "
        "FROM holdout WHERE experiment = '(overall)' AND period = 'all'",
    )
    assert row == [
        (
            overall["incremental_revenue"],
            overall["conversion_lift"],
            overall["conversion_lift_relative"],
            overall["underpowered"],
        )
    ]
    no_cost = query(
        postgres_dsn, "SELECT count(*) FROM campaigns WHERE cost IS NULL AND cac IS NOT NULL"
    )
    assert no_cost == [(0,)]
    clv = dict(query(postgres_dsn, "SELECT segment, historical_revenue FROM clv_segments"))
    assert clv == {k: v["historical_revenue"] for k, v in report["clv"]["segments"].items()}
    assert query(postgres_dsn, "SELECT count(*) FROM clv_customers")[0][0] == len(
        report["clv"]["per_customer"]
    )


def sql_blocks() -> list[str]:
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


def test_the_docs_bi_queries_run(
    postgres_dsn: str, report: dict[str, Any], records: list[Any]
) -> None:
    from stream.sinks.postgres import apply_records, refresh_daily

    con = connect(postgres_dsn)
    try:
        prepare(con)
        with con.transaction(), con.cursor() as cur:
            refresh_daily(cur, apply_records(cur, records))
        replace_snapshot(con, report, "test")
    finally:
        con.close()
    blocks = sql_blocks()
    assert len(blocks) >= 5
    for sql in blocks:
        rows = query(postgres_dsn, sql)
        assert rows, sql  # every documented query answers something on a real log
