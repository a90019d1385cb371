"""Answers kept per version of the data they were made from: never stale, never built twice.

A query whose answer is costly (``/analytics`` rebuilds the whole report) is answered from here
when the group's data version and the query's parameters are those of a kept answer. The
version is read *before* the data, so a kept answer reflects data at least as new as its
version; versions only grow, so an answer kept under an old version is never served again once
the data has moved. No clock is involved: an answer is exactly as fresh as a rebuild would be.

Builds are serialised and coalesced: a request that finds no answer joins the build queued for
its parameters (one that has not read anything yet, so it sees everything that came before the
request) or queues one. However many callers poll, at most one build runs at a time and each
finished build answers every request that was waiting for it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

# Distinct parameter sets kept (each with its newest answer only): callers choose them.
KEEP_PARAMETER_SETS = 8


class VersionedCache:
    """The newest answer per parameter set, tagged with the data version it was built from."""

    def __init__(self, keep: int = KEEP_PARAMETER_SETS) -> None:
        self.keep = keep
        self._answers: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._queued: dict[Hashable, asyncio.Future[Any]] = {}
        self._lock: asyncio.Lock | None = None  # made in the running loop, on first use
        self.built = 0  # answers built (the costly path)
        self.served_kept = 0  # answers served from the cache

    def _kept(self, version: Hashable, params: Hashable) -> tuple[bool, Any]:
        found = self._answers.get(params)
        if found is None or found[0] != version:
            return False, None
        self._answers.move_to_end(params)
        self.served_kept += 1
        return True, found[1]

    async def answer(
        self,
        params: Hashable,
        version: Callable[[], Awaitable[Hashable]],
        build: Callable[[], Awaitable[Any]],
    ) -> Any:
        """The answer for ``params``: kept if ``version()`` is unchanged, else built once."""
        hit, kept = self._kept(await version(), params)
        if hit:
            return kept
        queued = self._queued.get(params)
        if queued is None:
            queued = asyncio.ensure_future(self._build(params, version, build))
            self._queued[params] = queued
        # A caller that goes away must not cancel the build the others wait for.
        return await asyncio.shield(queued)

    async def _build(
        self,
        params: Hashable,
        version: Callable[[], Awaitable[Hashable]],
        build: Callable[[], Awaitable[Any]],
    ) -> Any:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # From here on this build reads the data: a request arriving now queues another.
            self._queued.pop(params, None)
            current = await version()
            hit, kept = self._kept(current, params)
            if hit:
                return kept
            answer = await build()
            self.built += 1
            self._answers[params] = (current, answer)
            self._answers.move_to_end(params)
            while len(self._answers) > self.keep:
                self._answers.popitem(last=False)
            return answer
