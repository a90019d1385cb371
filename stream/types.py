"""Interfaces between the stream's packages, so that concrete modules need not import each other.

The batch runner (``stream.processing``) reads records and asks where input partitions stand
through these protocols; a worker implements them over Kafka (``stream.kafka``), the
broker-free harness (``stream.testing``) over lists of records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from attribution.results import ModelResult

# (topic, partition)
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Record:
    """One input message: where it was read, its key and value bytes, its broker timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None  # seconds since the epoch, as the broker stamped it


class GapSource(Protocol):
    """Reads a range of one input partition outside the consumer group (offsets it skipped)."""

    def read(self, topic: str, partition: int, start: int, end: int) -> AsyncIterator[Record]:
        """The records with ``start <= offset < end``, in offset order."""
        ...


class InputPositions(Protocol):
    """What the consumer knows of where input partitions start and end."""

    def highwater(self, topic: str, partition: int) -> int | None:
        """The end offset the consumer has fetched; ``None`` when unknown or not assigned."""
        ...

    async def starts_and_ends(
        self, partitions: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Where the group starts reading each partition (its committed offset, else the
        earliest), and the end offsets of those the consumer has not fetched yet."""
        ...

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset as the consumer knows it now; ``None`` when unknown."""
        ...


class TableStore(Protocol):
    """A table's local store, written by partition (a Faust store in a worker, see
    stream.stores)."""

    def get(self, key: Any) -> Any:
        """The stored value of ``key``, or ``None``."""
        ...

    def put_many(self, writes: Iterable[tuple[int, Any, Any]]) -> None:
        """Store each ``(partition, key, value)``."""
        ...

    def items(self, keep: Callable[[Any], bool] | None = None) -> Iterable[tuple[Any, Any]]:
        """Every stored item whose key ``keep`` accepts (every item without ``keep``)."""
        ...

    def key_count(self) -> int:
        """How many keys the store holds (may be an estimate; never a scan)."""
        ...


@dataclass(frozen=True)
class MarkovSolution:
    """The Markov model last solved from the group's transition counts."""

    effects: Mapping[str, Any]  # removal_effects and removal_effects_value, per channel
    result: ModelResult
    solved_at: float  # epoch seconds
