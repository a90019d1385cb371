"""One partition's customers with an open journey, and since when: compact, for every customer.

A worker indexes every customer of its partitions whose journey is open (the expiry ticks look
for the due ones). As a dict, an entry (its str, its int, its slot) took about 85 bytes per
customer; here most customers sit in two sorted numpy arrays, the ids as UTF-8 bytes and the
times as int64 (an id's length plus 8 bytes), and the changes since the last merge in a small
dict that is merged in when it grows to a quarter of the arrays.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from attribution.journeys import JourneyRules
from stream.processing.customer_state import expiry_cutoff, expiry_due

_MIN_CHANGES = 1024


class OpenIndex:
    """Customer id -> start of its open journey (epoch ms), for one partition."""

    def __init__(self, entries: Iterable[tuple[str, int]] = ()) -> None:
        self.ids: NDArray[np.bytes_] = np.array([], dtype="S1")
        self.since: NDArray[np.int64] = np.array([], dtype=np.int64)
        # Newer than the arrays: a time, or None for a customer whose journey closed.
        self.changes: dict[str, int | None] = dict(entries)
        self.merge()

    def set(self, customer_id: str, since: int | None) -> None:
        """Record a customer's open journey start (``None``: no open journey)."""
        self.changes[customer_id] = since
        if len(self.changes) > max(_MIN_CHANGES, len(self.ids) // 4):
            self.merge()

    def merge(self) -> None:
        """Fold the changes into the arrays."""
        # numpy's fixed-width bytes drop trailing NUL bytes: such an id stays a change.
        merged = {c: s for c, s in self.changes.items() if not c.endswith("\x00")}
        self.changes = {c: s for c, s in self.changes.items() if c.endswith("\x00")}
        if not merged:
            return
        changed = np.array([c.encode("utf-8") for c in merged], dtype=np.bytes_)
        keep = ~np.isin(self.ids, changed) if len(changed) else np.ones(len(self.ids), bool)
        added = [(c.encode("utf-8"), s) for c, s in merged.items() if s is not None]
        new_ids = np.array([c for c, _ in added], dtype=np.bytes_)
        new_since = np.array([s for _, s in added], dtype=np.int64)
        ids = np.concatenate([self.ids[keep], new_ids])
        since = np.concatenate([self.since[keep], new_since])
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.since = since[order]

    def _in_arrays(self, customer_ids: list[str]) -> NDArray[np.bool_]:
        if not len(self.ids) or not customer_ids:
            return np.zeros(len(customer_ids), dtype=bool)
        return np.isin(
            np.array([c.encode("utf-8") for c in customer_ids], dtype=np.bytes_), self.ids
        )

    def __len__(self) -> int:
        changed = [c for c in self.changes if not c.endswith("\x00")]
        known = int(self._in_arrays(changed).sum())
        opened = sum(1 for s in self.changes.values() if s is not None)
        return len(self.ids) - known + opened

    def due(self, as_of_ms: int, rules: JourneyRules) -> list[str]:
        """Customers whose open journey becomes a null path at ``as_of_ms``."""
        # expiry_due over the arrays at once.
        late = self.since < expiry_cutoff(as_of_ms, rules)
        changes = self.changes
        out = [
            c for c in (raw.decode("utf-8") for raw in self.ids[late].tolist()) if c not in changes
        ]
        out += [
            c
            for c, since in changes.items()
            if since is not None and expiry_due(since, as_of_ms, rules)
        ]
        return out
