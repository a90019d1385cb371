"""The batch runner, broker-free: its tables give the batch engine's answers.

Every test drives the runner a worker runs (through :mod:`stream.testing`), over logs in
arrival order, reordered, redelivered, with skipped offsets, and drained as a backlog.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from typing import Any

import pytest

from attribution.events import parse_record_bytes
from crm_attribution.generator import DENSE_CHANNELS, GeneratorConfig, generate
from stream.kafka.partitioning import key_partition
from stream.processing import customer_record
from stream.processing.analytics_shares import partition_shares
from stream.processing.ticks import tick_value
from stream.testing import (
    TestingLog,
    TestingRun,
    arrival_order,
    crc32_partition,
    run_main,
    stored_partition,
    topic_order,
)
from stream.types import Record
from tests.compare import assert_same
from tests.money_log import with_money
from tests.stream.batch_answers import batch_attribution, batch_report, stream_settings

SETTINGS = stream_settings(partitions=3)
TOPICS = SETTINGS.topics


def drain(lines: list[str], **options: object) -> TestingRun:
    log = TestingLog(SETTINGS)
    log.produce_lines(lines, SETTINGS)
    return run_main(log, SETTINGS, **options)  # type: ignore[arg-type]


@cache
def _dense_lines() -> tuple[str, ...]:
    return tuple(generate(GeneratorConfig(customers=200, days=20, seed=7, channels=DENSE_CHANNELS)))


def dense_log() -> list[str]:
    """Many touches per order (a backlog drained purchases first re-credits much if eager):
    the log of the held-journey tests, generated once."""
    return list(_dense_lines())


@cache
def dense_log_answer() -> dict[str, Any]:
    """The batch engine's attribution of :func:`dense_log` (read, never changed, by the tests)."""
    return batch_attribution(dense_log(), SETTINGS)


def late_touches(lines: list[str], by: int) -> list[str]:
    """Every third touchpoint held back by ``by`` records, as a lagging topic would deliver
    it: touches then arrive after the purchase they precede, which retracts and re-emits."""
    delayed = [
        (position + by if '"touchpoint"' in line and position % 3 == 0 else position, line)
        for position, line in enumerate(lines)
    ]
    return [line for _, line in sorted(delayed, key=lambda item: item[0])]


@pytest.mark.parametrize(("seed", "batch_events"), [(1, 1), (2, 50)])
def test_the_runners_tables_equal_the_batch_engine(seed: int, batch_events: int) -> None:
    lines = list(generate(GeneratorConfig(customers=300, days=20, seed=seed, invalid_rate=0.02)))
    expected = batch_attribution(lines, SETTINGS)
    run = drain(lines, batch_events=batch_events)
    assert expected["totals"]["conversions"] > 50 and expected["totals"]["null"] > 50
    assert_same(run.attribution(), expected)
    assert len(run.dead_letters()) == expected["totals"]["invalid_records"]


def test_batched_crediting_gives_the_same_tables_and_records() -> None:
    """A batch rebuilds and credits its customers together: same sums, same tables, and the
    same per-order records once a retraction cancels the record it retracts; only the
    records of journeys that lived within one batch (credited, then changed by a touch of
    the same batch) are no longer sent."""
    lines = late_touches(list(generate(GeneratorConfig(customers=200, days=20, seed=5))), 40)
    # Nothing held for a backlog here: with it, the batch size would also decide what waits.
    one_by_one = drain(lines, batch_events=1, hold_backlog=False)
    batched = drain(lines, batch_events=37, hold_backlog=False)
    assert_same(batched.attribution(), one_by_one.attribution())
    assert without_compaction_days(batched.customers) == without_compaction_days(
        one_by_one.customers
    )
    records = one_by_one.attribution_records()
    assert len(records) > 100 and any(r["retracted"] for r in records)

    def net(records: list[dict]) -> Counter[str]:
        """Each record still standing: sent, and not retracted by a later one."""
        sent = Counter(json.dumps({**r, "retracted": False}, sort_keys=True) for r in records)
        for r in records:
            if r["retracted"]:
                sent[json.dumps({**r, "retracted": False}, sort_keys=True)] -= 2
        assert all(count in (0, 1) for count in sent.values()), sent
        return +sent

    assert net(batched.attribution_records()) == net(records)
    assert len(net(records)) > 100
    # Journeys that changed within a batch made records one by one, and none batched.
    assert len(batched.attribution_records()) < len(records)


