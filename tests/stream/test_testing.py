"""The public broker-free harness: a whole dataflow over a list of records in a few lines."""

from __future__ import annotations

import asyncio

import pytest

from crm_attribution.generator import GeneratorConfig, generate
from stream.testing import TestingLog, TestingRun, run_main
from tests.compare import assert_same
from tests.stream.batch_answers import batch_attribution, batch_report, stream_settings


def test_a_generated_log_run_through_the_harness_answers_as_the_batch_commands() -> None:
    settings = stream_settings(partitions=4)
    lines = list(generate(GeneratorConfig(customers=200, days=30, seed=12, invalid_rate=0.01)))

    log = TestingLog(settings)
    log.produce_lines(lines, settings)
    run = run_main(log, settings)

    assert_same(run.attribution(), batch_attribution(lines, settings))
    assert_same(run.analytics(), batch_report(lines, settings))
    assert run.dead_letters() and run.attribution_records()


def test_the_log_partitions_by_key_and_reads_back_ranges() -> None:
    log = TestingLog(stream_settings(partitions=4))
    first = log.produce("t", b"c1", b"a")
    second = log.produce("t", b"c1", b"b")
    assert second.partition == first.partition  # one key, one partition
    assert (first.offset, second.offset) == (0, 1) and log.end_offset("t", first.partition) == 2

    async def read() -> list[bytes | None]:
        return [r.value async for r in log.read("t", first.partition, 1, 5)]

    assert asyncio.run(read()) == [b"b"]


def test_run_main_never_formats_the_whole_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python 3.11's asyncio.run formats its finished main task, result included, when it puts
    # the SIGINT handler back: with the run as that result a large drain spent seconds in repr.
    formatted: list[TestingRun] = []

    def note(self: TestingRun) -> str:
        formatted.append(self)  # repr() swallows an exception raised here: note the call
        return "TestingRun"

    monkeypatch.setattr(TestingRun, "__repr__", note)
    settings = stream_settings(partitions=2)
    log = TestingLog(settings)
    log.produce_lines(list(generate(GeneratorConfig(customers=20, days=10, seed=4))), settings)
    assert run_main(log, settings).results
    assert not formatted
