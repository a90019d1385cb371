"""Broker-free tests of record processing: the stream's sums equal the batch engine's."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from attribution.engine import attribute_events
from attribution.events import InvalidRecord, parse_event
from attribution.journeys import JourneyRules
from attribution.models.options import ModelOptions
from config.settings import KNOWN_MODELS, load_settings
from crm_attribution.generator import DENSE_CHANNELS, GeneratorConfig, generate
from stream.held import HeldIndex
from stream.processing import (
    Context,
    PendingChanges,
    advance_customer,
    process_record,
    release_customer,
)
from stream.producer import raw_route
from stream.report import attribution_object, merge_partitions
from tests.compare import assert_same

MODELS = list(KNOWN_MODELS)
# Short windows so that lookback, timeout and expiry all matter within the generated days.
RULES = JourneyRules.from_days(3.0, None, 1.0)
OPTIONS = ModelOptions(order=1, direct_channel="direct", half_life_days=7.0)
PARTITIONS = 3


def run_stream(lines: list[str], seed: int) -> tuple[dict, list[dict]]:
    """Process lines as the agent would, with partitions by customer key, shuffled per partition."""
    answer, dead, _, _ = run_stream_tables(lines, seed)
    return answer, dead


def run_stream_tables(
    lines: list[str], seed: int, batch_size: int | None = None, records: list[dict] | None = None
) -> tuple[dict, list[dict], dict, dict]:
    """As :func:`run_stream`, also returning the customer and aggregate tables.

    With ``batch_size``, journey changes are credited per batch of records as the agent does;
    ``records`` collects the attribution records.
    """
    settings = load_settings(environ={})
    kinds = {
        settings.topics.touchpoints: "touchpoints",
        settings.topics.purchases: "purchases",
        settings.topics.costs: "costs",
        settings.topics.assignments: "assignments",
    }
    ctx = Context(RULES, OPTIONS, MODELS, 24 * 3_600_000, kinds)
    customers: dict = {}
    aggregates: dict = {}
    dead: list[dict] = []
    rng = random.Random(seed)
    pending = None if batch_size is None else PendingChanges()
    outcomes = []
    for offset, line in enumerate(lines):
        topic, key = raw_route(line, settings)
        partition = rng.randrange(PARTITIONS) if key is None else hash_partition(key)
        outcome = process_record(
            ctx, customers, aggregates, topic, partition, offset, key, line.encode(), None, pending
        )
        outcomes.append(outcome)
        if outcome.dead_letter:
            dead.append(outcome.dead_letter)
        if pending is not None and batch_size and (offset + 1) % batch_size == 0:
            pending.apply(ctx, aggregates, None)
    newest = max(ctx.watermarks.values())
    for key in list(customers):
        outcomes.append(
            advance_customer(
                ctx, customers, aggregates, key.decode(), hash_partition(key), newest, None, pending
            )
        )
    if pending is not None:
        pending.apply(ctx, aggregates, None)
    if records is not None:
        records += [record for outcome in outcomes for record in outcome.attribution_records]
    partitions: dict[str, dict] = {}
    for key, value in aggregates.items():
        p, _, rest = key.partition("|")
        partitions.setdefault(p, {})[rest] = value
    answer = attribution_object(merge_partitions(partitions), MODELS, OPTIONS)
    return answer, dead, customers, aggregates


def hash_partition(key: bytes) -> int:
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def batch(lines: list[str]) -> dict:
    events, invalid = [], 0
    for line in lines:
        try:
            event = parse_event(json.loads(line))
        except (InvalidRecord, json.JSONDecodeError):
            invalid += 1
            continue
        if event.type in ("touchpoint", "purchase"):
            events.append(event)
    report = attribute_events(events, RULES, MODELS, OPTIONS)
    report.totals.invalid_records = invalid
    return report.to_json()


@pytest.mark.parametrize("seed", [1, 2])
def test_stream_processing_equals_batch_engine(seed: int) -> None:
    lines = list(generate(GeneratorConfig(customers=300, days=20, seed=seed, invalid_rate=0.02)))
    expected = batch(lines)
    got, dead = run_stream(lines, seed)
    assert expected["totals"]["conversions"] > 50 and expected["totals"]["null"] > 50
    assert_same(got, expected)
    assert len(dead) == expected["totals"]["invalid_records"]


def test_batched_crediting_gives_the_same_tables_and_records() -> None:
    """The agent credits journey changes per batch: same sums, same per-order records."""
    lines = list(generate(GeneratorConfig(customers=200, days=20, seed=5, invalid_rate=0.02)))
    # Hold every third touchpoint back by 40 records, as a lagging topic would: touches then
    # arrive after the purchase they precede, which retracts and re-emits its journey.
    delayed: list[tuple[int, str]] = []
    for position, line in enumerate(lines):
        late = '"touchpoint"' in line and position % 3 == 0
        delayed.append((position + 40 if late else position, line))
    lines = [line for _, line in sorted(delayed, key=lambda item: item[0])]
    one_by_one: list[dict] = []
    batched: list[dict] = []
    answer, _, customers, _ = run_stream_tables(lines, 5, None, one_by_one)
    answer_batched, _, customers_batched, _ = run_stream_tables(lines, 5, 37, batched)
    assert_same(answer_batched, answer)
    assert customers_batched == customers
    assert len(one_by_one) > 100 and any(r["retracted"] for r in one_by_one)

    def canonical(records: list[dict]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True) for r in records)

    assert canonical(batched) == canonical(one_by_one)


def test_bad_record_becomes_dead_letter_with_reason_and_bytes() -> None:
    settings = load_settings(environ={})
    ctx = Context(
        RULES, OPTIONS, ["linear"], 3_600_000, {settings.topics.touchpoints: "touchpoints"}
    )
    bad = b'{"type": "touchpoint", "event_id": "x"'
    outcome = process_record(ctx, {}, {}, settings.topics.touchpoints, 2, 17, b"c1", bad)
    assert outcome.dead_letter is not None
    assert "not valid JSON" in outcome.dead_letter["reason"]
    assert outcome.dead_letter["partition"] == 2 and outcome.dead_letter["offset"] == 17
    assert outcome.dead_letter["value_text"] == bad.decode()


def test_event_on_the_wrong_topic_or_key_is_dead_lettered() -> None:
    settings = load_settings(environ={})
    topic = settings.topics.touchpoints
    ctx = Context(RULES, OPTIONS, ["linear"], 3_600_000, {topic: "touchpoints"})
    purchase = json.dumps(
        {
            "type": "purchase",
            "event_id": "p",
            "customer_id": "c1",
            "order_id": "o",
            "amount": 3,
            "ts": "2026-01-01T00:00:00Z",
        }
    ).encode()
    wrong_topic = process_record(ctx, {}, {}, topic, 0, 1, b"c1", purchase)
    assert "does not belong on topic" in wrong_topic.dead_letter["reason"]
    touch = json.dumps(
        {
            "type": "touchpoint",
            "event_id": "t",
            "customer_id": "c1",
            "channel": "email",
            "ts": "2026-01-01T00:00:00Z",
        }
    ).encode()
    wrong_key = process_record(ctx, {}, {}, topic, 0, 2, b"c2", touch)
    assert "keyed by customer_id" in wrong_key.dead_letter["reason"]


def test_redelivered_records_after_a_restart_count_once() -> None:
    settings = load_settings(environ={})
    topic = settings.topics.touchpoints
    ctx = Context(RULES, OPTIONS, ["linear"], 3_600_000, {topic: "touchpoints"})
    aggregates: dict = {}
    customers: dict = {}
    bad = b"{broken"
    first = process_record(ctx, customers, aggregates, topic, 0, 5, b"c1", bad)
    again = process_record(ctx, customers, aggregates, topic, 0, 5, b"c1", bad)
    assert first.dead_letter is not None and again.dead_letter is None
    assert aggregates["0|totals"]["invalid"] == 1
    touch = json.dumps(
        {
            "type": "touchpoint",
            "event_id": "t",
            "customer_id": "c1",
            "channel": "email",
            "ts": "2026-01-01T00:00:00Z",
        }
    ).encode()
    process_record(ctx, customers, aggregates, topic, 0, 6, b"c1", touch)
    snapshot = json.dumps(customers[b"c1"], sort_keys=True)
    redelivered = process_record(ctx, customers, aggregates, topic, 0, 6, b"c1", touch)
    assert redelivered.changes == [] and json.dumps(customers[b"c1"], sort_keys=True) == snapshot


def test_stream_analytics_equal_the_batch_report() -> None:
    """Analytics parts in the customer table + costs and journeys in aggregates = `report`."""
    import argparse

    from crm_attribution.commands.report import build_report
    from stream.analytics_report import partition_shares, report_from_shares

    lines = list(generate(GeneratorConfig(customers=300, days=40, seed=4, invalid_rate=0.02)))
    answer, dead, customers, aggregates = run_stream_tables(lines, 4)
    settings = load_settings(environ={"CRM_ATTRIBUTION__LOOKBACK_DAYS": "3"})
    assert settings.attribution.half_life_days == OPTIONS.half_life_days
    partitions: dict[str, dict] = {}
    for key, value in aggregates.items():
        p, _, rest = key.partition("|")
        partitions.setdefault(p, {})[rest] = value
    merged = merge_partitions(partitions)
    shares = partition_shares(
        customers.items(), aggregates.items(), set(range(PARTITIONS)), PARTITIONS
    )
    stream = report_from_shares(shares, merged, settings, MODELS, OPTIONS)
    valid = []
    for line in lines:
        try:
            valid.append(parse_event(json.loads(line)))
        except (InvalidRecord, json.JSONDecodeError):
            continue
    args = argparse.Namespace(lookback_days=None, compare_days=30.0, customers=False)
    expected = build_report(valid, settings, MODELS, args, None)
    expected["invalid_records"] = len(lines) - len(valid)
    expected["attribution"]["invalid_records"] = len(lines) - len(valid)
    assert expected["holdout"]["overall"]["n_control"] > 0
    assert any(c["cost"] > 0 for c in expected["campaigns"].values())
    assert_same(stream, expected)


def test_assignment_keyed_by_another_customer_is_dead_lettered_and_changes_nothing() -> None:
    settings = load_settings(environ={})
    topic = settings.topics.assignments
    ctx = Context(RULES, OPTIONS, ["linear"], 3_600_000, {topic: "assignments"})
    assignment = json.dumps(
        {
            "type": "assignment",
            "event_id": "a1",
            "customer_id": "c1",
            "group": "control",
            "ts": "2026-01-01T00:00:00Z",
        }
    ).encode()
    customers: dict = {}
    aggregates: dict = {}
    wrong = process_record(ctx, customers, aggregates, topic, 0, 1, b"c2", assignment)
    assert "keyed by customer_id" in wrong.dead_letter["reason"]
    assert customers == {} and aggregates["0|totals"]["invalid"] == 1
    right = process_record(ctx, customers, aggregates, topic, 0, 2, b"c1", assignment)
    assert right.dead_letter is None
    assert customers[b"c1"]["x"]["h"]["assignments"][0][3] == "control"


def test_a_days_conversions_are_spread_over_bounded_keys_and_all_come_back() -> None:
    """One key per day grew with every conversion and was rewritten whole each time."""
    from attribution.journeys import ConvertedJourney, Touch
    from stream.analytics_report import partition_shares
    from stream.processing import CONVERSION_BUCKETS, record_conversion

    aggregates: dict[str, object] = {}
    day_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    journeys = [
        ConvertedJourney(
            f"c{i}", f"o{i}", f"p{i}", day_ms + i, 10.0, (Touch("email", day_ms, f"t{i}"),)
        )
        for i in range(400)
    ]
    for journey in journeys:
        record_conversion(aggregates, 0, +1, journey)
    record_conversion(aggregates, 0, -1, journeys[0])  # a retraction finds its bucket
    legacy = journeys[1]  # kept, by an older worker, in the day's single key
    aggregates["0|conv|2026-01-01"] = {legacy.event_id: ["c1", []]}
    record_conversion(aggregates, 0, -1, legacy)
    record_conversion(aggregates, 0, +1, legacy)
    assert aggregates["0|conv|2026-01-01"] == {}
    keys = [k for k in aggregates if k.startswith("0|conv|2026-01-01|")]
    assert CONVERSION_BUCKETS // 2 < len(keys) <= CONVERSION_BUCKETS
    assert max(len(aggregates[k]) for k in keys) < 4 * 400 / CONVERSION_BUCKETS  # type: ignore[arg-type]
    shares = partition_shares([], aggregates.items(), {0}, 1)
    assert sorted(row[0] for row in shares["0"]["journeys"]) == sorted(
        f"c{i}" for i in range(1, 400)
    )


def drain_backlog(lines: list[str], hold: bool) -> tuple[dict, int]:
    """Purchases read before every touchpoint, as a worker drains a backlog; returns the
    attribution object and the number of retracted journeys.

    With ``hold``, the touchpoints topic of each partition is marked lagging while it has
    unread records, and held customers are released every 50 records, as the agent does.
    """
    settings = load_settings(environ={})
    kinds = {settings.topics.touchpoints: "touchpoints", settings.topics.purchases: "purchases"}
    ctx = Context(RULES, OPTIONS, MODELS, 24 * 3_600_000, kinds)
    customers: dict = {}
    aggregates: dict = {}
    pending = PendingChanges()
    held = HeldIndex()
    for partition in range(PARTITIONS):
        held.rebuild(partition, [])
    routed = [(*raw_route(line, settings), line) for line in lines]
    routed = [r for r in routed if r[0] in kinds]
    routed.sort(key=lambda r: r[0] != settings.topics.purchases)  # stable: purchases first
    unread = Counter((kinds[topic], hash_partition(key)) for topic, key, _ in routed)
    retracted = 0

    def credit() -> None:
        nonlocal retracted
        retracted += pending.counts()[1]
        pending.apply(ctx, aggregates, None)

    def track(partition: int, customer_id: str) -> None:
        held.update(partition, customer_id, customers[customer_id.encode()].get("h"))

    for offset, (topic, key, line) in enumerate(routed):
        partition = hash_partition(key)
        unread[(kinds[topic], partition)] -= 1
        if hold and unread[(kinds[topic], partition)]:
            ctx.lagging.add((kinds[topic], partition))
        else:
            ctx.lagging.discard((kinds[topic], partition))
        outcome = process_record(
            ctx, customers, aggregates, topic, partition, offset, key, line.encode(), None, pending
        )
        if outcome.customer_id:
            track(partition, outcome.customer_id)
        if offset % 50 == 49:
            for p in held.partitions():
                for customer_id in held.due(p, ctx.credit_through(p)):
                    release_customer(ctx, customers, aggregates, customer_id, p, None, pending)
                    track(p, customer_id)
            credit()
    assert not ctx.lagging
    for p in held.partitions():
        for customer_id in held.due(p, ctx.credit_through(p)):
            release_customer(ctx, customers, aggregates, customer_id, p, None, pending)
    newest = max(ctx.watermarks.values())
    for key in list(customers):
        advance_customer(
            ctx, customers, aggregates, key.decode(), hash_partition(key), newest, None, pending
        )
    credit()
    assert all(state.get("h") is None for state in customers.values())
    partitions: dict[str, dict] = {}
    for key, value in aggregates.items():
        p, _, rest = key.partition("|")
        partitions.setdefault(p, {})[rest] = value
    return attribution_object(merge_partitions(partitions), MODELS, OPTIONS), retracted


def test_orders_read_ahead_of_their_touches_are_held_and_the_sums_stay_exact() -> None:
    # Many touches per order: eager crediting then retracts each order once per late touch,
    # which is what holding avoids.
    lines = list(generate(GeneratorConfig(customers=200, days=20, seed=7, channels=DENSE_CHANNELS)))
    expected = batch(lines)
    held_answer, held_retracted = drain_backlog(lines, hold=True)
    eager_answer, eager_retracted = drain_backlog(lines, hold=False)
    assert_same(held_answer, expected)
    assert_same(eager_answer, expected)
    # Crediting each order before its touches retracts it once per touch that follows.
    assert eager_retracted > 10 * max(held_retracted, 1), (eager_retracted, held_retracted)
