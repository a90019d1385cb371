"""Answers kept per version of the data they were made from, rebuilt within a budget of time.

A query whose answer is costly (``/analytics`` rebuilds the whole report) is answered from here
when the group's data version and the query's parameters are those of a kept answer. The
version is read *before* the data, so a kept answer reflects data at least as new as its
version; versions only grow, so a kept answer whose version is the current one is exact: with
no data change, the kept answer is served, as exact, whatever the budget.

Rebuilds have a budget: they may take at most ``share`` of the worker's time. After a build
that took T seconds (wall time, from its first read to its answer) the next may start only
T*(1/share - 1) seconds later, and none starts while one runs. Until then a request whose kept
answer is outdated (the data moved since its version) is served that answer, marked as such
(:class:`Answer`: the version it was built from, when, and ``newer_data``). Without that, a
client polling while a worker drains a backlog (the version moves with every batch) keeps a
rebuild running all the time: seconds of CPU each, half of a 2-CPU worker. A caller that needs
the exact current answer asks ``exact=True`` (``/analytics?fresh=1``): it waits for a build as
without a budget. A request with no kept answer for its parameters waits for one too (there
is nothing to serve). A share of 1 is no budget: every outdated request waits for a build.

Builds are serialised and coalesced: a request that has to wait joins the build queued for its
parameters (one that has not read anything yet, so it sees everything that came before the
request) or queues one. At most one build runs at a time, each finished build answers every
request that was waiting for it, and a queued build finding, once its turn comes, an answer
already kept for the current version serves it instead: no answer is built twice for a
version. A queued build that no waiter needs exact checks the budget again at its turn (a
build for other parameters may have spent it) and serves the outdated kept answer if spent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

# Distinct parameter sets kept (each with its newest answer only): callers choose them.
KEEP_PARAMETER_SETS = 8


@dataclass(frozen=True)
class Answer:
    """An answer and how fresh it is."""

    value: Any
    version: Hashable  # the data version it was built from
    built_at: float  # wall time (epoch s) its build read that version: no later change is in it
    newer_data: bool = False  # the data moved since: an outdated answer, within the budget


class RebuildBudget:
    """When the next rebuild may start, so that rebuilds take at most ``share`` of the time."""

    def __init__(self, share: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"a rebuild budget is a share of the time in (0, 1], not {share}")
        self.share = share
        self.clock = clock
        self.next_start = -math.inf
        self.running = False

    def allows(self) -> bool:
        """Whether a rebuild may start now (always with a share of 1)."""
        return self.share >= 1 or (not self.running and self.clock() >= self.next_start)

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """Time a rebuild (a failed one too: it spent the time) and defer the next."""
        self.running = True
        started = self.clock()
        try:
            yield
        finally:
            self.running = False
            ended = self.clock()
            self.next_start = ended + (ended - started) * (1 / self.share - 1)


@dataclass
class _Queued:
    future: asyncio.Future[Answer] = field(init=False)
    exact: bool = False  # a waiter needs the current answer: build whatever the budget


class VersionedCache:
    """The newest answer per parameter set, tagged with the data version it was built from."""

    def __init__(
        self,
        keep: int = KEEP_PARAMETER_SETS,
        share: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.keep = keep
        self.budget = RebuildBudget(share, clock)
        self.wall = wall
        self._answers: OrderedDict[Hashable, Answer] = OrderedDict()
        self._queued: dict[Hashable, _Queued] = {}
        self._lock: asyncio.Lock | None = None  # made in the running loop, on first use
        self.built = 0  # answers built (the costly path)
        self.served_kept = 0  # answers served from the cache, exact (no newer data)
        self.served_outdated = 0  # kept answers served though newer data exists (the budget)

    def _kept(self, version: Hashable, params: Hashable, exact: bool) -> Answer | None:
        found = self._answers.get(params)
        if found is None:
            return None
        if found.version == version:
            self.served_kept += 1
        elif exact or self.budget.allows():
            return None
        else:
            self.served_outdated += 1
            found = replace(found, newer_data=True)
        self._answers.move_to_end(params)
        return found

    async def answer(
        self,
        params: Hashable,
        version: Callable[[], Awaitable[Hashable]],
        build: Callable[[], Awaitable[Any]],
        exact: bool = False,
    ) -> Answer:
        """The answer for ``params``: kept if ``version()`` is unchanged, or outdated while the
        rebuild budget is spent (unless ``exact``), else built once."""
        kept = self._kept(await version(), params, exact)
        if kept is not None:
            return kept
        queued = self._queued.get(params)
        if queued is None:
            queued = _Queued()
            queued.future = asyncio.ensure_future(self._build(params, version, build))
            self._queued[params] = queued
        queued.exact = queued.exact or exact
        # A caller that goes away must not cancel the build the others wait for.
        return await asyncio.shield(queued.future)

    async def _build(
        self,
        params: Hashable,
        version: Callable[[], Awaitable[Hashable]],
        build: Callable[[], Awaitable[Any]],
    ) -> Answer:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # From here on this build reads the data: a request arriving now queues another.
            queued = self._queued.pop(params)
            current = await version()
            kept = self._kept(current, params, queued.exact)
            if kept is not None:
                return kept
            built_at = self.wall()
            with self.budget.rebuilding():
                value = await build()
            self.built += 1
            answer = Answer(value, current, built_at)
            self._answers[params] = answer
            self._answers.move_to_end(params)
            while len(self._answers) > self.keep:
                self._answers.popitem(last=False)
            return answer
