"""Which customer topic partitions lag: a backlog holds journeys, a live stream does not."""

from __future__ import annotations

import asyncio

from crm_attribution.settings.typed import load_settings
from stream.processing.backlog import Backlog, mark_lagging
from stream.testing import TestingLog
from stream.types import TopicPartition

TOPICS = {"touchpoints": "touch", "purchases": "buy"}


def test_topics_with_unread_records_lag_and_revoked_ones_stop_lagging() -> None:
    ends = {("touch", 0): 100, ("buy", 0): 7, ("touch", 1): 50}
    next_offsets = {("touch", 0): 40, ("buy", 0): 7, ("touch", 1): 50, ("buy", 1): 3}
    lagging = {("purchases", 3)}  # partition 3 was revoked since

    def highwater(topic: str, partition: int) -> int | None:
        return ends.get((topic, partition))

    mark_lagging(lagging, [0, 1, 3], TOPICS, next_offsets, highwater, backlog=10)
    assert lagging == {("touchpoints", 0)}  # partition 3: no answer, no longer lagging
    next_offsets[("touch", 0)] = 90  # ten records behind the end: a live stream, not a backlog
    mark_lagging(lagging, [0], TOPICS, next_offsets, highwater, backlog=10)
    assert lagging == set()
    next_offsets[("touch", 0)] = 89
    mark_lagging(lagging, [0], TOPICS, next_offsets, highwater, backlog=10)
    assert lagging == {("touchpoints", 0)}


class CountingLog(TestingLog):
    """The in-memory input log, counting the questions about where partitions start and end."""

    asked: list[list[TopicPartition]]

    def highwater(self, topic: str, partition: int) -> int | None:
        return None  # the consumer has fetched nothing yet

    async def starts_and_ends(
        self, partitions: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        self.asked.append(sorted(partitions))
        return await super().starts_and_ends(partitions)


def test_a_fresh_assignment_is_asked_once_where_it_starts_and_ends() -> None:
    """The first batch may hold purchases only: the unread touchpoints must still count."""
    settings = load_settings(
        environ={"CRM_TOPICS__TOUCHPOINTS": "touch", "CRM_TOPICS__PURCHASES": "buy"}
    )
    log = CountingLog(settings)
    log.asked = []
    for _ in range(900):
        log.produce("touch", b"c", b"{}", partition=0)
    for _ in range(30):
        log.produce("buy", b"c", b"{}", partition=0)
    backlog = Backlog(TOPICS, log, threshold=50)
    lagging: set[tuple[str, int]] = set()
    processed = {("buy", 0): 30}  # the batch read every purchase, no touchpoint yet
    asyncio.run(backlog.learn([0], processed))
    backlog.mark(lagging, [0], processed)
    assert lagging == {("touchpoints", 0)}
    assert log.asked == [[("touch", 0)]]  # the purchases' position was known already
    asyncio.run(backlog.learn([0], processed))
    assert len(log.asked) == 1  # once per assignment
    backlog.forget(0)
    asyncio.run(backlog.learn([0], processed))
    assert len(log.asked) == 2


def test_a_start_learnt_before_the_committed_offset_moves_up_to_it() -> None:
    """Faust may seek a new assignment to its committed offsets after the first batch began.

    The first batch then learns the earliest offset as where the purchases start; another
    worker read them all before the move, so no purchase ever comes here to correct it. Held
    at that start, the purchases lagged forever and every journey of the partition stayed
    held (the two-worker backlog test, 2026-12-08).
    """
    settings = load_settings(
        environ={"CRM_TOPICS__TOUCHPOINTS": "touch", "CRM_TOPICS__PURCHASES": "buy"}
    )
    log = TestingLog(settings)
    for _ in range(900):
        log.produce("buy", b"c", b"{}", partition=0)
    backlog = Backlog(TOPICS, log, threshold=50)
    lagging: set[tuple[str, int]] = set()
    processed = {("touch", 0): 5}  # this worker's first batch: touchpoints only
    asyncio.run(backlog.learn([0], processed))  # the consumer knows no committed offset yet
    backlog.mark(lagging, [0], processed)
    assert lagging == {("purchases", 0)}
    log.committed_offsets[("buy", 0)] = 880  # the seek to the committed offsets completes
    backlog.mark(lagging, [0], processed)
    assert lagging == set()  # twenty records behind: no backlog
    backlog.forget(0)  # assigned anew, the committed offset known this time
    asyncio.run(backlog.learn([0], processed))
    del log.committed_offsets[("buy", 0)]  # the consumer forgets it: the learnt start stays
    backlog.mark(lagging, [0], processed)
    assert lagging == set()
