"""Which customer topic partitions still have a backlog of unread records.

While one customer topic of a partition lags far behind the other, new journeys wait (see
:meth:`stream.processing.context.Context.credit_through`). A topic partition lags when the
consumer knows of more than ``threshold`` records after the next one this worker would process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from stream.types import InputPositions, TopicPartition


def mark_lagging(
    lagging: set[tuple[str, int]],
    partitions: Iterable[int],
    topics: Mapping[str, str],
    next_offsets: Mapping[TopicPartition, int],
    highwater: Callable[[str, int], int | None],
    backlog: int,
) -> None:
    """Update ``lagging`` (kind, partition) for the partitions' customer topics.

    ``topics`` maps a kind to its topic name; a topic partition lags when the consumer knows of
    more than ``backlog`` records after the next offset this worker would process. A live
    stream is always a few records behind its end, and holding its orders for them would only
    add latency; a backlog is far behind. Unknown means not lagging: a journey is never held
    on a guess.
    """
    for partition in partitions:
        for kind, topic in topics.items():
            next_offset = next_offsets.get((topic, partition))
            end = highwater(topic, partition)
            if next_offset is not None and end is not None and end - next_offset > backlog:
                lagging.add((kind, partition))
            else:
                lagging.discard((kind, partition))


class Backlog:
    """Where this worker's customer topic partitions start and end, as far as it knows."""

    def __init__(
        self, topics: Mapping[str, str], positions: InputPositions | None, threshold: int
    ) -> None:
        self.topics = topics  # kind -> topic name, for the customer topics
        self.positions = positions
        self.threshold = threshold
        # Where this worker starts reading a customer topic partition it has processed nothing
        # of yet, and its end when the consumer has not fetched it yet (asked once per
        # assignment, answered or not). A start may be learnt before the consumer knows the
        # group's committed offset; :meth:`mark` moves it up to that offset once known.
        self.start_offsets: dict[TopicPartition, int] = {}
        self.end_offsets: dict[TopicPartition, int] = {}
        self.asked: set[TopicPartition] = set()

    async def learn(self, partitions: Iterable[int], known: Mapping[TopicPartition, int]) -> None:
        """Ask where the unread customer topic partitions of ``partitions`` start and end.

        Right after an assignment, a batch may hold a partition's purchases before any of its
        touchpoints: without knowing where the touchpoints stand, their backlog would go
        unnoticed and every order would be credited and then re-credited per touch. ``known``:
        the next offsets already recorded (nothing to ask for those).
        """
        if self.positions is None:
            return
        unknown = [
            (topic, partition)
            for partition in partitions
            for topic in self.topics.values()
            if (topic, partition) not in known and (topic, partition) not in self.asked
        ]
        if not unknown:
            return
        self.asked.update(unknown)
        starts, ends = await self.positions.starts_and_ends(unknown)
        self.start_offsets.update(starts)
        self.end_offsets.update(ends)

    def mark(
        self,
        lagging: set[tuple[str, int]],
        partitions: Iterable[int],
        next_offsets: Mapping[TopicPartition, int],
    ) -> None:
        """Update ``lagging`` for ``partitions`` and for those already marked."""
        positions = self.positions
        if positions is None:
            return

        def highwater(topic: str, partition: int) -> int | None:
            end = positions.highwater(topic, partition)
            return self.end_offsets.get((topic, partition)) if end is None else end

        mark_lagging(
            lagging,
            set(partitions) | {p for _, p in lagging},
            self.topics,
            {**self.starts(positions), **next_offsets},
            highwater,
            backlog=self.threshold,
        )

    def starts(self, positions: InputPositions) -> dict[TopicPartition, int]:
        """Where each unread partition starts: the learnt start, or the group's committed
        offset if the consumer knows a later one now.

        Faust learns the committed offsets of a new assignment when it seeks to them, and its
        fetcher is running by then: a worker's first batch can begin before, and learn the
        earliest offset as the start. A partition another worker read to its end before the
        move then never gets a record here, so nothing would correct that start: its purchases
        stayed lagging and every journey held for good (the two-worker backlog test with a
        100-ms fetch wait, 2026-12-08). The committed offset is where the consumer resumes,
        and it only moves forward. Should it ever overstate what was read (Faust once
        committed past records nobody processed, see stream/processing/offsets.py), the
        backlog looks smaller than it is and some orders are credited and then re-credited:
        being lagging only holds journeys, it never changes a number.
        """
        starts = dict(self.start_offsets)
        for (topic, partition), start in starts.items():
            committed = positions.committed(topic, partition)
            if committed is not None and committed > start:
                starts[(topic, partition)] = committed
        return starts

    def forget(self, partition: int) -> None:
        """Drop what is known of a partition (revoked, or assigned anew)."""
        for topic in self.topics.values():
            self.start_offsets.pop((topic, partition), None)
            self.end_offsets.pop((topic, partition), None)
            self.asked.discard((topic, partition))
