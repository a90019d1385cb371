"""Arbitrary bytes and odd JSON in the input topics: every one dead-lettered or applied, none lost.

The short version runs on every test run; CRM_FUZZ_EXAMPLES=2000 is docs/reliability.md's run
(with ``-s`` it prints the counts).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.fuzz.records_fuzz import RoundCounts, describe, fuzz_round, fuzzed_records
from tests.stream.batch_answers import stream_settings

SETTINGS = stream_settings(partitions=3)
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "40"))
TOTALS = RoundCounts(0, 0)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(records=fuzzed_records)
def test_no_fuzzed_record_is_lost(records: list[Any]) -> None:
    counts = fuzz_round(records, SETTINGS)
    TOTALS.tried += counts.tried
    TOTALS.lost += counts.lost
    assert counts.lost == 0, describe(records)


def teardown_module() -> None:
    print(f"\nrecords fuzz: {TOTALS.tried} records tried, {TOTALS.lost} lost")
