"""Table writes held per key for one batch of events, then sent once.

Every Faust table assignment is one changelog message, and the pipeline rewrites the same few
aggregate keys (``P|totals``, ``P|credits``, ...) for most journey changes, and the same customer
for each of its events. Within a batch only the last value of a key matters, so the agent writes
through :class:`WriteBack`: reads see the pending value, and at the end of the batch the pending
values go to the table's store and its changelog (sent by :mod:`stream.kafka.outgoing`), before the
batch's offsets are acknowledged (so never committed ahead of its writes). A crash loses the
customer and aggregate writes of a batch together, and the redelivery of its events redoes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import orjson


class WriteBack(MutableMapping[Any, Any]):
    """A Faust table seen through a per-key write buffer.

    ``partition_of`` gives a write's changelog partition from its key and value: the writes of
    a batch are made for many partitions, and the ones credited at its end (aggregates) for none
    of the messages in hand, so the message being processed cannot tell.
    """

    def __init__(self, table: Any, partition_of: Callable[[Any, Any], int]) -> None:
        self.table = table
        self.partition_of = partition_of
        self.pending: dict[Any, Any] = {}
        # Flushed values whose changelog messages are not yet acknowledged.
        self.unstored: dict[Any, Any] = {}
        self.sent = 0
        self.coalesced = 0

    def __getitem__(self, key: Any) -> Any:
        if key in self.pending:
            return self.pending[key]
        if key in self.unstored:
            return self.unstored[key]
        return self.table[key]

    def get(self, key: Any, default: Any = None) -> Any:
        """The pending value, else one being sent, else the table's, else ``default``."""
        if key in self.pending:
            return self.pending[key]
        if key in self.unstored:
            return self.unstored[key]
        return self.table.get(key, default)

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
        yield from self.pending
        for key in self.table:
            if key not in self.pending:
                yield key

    def __len__(self) -> int:
        return len(self.table) + sum(1 for key in self.pending if key not in self.table)

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        """Pending values first, then the table's other keys."""
        yield from self.pending.items()
        for key, value in self.table.items():
            if key not in self.pending:
                yield key, value

    def flush(self, send: Callable[[int, Any, Any], None]) -> int:
        """Hand every pending value to ``send(partition, key, value)``; return how many.

        ``send`` puts the changelog message on its way; it is not Faust's own
        ``table[key] = value``, which takes the partition from the current event (in a batch, not
        the one that made the write) and sends one message at a time. The values reach the
        table's store only with :meth:`store_sent`, once Kafka has them: a RocksDB store must
        never hold a write its changelog lacks.
        """
        pending, self.pending = self.pending, {}
        partition_of = self.partition_of
        for key, value in pending.items():
            send(partition_of(key, value), key, value)
        self.unstored.update(pending)
        self.sent += len(pending)
        return len(pending)

    def store_sent(self) -> None:
        """Write the values handed to ``send`` into the table's store (after delivery)."""
        unstored, self.unstored = self.unstored, {}
        store = self.table.data
        for key, value in unstored.items():
            store[key] = value


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
