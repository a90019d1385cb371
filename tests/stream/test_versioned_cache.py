"""The versioned answer cache: kept while the version stands, rebuilt once when it moves."""

from __future__ import annotations

import asyncio
from typing import Any

from stream.versioned_cache import VersionedCache


class Data:
    """A value with a version, as a worker's tables and their batch counter are."""

    def __init__(self) -> None:
        self.value = 1
        self.version = 0
        self.builds = 0
        self.build_started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    def change(self) -> None:
        self.value += 1
        self.version += 1

    async def read_version(self) -> int:
        return self.version

    async def build(self) -> dict[str, Any]:
        self.builds += 1
        seen = self.value  # the data is read first, then the (slow) report is made
        self.build_started.set()
        await self.release.wait()
        return {"value": seen}


def test_an_unchanged_version_is_answered_from_the_cache_without_a_build() -> None:
    async def scenario() -> None:
        data, cache = Data(), VersionedCache()
        first = await cache.answer("q", data.read_version, data.build)
        second = await cache.answer("q", data.read_version, data.build)
        assert first.value == second.value == {"value": 1}
        assert not first.newer_data and not second.newer_data
        assert data.builds == cache.built == 1 and cache.served_kept == 1
        data.change()
        assert (await cache.answer("q", data.read_version, data.build)).value == {"value": 2}
        assert data.builds == 2

    asyncio.run(scenario())


def test_other_parameters_are_other_answers() -> None:
    async def scenario() -> None:
        data, cache = Data(), VersionedCache(keep=2)
        for params in ("a", "b", "a", "b"):
            await cache.answer(params, data.read_version, data.build)
        assert data.builds == 2
        await cache.answer("c", data.read_version, data.build)  # "a" is the oldest: dropped
        await cache.answer("a", data.read_version, data.build)
        assert data.builds == 4

    asyncio.run(scenario())


def test_a_request_during_a_build_never_gets_data_older_than_itself() -> None:
    async def scenario() -> None:
        data, cache = Data(), VersionedCache()
        data.release.clear()
        early = asyncio.ensure_future(cache.answer("q", data.read_version, data.build))
        await data.build_started.wait()  # the first build has read value 1
        data.change()  # a batch lands while it runs
        late = [
            asyncio.ensure_future(cache.answer("q", data.read_version, data.build))
            for _ in range(5)
        ]
        await asyncio.sleep(0)
        data.release.set()
        assert (await early).value == {"value": 1}
        # The five late requests share one build, made after they came: it sees value 2.
        assert [(await request).value for request in late] == [{"value": 2}] * 5
        assert data.builds == 2
        # And nothing changed since: kept.
        assert (await cache.answer("q", data.read_version, data.build)).value == {"value": 2}
        assert data.builds == 2

    asyncio.run(scenario())


def test_a_failed_build_keeps_nothing() -> None:
    async def scenario() -> None:
        cache = VersionedCache()

        async def version() -> int:
            return 0

        async def fails() -> Any:
            raise LookupError("nothing yet")

        for _ in range(2):
            try:
                await cache.answer("q", version, fails)
            except LookupError:
                pass
            else:
                raise AssertionError("the build's error must reach the caller")
        assert cache.built == 0

    asyncio.run(scenario())
