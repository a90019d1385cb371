"""The agent's loop without a broker: batches from the feed to the runner, then their offsets."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from stream.kafka.feed import InputFeed
from stream.ops.metrics import WorkerMetrics
from stream.processing.runner import BatchResult
from stream.types import Record, TopicPartition
from stream.worker import agents

TOPICS = ("touchpoints", "purchases")


class FakeRunner:
    """Records the batches it gets; can block on a gate or raise."""

    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.batches: list[list[Record]] = []
        self.gate = gate
        self.fail = fail
        self.started = asyncio.Event()

    async def process(self, records: list[Record]) -> BatchResult:
        self.batches.append(records)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("a bug")
        result = BatchResult()
        for record in records:
            result.events_in[record.topic] += 1
        return result


class FakeOffsets:
    """The consumer's offset calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[TopicPartition, int]]] = []

    def note_committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.calls.append(("noted", dict(offsets)))

    async def commit_consumed(self, offsets: Mapping[TopicPartition, int]) -> bool:
        self.calls.append(("committed", dict(offsets)))
        return True


def fake_pipeline(runner: FakeRunner, transactions: Any = None) -> Any:
    """What handle_batch and run_batches use of a Pipeline."""
    return SimpleNamespace(
        runner=runner,
        metrics=WorkerMetrics(),
        topic_names=SimpleNamespace(dead_letter="dead", attributions="attributions"),
        outgoing=object(),
        transactions=transactions,
        queue_table_writes=lambda: None,
        store_table_writes=lambda: None,
        settings=SimpleNamespace(worker=SimpleNamespace(batch_events=4, batch_seconds=0.01)),
    )


def records(topic: str, partition: int, start: int, count: int) -> list[Record]:
    return [Record(topic, partition, o, b"c", b"{}", 1.0) for o in range(start, start + count)]


def filled_feed(*chunks: list[Record]) -> InputFeed:
    feed = InputFeed(TOPICS, 100)
    feed.assign([(t, p) for t in TOPICS for p in range(4)])
    for chunk in chunks:
        feed.put((chunk[0].topic, chunk[0].partition), chunk, feed.generation)
    return feed


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """send_or_exit replaced: records the offsets and reports three messages sent."""
    calls: list[Any] = []

    async def send_or_exit(outgoing: Any, delivered: Any = None, offsets: Any = None) -> int:
        calls.append(dict(offsets or {}))
        if delivered is not None:
            delivered()
        return 3

    monkeypatch.setattr(agents, "send_or_exit", send_or_exit)
    return calls


async def run_until_drained(pipeline: Any, feed: InputFeed, offsets: FakeOffsets) -> None:
    """Run the loop until the feed is empty and idle, then cancel it."""
    loop = asyncio.ensure_future(agents.run_batches(pipeline, feed, offsets))
    while len(feed):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await feed.wait_idle()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop


def test_batches_reach_the_runner_in_order_and_their_offsets_are_committed_after(
    sent: list[Any],
) -> None:
    async def run() -> tuple[FakeRunner, FakeOffsets]:
        runner, offsets = FakeRunner(), FakeOffsets()
        feed = filled_feed(records("touchpoints", 0, 0, 3), records("purchases", 1, 5, 3))
        await run_until_drained(fake_pipeline(runner), feed, offsets)
        return runner, offsets

    runner, offsets = asyncio.run(run())
    assert [len(b) for b in runner.batches] == [4, 2]
    assert [r.offset for r in runner.batches[0]] == [0, 1, 2, 5]
    # at_least_once: the group commit after each batch's delivery, with the batch's offsets.
    assert offsets.calls == [
        ("committed", {("touchpoints", 0): 3, ("purchases", 1): 6}),
        ("committed", {("purchases", 1): 8}),
    ]
    assert sent == [offsets.calls[0][1], offsets.calls[1][1]]


