"""Table writes held per key until the next producer flush, then sent once.

Every Faust table assignment is one changelog message, and the pipeline rewrites the same few
aggregate keys (``P|totals``, ``P|credits``, ...) for most journey changes, and the same customer
for each of its events. Between two commits only the last value of a key matters, so the
pipeline writes through :class:`WriteBack`: reads see the pending value, and the pending values
go to the table and its changelog when Faust flushes the producer, which it does before every
offset commit, before giving up partitions in a rebalance and when stopping. Offsets are thus
never committed ahead of the table writes of the events they cover; and a crash loses customer
and aggregate writes of the same events together, which the redelivery then redoes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

# Per Faust app, what its producer buffer's flush runs first (see stream.app).
_FLUSH_HOOKS: weakref.WeakKeyDictionary[Any, list[Callable[[], Any]]] = weakref.WeakKeyDictionary()


def on_flush(app: Any, hook: Callable[[], Any]) -> None:
    """Run ``hook`` at the start of every flush of ``app``'s producer buffer."""
    _FLUSH_HOOKS.setdefault(app, []).append(hook)


def run_flush_hooks(app: Any) -> None:
    """Run the hooks registered for ``app`` (none for an unknown app)."""
    for hook in _FLUSH_HOOKS.get(app, ()):
        hook()


class WriteBack(MutableMapping[Any, Any]):
    """A Faust table seen through a per-key write buffer (partition = the message's)."""

    def __init__(self, table: Any, hold: bool = True) -> None:
        self.table = table
        # Off (the default, worker.hold_table_writes): every write goes straight to the table.
        self.hold = hold
        self.partition = 0  # set by the agent before it processes each message
        self.pending: dict[Any, tuple[Any, int]] = {}
        self.sent = 0
        self.coalesced = 0

    def __getitem__(self, key: Any) -> Any:
        held = self.pending.get(key)
        if held is not None:
            return held[0]
        return self.table[key]

    def get(self, key: Any, default: Any = None) -> Any:
        """The pending value, else the table's, else ``default``."""
        held = self.pending.get(key)
        if held is not None:
            return held[0]
        return self.table.get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self.hold:
            self.table[key] = value
            self.sent += 1
            return
        if key in self.pending:
            self.coalesced += 1
        self.pending[key] = (value, self.partition)

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
        for key, (value, _) in self.pending.items():
            yield key, value
        for key, value in self.table.items():
            if key not in self.pending:
                yield key, value

    def flush(self) -> int:
        """Send every pending value to the table's store and changelog; return how many."""
        pending, self.pending = self.pending, {}
        for key, (value, partition) in pending.items():
            self.table.send_changelog(partition, key, value)
            self.table.data[key] = value
        self.sent += len(pending)
        return len(pending)
