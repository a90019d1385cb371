"""The rebuild budget of the versioned cache, on a fake clock: rebuilds take at most a share of
the time, an outdated answer says so, ``exact`` rebuilds, an unchanged version is exact."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crm_attribution.settings.typed import SettingsError, load_settings
from stream.versioned_cache import RebuildBudget, VersionedCache
from tests.stream.test_versioned_cache import Data as VersionedData


class Clock:
    """Seconds that pass only when a test or a build says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Data(VersionedData):
    """The versioned cache tests' data, whose build takes ``build_seconds`` on the clock."""

    def __init__(self, clock: Clock, build_seconds: float) -> None:
        super().__init__()
        self.clock, self.build_seconds = clock, build_seconds

    async def build(self) -> dict[str, Any]:
        answer = await super().build()
        self.clock.now += self.build_seconds
        return answer


def cache_and_data(share: float, build_seconds: float) -> tuple[VersionedCache, Data, Clock]:
    clock = Clock()
    return VersionedCache(share=share, clock=clock, wall=clock), Data(clock, build_seconds), clock


@pytest.mark.parametrize(
    ("share", "build_seconds", "deferred"), [(0.1, 2.0, 18.0), (0.25, 3.0, 9.0), (0.5, 4.0, 4.0)]
)
def test_a_build_of_t_seconds_defers_the_next_by_t_times_one_over_share_minus_one(
    share: float, build_seconds: float, deferred: float
) -> None:
    async def scenario() -> None:
        cache, data, clock = cache_and_data(share, build_seconds)
        first = await cache.answer("q", data.read_version, data.build)
        built_at = clock.now - build_seconds
        assert first.value == {"value": 1} and not first.newer_data
        ended = clock.now
        data.change()
        # Until ended + deferred, the kept answer, saying it is outdated and what it is.
        for at in (ended, ended + deferred / 2, ended + deferred - 0.01):
            clock.now = at
            served = await cache.answer("q", data.read_version, data.build)
            assert served.value == {"value": 1} and served.newer_data
            assert served.version == 0 and served.built_at == built_at
        assert data.builds == cache.built == 1 and cache.served_outdated == 3
        clock.now = ended + deferred
        rebuilt = await cache.answer("q", data.read_version, data.build)
        assert rebuilt.value == {"value": 2} and not rebuilt.newer_data and rebuilt.version == 1
        assert data.builds == 2
        # The second build defers the third likewise.
        data.change()
        clock.now += deferred - 0.01
        assert (await cache.answer("q", data.read_version, data.build)).newer_data
        clock.now += 0.01
        assert (await cache.answer("q", data.read_version, data.build)).value == {"value": 3}

    asyncio.run(scenario())


def test_exact_rebuilds_within_the_budget_and_defers_the_next_rebuild_too() -> None:
    async def scenario() -> None:
        cache, data, clock = cache_and_data(0.1, 1.0)
        await cache.answer("q", data.read_version, data.build)
        data.change()
        assert (await cache.answer("q", data.read_version, data.build)).newer_data
        exact = await cache.answer("q", data.read_version, data.build, exact=True)
        assert exact.value == {"value": 2} and not exact.newer_data and data.builds == 2
        # Asked again for the same version: kept, not built twice.
        again = await cache.answer("q", data.read_version, data.build, exact=True)
        assert again.value == {"value": 2} and data.builds == 2
        data.change()
        clock.now += 8.99  # the exact build took 1 s: the next may start 9 s after it
        assert (await cache.answer("q", data.read_version, data.build)).value == {"value": 2}
        clock.now += 0.01
        assert (await cache.answer("q", data.read_version, data.build)).value == {"value": 3}

    asyncio.run(scenario())


