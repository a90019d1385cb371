"""Table writes held per key for one batch of events, then sent once.

Every Faust table assignment is one changelog message, and the pipeline rewrites the same few
aggregate keys (``P|totals``, ``P|credits``, ...) for most journey changes, and the same customer
for each of its events. Within a batch only the last value of a key matters, so the agent writes
through :class:`WriteBack`: reads see the pending value, and at the end of the batch the pending
values go to the table's store and its changelog (sent by :mod:`stream.kafka.outgoing`), before the
batch's offsets are committed (so never ahead of its writes). A crash loses the
customer and aggregate writes of a batch together, and the redelivery of its events redoes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import orjson

from stream.types import TableStore


class WriteBack(MutableMapping[Any, Any]):
    """A table's store seen through a per-key write buffer.

    ``partition_of`` gives a write's changelog partition from its key and value: the writes of
    a batch are made for many partitions, and the ones credited at its end (aggregates) for none
    of the messages in hand, so the message being processed cannot tell.
    """

    def __init__(self, store: TableStore, partition_of: Callable[[Any, Any], int]) -> None:
        self.store = store
        self.partition_of = partition_of
        self.pending: dict[Any, Any] = {}
        # Flushed (partition, value) whose changelog messages are not yet acknowledged.
        self.unstored: dict[Any, tuple[int, Any]] = {}
        self.sent = 0
        self.coalesced = 0

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        """The pending value, else one being sent, else the store's, else ``default``."""
        if key in self.pending:
            return self.pending[key]
        if key in self.unstored:
            return self.unstored[key][1]
        value = self.store.get(key)
        return default if value is None else value

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self.pending:
            self.coalesced += 1
        self.pending[key] = value

    def editable(self, key: Any, default: Callable[[], Any]) -> Any:
        """The batch's own copy of the value of ``key``, to change in place.

        Copied from the table once per batch (a JSON round trip: values are what the changelog
        holds), so a batch that fails half-way leaves the store as it was.
        """
        if key in self.pending:
            self.coalesced += 1
            return self.pending[key]
        current = self.get(key)
        value = default() if current is None else orjson.loads(orjson.dumps(current))
        self.pending[key] = value
        return value

    def __delitem__(self, key: Any) -> None:
        raise TypeError("write-back tables do not delete keys")

    def __iter__(self) -> Iterator[Any]:
        for key, _ in self.items():
            yield key

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def items(  # type: ignore[override]
        self, keep: Callable[[Any], bool] | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """Pending values first, then those on their way, then the store's other items; only
        those whose key ``keep`` accepts, when given (the store then decodes no other value)."""
        for key, value in self.pending.items():
            if keep is None or keep(key):
                yield key, value
        for key, (_, value) in self.unstored.items():
            if key not in self.pending and (keep is None or keep(key)):
                yield key, value
        for key, value in self.store.items(keep):
            if key not in self.pending and key not in self.unstored:
                yield key, value

    def snapshot(self, keep: Callable[[Any], bool] | None = None) -> list[tuple[Any, Any]]:
        """:meth:`items` now, as a list another thread may read while batches go on.

        A value a batch holds to change in place (``editable``: pending, mid-batch) is copied;
        the others are never changed once written (a batch edits its own copy).
        """
        return [
            (key, _copied(value) if key in self.pending else value)
            for key, value in self.items(keep)
        ]

    def stored_count(self) -> int:
        """How many keys the store holds, without a scan (RocksDB: its estimate)."""
        return self.store.key_count()

    def flush(self, send: Callable[[int, Any, Any], None]) -> int:
        """Hand every pending value to ``send(partition, key, value)``; return how many.

        ``send`` puts the changelog message on its way. The values reach the table's store only
        with :meth:`store_sent`, once Kafka has them: a RocksDB store must never hold a write its
        changelog lacks.
        """
        pending, self.pending = self.pending, {}
        partition_of = self.partition_of
        for key, value in pending.items():
            partition = partition_of(key, value)
            send(partition, key, value)
            self.unstored[key] = (partition, value)
        self.sent += len(pending)
        return len(pending)

    def changes_unstored(self, ignored: Callable[[Any], bool]) -> bool:
        """Whether a value on its way differs from the store's (keys ``ignored`` aside).

        One store read per key: meant for a table with a few keys per batch (aggregates).
        """
        store = self.store
        return any(
            not ignored(key) and store.get(key) != value
            for key, (_, value) in self.unstored.items()
        )

    def store_sent(self) -> None:
        """Write the values handed to ``send`` into the store (after delivery)."""
        unstored, self.unstored = self.unstored, {}
        self.store.put_many((partition, key, value) for key, (partition, value) in unstored.items())


def _copied(value: Any) -> Any:
    """A copy of an editable value (JSON, as the changelog holds it); others are immutable."""
    return orjson.loads(orjson.dumps(value)) if isinstance(value, dict | list) else value


def snapshot_items(
    table: MutableMapping[Any, Any], keep: Callable[[Any], bool] | None = None
) -> list[tuple[Any, Any]]:
    """The items of ``table`` (whose keys ``keep`` accepts) as a list a thread may read:
    :meth:`WriteBack.snapshot`, or a plain mapping's items copied (tests, the batch replay)."""
    if isinstance(table, WriteBack):
        return table.snapshot(keep)
    return [(k, _copied(v)) for k, v in table.items() if keep is None or keep(k)]


def editable(table: MutableMapping[Any, Any], key: Any, default: Callable[[], Any]) -> Any:
    """The value of ``key`` to change in place (``default()`` when absent).

    Through a :class:`WriteBack`, the batch's own copy; a plain mapping (tests, the batch
    replay) is changed in place.
    """
    if isinstance(table, WriteBack):
        return table.editable(key, default)
    value = table.get(key)
    if value is None:
        value = table[key] = default()
    return value