def without_compaction_days(customers: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """The customer records with every remembered id's compaction day set to 0: the day is
    the horizon's when the id was compacted, which the batch size moves (bookkeeping of how
    long to remember it, not what the customer holds)."""
    out = {}
    for key, value in customers.items():
        state = customer_record.decode(key.decode(), value)
        state.compacted_ids = [(0, digest) for _, digest in state.compacted_ids]
        out[key] = customer_record.encode(state)
    return out


def touch(event_id: str, customer: str, ts: str = "2026-01-01T00:00:00Z") -> bytes:
    return json.dumps(
        {
            "type": "touchpoint",
            "event_id": event_id,
            "customer_id": customer,
            "channel": "email",
            "ts": ts,
        }  # fmt: skip
    ).encode()


def test_a_bad_record_becomes_a_dead_letter_with_reason_place_and_bytes() -> None:
    log = TestingLog(SETTINGS)
    for i in range(17):
        log.produce(TOPICS.touchpoints, b"c1", touch(f"t{i}", "c1"), partition=2)
    bad = b'{"type": "touchpoint", "event_id": "x"'
    log.produce(TOPICS.touchpoints, b"c1", bad, partition=2)
    [letter] = run_main(log, SETTINGS).dead_letters()
    assert "not valid JSON" in letter["reason"]
    assert (letter["topic"], letter["partition"], letter["offset"]) == (TOPICS.touchpoints, 2, 17)
    assert letter["value_text"] == bad.decode()


def test_an_event_on_the_wrong_topic_or_under_another_key_is_dead_lettered() -> None:
    purchase = json.dumps(
        {
            "type": "purchase",
            "event_id": "p",
            "customer_id": "c1",
            "order_id": "o",
            "amount": 3,
            "ts": "2026-01-01T00:00:00Z",
        }  # fmt: skip
    ).encode()
    log = TestingLog(SETTINGS)
    log.produce(TOPICS.touchpoints, b"c1", purchase)
    log.produce(TOPICS.touchpoints, b"c2", touch("t", "c1"))
    wrong_topic, wrong_key = run_main(log, SETTINGS).dead_letters()
    assert "does not belong on topic" in wrong_topic["reason"]
    assert "keyed by customer_id" in wrong_key["reason"]


def redelivered(log: TestingLog) -> list[Record]:
    """Everything, then the last two records again (Faust after a restart)."""
    return [*log.produced, *log.produced[-2:]]


def test_records_redelivered_after_a_restart_count_once() -> None:
    log = TestingLog(SETTINGS)
    log.produce(TOPICS.touchpoints, b"c1", touch("t", "c1"), partition=0)
    log.produce(TOPICS.touchpoints, b"c1", b"{broken", partition=0)
    once = run_main(log, SETTINGS, batch_events=1, expire=False)
    twice = run_main(log, SETTINGS, order=redelivered, batch_events=1, expire=False)
    assert len(twice.dead_letters()) == 1 and twice.aggregates["0|totals"]["invalid"] == 1
    assert twice.customers == once.customers and twice.aggregates == once.aggregates


def test_records_read_again_after_their_events_were_compacted_are_copies() -> None:
    """A partition's new owner reads again the offsets since its last tick (P|offsets), which
    the previous owner may have processed and compacted meanwhile; a backlog drain covers days
    of event time between two ticks. Here the last 60 days of a 120-day log come again: every
    copy is recognised (customer_state.RECENT_IDS_DAYS), none is dead-lettered as too late."""
    lines = list(generate(GeneratorConfig(customers=150, days=120, seed=6)))
    log = TestingLog(SETTINGS)
    log.produce_lines(lines, SETTINGS)
    customer_topics = (TOPICS.touchpoints, TOPICS.purchases)
    again = [r for r in log.produced[len(log.produced) // 2 :] if r.topic in customer_topics]

    def read_again(log: TestingLog) -> list[Record]:
        return [*log.produced, *again]

    once = run_main(log, SETTINGS, expire=False)
    twice = run_main(log, SETTINGS, order=read_again, expire=False)
    retained = {
        row.event_id
        for key, value in once.customers.items()
        for row in customer_record.decode(key.decode(), value).events
    }
    copies = {json.loads(r.value)["event_id"] for r in again}
    assert len(copies - retained) > 1_000  # compacted before they came again
    assert twice.dead_letters() == once.dead_letters() == []
    assert_same(twice.attribution(), once.attribution())
    assert_same(twice.analytics(), once.analytics())


def test_offsets_the_consumer_skipped_are_read_from_the_log() -> None:
    """Faust once committed past records its agent never saw: the runner reads them itself."""
    # Enough purchases that every partition has records past the hole (offsets 5-14).
    lines = list(generate(GeneratorConfig(customers=500, days=30, seed=8)))

    customer_topics = (TOPICS.touchpoints, TOPICS.purchases)

    def with_holes(log: TestingLog) -> list[Record]:
        for topic in customer_topics:
            for partition in range(SETTINGS.topics.partitions):
                assert log.end_offset(topic, partition) > 15  # a later record shows the hole
        return [
            r
            for r in arrival_order(log)
            if r.topic not in customer_topics or not 5 <= r.offset < 15
        ]

    expected = batch_attribution(lines, SETTINGS)
    run = drain(lines, order=with_holes, batch_events=25)
    assert_same(run.attribution(), expected)
    refilled = sum(sum(result.refilled.values()) for result in run.results)
    assert refilled == 10 * 3 * 2  # 10 offsets of 3 partitions of touchpoints and purchases


def test_a_partitions_next_owner_starts_where_the_last_batch_ended() -> None:
    """Each batch stores its partitions' next offsets with its writes: a rebalance costs no
    records read again. (Stored only at ticks, every partition was read again from its start
    at each reassignment here: 1,000s of records.)"""
    lines = list(generate(GeneratorConfig(customers=200, days=20, seed=9)))
    log = TestingLog(SETTINGS)
    log.produce_lines(lines, SETTINGS)
    run = run_main(log, SETTINGS, batch_events=50, reassign_every=2)
    assert len(run.results) > 20  # ten reassignments at least
    assert sum(sum(result.refilled.values()) for result in run.results) == 0
    assert_same(run.attribution(), batch_attribution(lines, SETTINGS))


def test_the_runners_analytics_equal_the_batch_report() -> None:
    """Analytics parts in the customer table, costs and journeys in aggregates: `report`."""
    lines = list(generate(GeneratorConfig(customers=300, days=40, seed=4, invalid_rate=0.02)))
    expected = batch_report(lines, SETTINGS)
    assert expected["holdout"]["overall"]["n_control"] > 0
    assert any(c["cost"] > 0 for c in expected["campaigns"].values())
    assert_same(drain(lines, batch_events=100).analytics(), expected)


def test_an_assignment_keyed_by_another_customer_is_dead_lettered_and_changes_nothing() -> None:
    def assignment(customer: str) -> bytes:
        return json.dumps(
            {
                "type": "assignment",
                "event_id": "a1",
                "customer_id": customer,
                "group": "control",
                "ts": "2026-01-01T00:00:00Z",
            }  # fmt: skip
        ).encode()

    log = TestingLog(SETTINGS)
    log.produce(TOPICS.assignments, b"c2", assignment("c1"), partition=0)
    wrong = run_main(log, SETTINGS)
    assert "keyed by customer_id" in wrong.dead_letters()[0]["reason"]
    assert wrong.customers == {} and wrong.aggregates["0|totals"]["invalid"] == 1
    log.produce(TOPICS.assignments, b"c1", assignment("c1"), partition=0)
    right = run_main(log, SETTINGS)
    assert len(right.dead_letters()) == 1
    parts = customer_record.analytics_parts(right.customers[b"c1"])
    assert parts is not None and parts["h"]["assignments"][0][3] == "control"


def test_orders_read_ahead_of_their_touches_are_held_and_the_sums_stay_exact() -> None:
    """A backlog drained purchases first: orders wait for the touches instead of re-crediting."""
    # Many touches per order, so that eager crediting has many retractions to make.
    lines = dense_log()
    expected = dense_log_answer()
    purchases_first = topic_order(TOPICS.purchases)
    # A log of 5,467 records: a backlog bound in proportion (the default, 500, is a tenth of it,
    # and the touches of that last stretch re-credit the orders released before them).
    held = drain(lines, order=purchases_first, batch_events=50, backlog_records=50)
    eager = drain(lines, order=purchases_first, batch_events=50, hold_backlog=False)
    assert_same(held.attribution(), expected)
    assert_same(eager.attribution(), expected)
    assert all(customer_record.held_since(v) is None for v in held.customers.values())
    # Crediting each order before its touches retracts it once per touch that follows.
    assert eager.retracted() > 10 * max(held.retracted(), 1), (eager.retracted(), held.retracted())


def test_the_backlog_bound_not_the_batch_decides_how_much_of_a_backlogs_end_is_re_credited() -> (
    None
):
    """Once a touchpoint partition is within ``backlog_records`` of its end, its held orders are
    credited, and the touches of that last stretch re-credit those they precede: a bound smaller
    than the batch re-credits less, whatever the batch size (the real-broker backlog test with
    2,000 per batch: 0.9-1.1% of its journeys re-credited while the bound was the batch size)."""
    lines = dense_log()
    expected = dense_log_answer()
    purchases_first = topic_order(TOPICS.purchases)
    loose = drain(lines, order=purchases_first, batch_events=200, backlog_records=200)
    tight = drain(lines, order=purchases_first, batch_events=200, backlog_records=10)
    assert_same(loose.attribution(), expected)
    assert_same(tight.attribution(), expected)
    # Measured: 15 and 0 (85 with the default bound of 500 on this small log).
    assert loose.retracted() >= 10 and tight.retracted() <= 1, (
        loose.retracted(),
        tight.retracted(),
    )


def test_a_tick_in_the_first_batch_of_a_backlog_holds_the_orders_read_ahead_too() -> None:
    """A tick flushes the customers read so far: it must know the backlog the batch's end
    would. Before, a worker's first batch had marked nothing lagging yet when its tick came,
    and every order read ahead was credited, then re-credited per touch (the real-broker
    backlog test with 2,000 per batch: 5.9% of its journeys re-credited)."""
    lines = dense_log()
    expected = dense_log_answer()
    names = TestingLog(SETTINGS).topics

    def purchases_then_a_tick(log: TestingLog) -> list[Record]:
        ordered = topic_order(TOPICS.purchases)(log)
        first = 40  # purchases, then the tick, in the first batch of 50
        assert all(r.topic == TOPICS.purchases for r in ordered[:first])
        # The group's newest event time once those are read, as the leader sends it.
        as_of = max(parse_record_bytes(r.value).ts_ms for r in ordered[:first] if r.value)
        ticks = [Record(names.ticks, p, 0, None, tick_value(as_of)) for p in range(3)]
        return ordered[:first] + ticks + ordered[first:]

    # The bound in proportion to this small log, as in the test above.
    ticked = drain(lines, order=purchases_then_a_tick, batch_events=50, backlog_records=50)
    held = drain(lines, order=topic_order(TOPICS.purchases), batch_events=50, backlog_records=50)
    assert_same(ticked.attribution(), expected)
    assert ticked.retracted() == held.retracted(), (ticked.retracted(), held.retracted())


def test_a_refund_in_the_first_batch_of_a_backlog_holds_the_orders_read_ahead_too() -> None:
    """A refund flushes the customers read so far mid-batch (it reads their journeys): it must
    know the backlog too. Before, in the first batch of a backlog drained purchases first,
    every order read before a refund was credited, then re-credited per touch."""
    lines = dense_log()
    # The invariant test's money: rates, other currencies, refunds of about one order in ten.
    refunded = with_money(lines)
    assert sum('"refund"' in line for line in refunded) > 10
    purchases_first = topic_order(TOPICS.purchases)
    # The bound it was written with (then the batch size), in proportion to this small log.
    with_refunds = drain(refunded, order=purchases_first, batch_events=200, backlog_records=200)
    without = drain(lines, order=purchases_first, batch_events=200, backlog_records=200)
    assert_same(with_refunds.attribution(), batch_attribution(refunded, SETTINGS))
    # 108 before the fix, against 15 without refunds: the same journeys, credited once.
    assert with_refunds.retracted() <= without.retracted() + 5, (
        with_refunds.retracted(),
        without.retracted(),
    )


def test_a_customer_is_decoded_once_per_batch_that_touches_it() -> None:
    """The counters behind a worker's decode and rebuild metrics: what batching saves."""
    # No copies: a copy is decoded, then recognised as one and rebuilds nothing.
    lines = list(generate(GeneratorConfig(customers=60, days=20, seed=8, duplicate_rate=0.0)))
    customer_topics = {TOPICS.touchpoints, TOPICS.purchases, TOPICS.assignments}
    log = TestingLog(SETTINGS)
    log.produce_lines(lines, SETTINGS)
    customer_events = sum(1 for record in log.produced if record.topic in customer_topics)
    by_event = drain(lines, batch_events=1, expire=False, hold_backlog=False)
    whole = drain(lines, batch_events=len(lines), expire=False, hold_backlog=False)
    assert customer_events > 250
    assert by_event.customers_decoded() == customer_events
    assert whole.customers_decoded() == len(whole.customers) == 60
    # One event at a time: a rebuild per touchpoint and purchase (an assignment changes no
    # journey); in one batch, once per customer with any.
    journey_records = [r for r in log.produced if r.topic in {TOPICS.touchpoints, TOPICS.purchases}]
    assert by_event.journeys_rebuilt() == len(journey_records)
    assert whole.journeys_rebuilt() == len({r.key for r in journey_records}) > 50


def test_customers_stay_on_the_partition_their_events_arrive_on_whatever_the_partitioner() -> None:
    """librdkafka producers partition with CRC32, not the Java client's murmur2."""
    lines = list(generate(GeneratorConfig(customers=300, days=20, seed=6)))
    log = TestingLog(SETTINGS, partitioner=crc32_partition)
    log.produce_lines(lines, SETTINGS)
    # Every partition assigned anew every few batches: the open and held journey indexes are
    # rebuilt from the table each time, as after a rebalance.
    run = run_main(log, SETTINGS, batch_events=100, reassign_every=3)
    assert_same(run.attribution(), batch_attribution(lines, SETTINGS))
    assert_same(run.analytics(), batch_report(lines, SETTINGS))
    arrived = {r.key: r.partition for r in log.produced if r.topic == TOPICS.purchases}
    partitions = range(SETTINGS.topics.partitions)
    shares = partition_shares(run.customers.items(), (), set(partitions), stored_partition)
    for key, partition in arrived.items():
        assert customer_record.partition(run.customers[key]) == partition
        assert key.decode() in shares[str(partition)]["customers"]
    moved = [key for key, p in arrived.items() if p != key_partition(key, len(partitions))]
    assert len(moved) > len(arrived) // 2