def test_with_the_budget_spent_and_no_change_the_kept_answer_is_exact() -> None:
    async def scenario() -> None:
        cache, data, clock = cache_and_data(0.1, 5.0)
        await cache.answer("q", data.read_version, data.build)
        clock.now += 1.0  # 44 s of budget left to wait
        for fresh in (False, True):
            served = await cache.answer("q", data.read_version, data.build, exact=fresh)
            assert served.value == {"value": 1} and not served.newer_data
        assert data.builds == 1 and cache.served_kept == 2 and cache.served_outdated == 0

    asyncio.run(scenario())


def test_while_a_build_runs_an_outdated_request_gets_the_kept_answer_at_once() -> None:
    """The poller's case: it never queues rebuild after rebuild, nor waits for one."""

    async def scenario() -> None:
        cache, data, clock = cache_and_data(0.1, 1.0)
        await cache.answer("q", data.read_version, data.build)
        clock.now += 9.0  # the budget allows a rebuild
        data.change()
        data.release.clear()
        data.build_started.clear()
        waiting = asyncio.ensure_future(cache.answer("q", data.read_version, data.build))
        await data.build_started.wait()
        data.change()
        # (A time limit: a poll that waited for the build would wait for ever here.)
        polled = await asyncio.wait_for(cache.answer("q", data.read_version, data.build), 5)
        assert polled.value == {"value": 1} and polled.newer_data and not waiting.done()
        # No kept answer for other parameters: that one waits for its build, after this one.
        other = asyncio.ensure_future(cache.answer("other", data.read_version, data.build))
        await asyncio.sleep(0)
        assert not other.done()
        data.release.set()
        assert (await waiting).value == {"value": 2}
        assert (await other).value == {"value": 3}
        assert data.builds == 3

    asyncio.run(scenario())


def test_a_queued_build_whose_budget_another_spent_serves_the_kept_answer_unless_exact() -> None:
    async def scenario() -> None:
        cache, data, clock = cache_and_data(0.1, 1.0)
        for params in ("a", "b", "c"):
            await cache.answer(params, data.read_version, data.build)
        clock.now += 9.0  # the last of the three builds of 1 s ended 9 s ago
        data.change()
        # All four ask before any build starts: each finds the budget open and queues a build
        # (the two for "c" share one). a's build then spends the budget.
        a, b, c, c_exact = (
            asyncio.ensure_future(cache.answer(p, data.read_version, data.build, exact=x))
            for p, x in (("a", False), ("b", False), ("c", False), ("c", True))
        )
        assert (await a).value == {"value": 2}
        served_b = await b
        assert served_b.value == {"value": 1} and served_b.newer_data
        assert (await c).value == (await c_exact).value == {"value": 2}
        assert not (await c).newer_data
        assert data.builds == 5  # three first builds, then a and c

    asyncio.run(scenario())


def test_a_share_of_one_is_no_budget() -> None:
    async def scenario() -> None:
        cache, data, clock = cache_and_data(1.0, 30.0)
        for value in (1, 2, 3):
            assert (await cache.answer("q", data.read_version, data.build)).value == {
                "value": value
            }
            data.change()
        assert cache.served_outdated == 0

    asyncio.run(scenario())


def test_a_failed_build_spends_the_budget_too() -> None:
    budget = RebuildBudget(0.5, Clock())
    with pytest.raises(LookupError), budget.rebuilding():
        assert not budget.allows()
        budget.clock.now += 2.0  # type: ignore[attr-defined]
        raise LookupError("a worker did not answer")
    assert not budget.allows()
    budget.clock.now += 2.0  # type: ignore[attr-defined]
    assert budget.allows()


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share of the time"):
        RebuildBudget(share)
    with pytest.raises(SettingsError, match="rebuild_cpu_share"):
        load_settings(environ={"CRM_ANALYTICS__REBUILD_CPU_SHARE": str(share)})


def test_the_setting_defaults_to_three_percent_and_is_read_from_the_environment() -> None:
    assert load_settings(environ={}).analytics.rebuild_cpu_share == 0.03
    settings = load_settings(environ={"CRM_ANALYTICS__REBUILD_CPU_SHARE": "0.25"})
    assert settings.analytics.rebuild_cpu_share == 0.25