def test_with_transactions_the_consumer_only_notes_what_the_transaction_committed(
    sent: list[Any],
) -> None:
    async def run() -> FakeOffsets:
        offsets = FakeOffsets()
        feed = filled_feed(records("touchpoints", 2, 10, 2))
        await run_until_drained(fake_pipeline(FakeRunner(), transactions=object()), feed, offsets)
        return offsets

    assert asyncio.run(run()).calls == [("noted", {("touchpoints", 2): 12})]
    assert sent == [{("touchpoints", 2): 12}]


def test_a_batch_that_wrote_nothing_is_committed_to_the_group_even_with_transactions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def nothing_sent(outgoing: Any, delivered: Any = None, offsets: Any = None) -> int:
        return 0  # no messages: no transaction carried the offsets

    monkeypatch.setattr(agents, "send_or_exit", nothing_sent)

    async def run() -> FakeOffsets:
        offsets = FakeOffsets()
        feed = filled_feed(records("purchases", 0, 0, 1))
        await run_until_drained(fake_pipeline(FakeRunner(), transactions=object()), feed, offsets)
        return offsets

    assert asyncio.run(run()).calls == [("committed", {("purchases", 0): 1})]


def test_a_failed_batch_ends_the_process_and_commits_nothing(
    sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(agents, "exit_before_commit", lambda status, *a, **k: exits.append(status))

    async def run() -> tuple[FakeOffsets, InputFeed]:
        offsets = FakeOffsets()
        feed = filled_feed(records("touchpoints", 0, 0, 2))
        await run_until_drained(fake_pipeline(FakeRunner(fail=True)), feed, offsets)
        return offsets, feed

    offsets, _ = asyncio.run(run())
    assert exits == [agents.PROCESSING_FAILED_EXIT]
    assert offsets.calls == []
    assert sent == []


def test_a_revocation_waiting_for_the_batch_in_hand_sees_it_committed(sent: list[Any]) -> None:
    async def run() -> list[str]:
        gate = asyncio.Event()
        runner, offsets = FakeRunner(gate), FakeOffsets()
        feed = filled_feed(records("touchpoints", 1, 0, 2))
        order: list[str] = []
        loop = asyncio.ensure_future(agents.run_batches(fake_pipeline(runner), feed, offsets))
        await runner.started.wait()

        async def revoke() -> None:
            # What FeedConsumer.on_partitions_revoked does before Faust's revocation.
            feed.revoke([("touchpoints", 1)])
            await feed.wait_idle()
            order.append(f"revoked after {len(offsets.calls)} commit(s)")

        revoking = asyncio.ensure_future(revoke())
        await asyncio.sleep(0.05)
        assert not revoking.done()
        gate.set()
        await revoking
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        return order

    assert asyncio.run(run()) == ["revoked after 1 commit(s)"]


def test_a_stop_during_a_batch_lets_it_finish_and_commit(sent: list[Any]) -> None:
    async def run() -> FakeOffsets:
        gate = asyncio.Event()
        runner, offsets = FakeRunner(gate), FakeOffsets()
        feed = filled_feed(records("purchases", 3, 7, 1))
        loop = asyncio.ensure_future(agents.run_batches(fake_pipeline(runner), feed, offsets))
        await runner.started.wait()
        loop.cancel()
        await asyncio.sleep(0.02)
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await loop
        await asyncio.wait_for(feed.wait_idle(), 1.0)
        return offsets

    assert asyncio.run(run()).calls == [("committed", {("purchases", 3): 8})]


def test_a_batchs_decoded_records_and_rebuilds_are_counted_in_the_metrics() -> None:
    pipeline = fake_pipeline(FakeRunner())
    for decoded, rebuilt in ((7, 3), (5, 5)):
        result = BatchResult(customers_decoded=decoded, journeys_rebuilt=rebuilt)
        agents.queue_outputs(pipeline, result)
    metrics = pipeline.metrics
    assert metrics.customers_decoded._value.get() == 12  # noqa: SLF001 - prometheus counter
    assert metrics.journeys_rebuilt._value.get() == 8  # noqa: SLF001
    exposed = metrics.render().decode()
    assert "crm_customer_records_decoded_total 12.0" in exposed
    assert "crm_journey_rebuilds_total 8.0" in exposed
