"""The aggregates table's values: conversion rows spread over bounded keys, and summed back."""

from __future__ import annotations

import orjson

from attribution.journeys import ConvertedJourney, Touch
from stream.processing import aggregate_keys, journey_blocks
from stream.processing.aggregates import (
    CONVERSION_BUCKETS,
    analytics_items,
    converted_journeys,
    converted_table,
    items_by_partition,
    merge_partitions,
    record_conversion,
)
from stream.processing.journey_rows import journey_to_row


def test_a_days_conversions_are_spread_over_bounded_keys_and_all_come_back() -> None:
    """One key per day grew with every conversion and was rewritten whole each time."""
    aggregates: dict[str, object] = {}
    day_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    journeys = [
        ConvertedJourney(
            f"c{i}", f"o{i}", f"p{i}", day_ms + i, 10.0, (Touch("email", day_ms, f"t{i}"),)
        )
        for i in range(400)
    ]
    for journey in journeys:
        record_conversion(aggregates, 0, +1, journey)
    record_conversion(aggregates, 0, -1, journeys[0])  # a retraction finds its bucket
    legacy = journeys[1]  # kept, by an older worker, in the day's single key
    aggregates["0|conv|2026-01-01"] = {legacy.event_id: ["c1", []]}
    record_conversion(aggregates, 0, -1, legacy)
    record_conversion(aggregates, 0, +1, legacy)
    assert journey_blocks.decode(aggregates["0|conv|2026-01-01"]) == {}
    keys = [k for k in aggregates if k.startswith("0|conv|2026-01-01|")]
    assert CONVERSION_BUCKETS // 2 < len(keys) <= CONVERSION_BUCKETS
    assert (
        max(len(journey_blocks.decode(aggregates[k])) for k in keys) < 4 * 400 / CONVERSION_BUCKETS
    )
    rows = analytics_items(aggregates.items(), {0})[0]["journeys"]
    assert sorted(j.customer_id for j in converted_journeys(rows)) == sorted(
        f"c{i}" for i in range(1, 400)
    )
    assert converted_journeys(rows)[0] == journeys[1]  # c1 sorts first


def test_conversion_rows_of_older_workers_still_read() -> None:
    """Rows were lists of JSON values before they became one JSON string each."""
    journey = ConvertedJourney("c7", "o7", "p7", 5, 2.0, (Touch("sms", 1, "t7", "camp", None),))
    written: dict[str, object] = {}
    record_conversion(written, 0, +1, journey)
    [(key, block)] = written.items()
    legacy = [["c7", journey_to_row(journey)]]
    texts = [orjson.dumps(pair).decode() for pair in legacy]
    assert converted_journeys(journey_blocks.pairs(block)) == [journey]
    assert converted_journeys(legacy) == converted_journeys(texts) == [journey]


def test_the_table_of_conversion_rows_is_the_table_of_their_journeys() -> None:
    """``converted_table`` skips the journey objects: same journeys, order and codes."""
    import numpy as np

    from attribution.analytics.converted import converted_from_journeys

    journeys = [
        ConvertedJourney(f"c{i % 7}", f"o{i}", f"p{i}", 1_000 - i % 5, 1.5 * i,
                         tuple(Touch(ch, i, f"t{i}{ch}", "camp" if i % 2 else None, None)
                               for ch in ("email", "sms", "push")[: i % 4]))
        for i in range(60)
    ]  # fmt: skip
    written: dict[str, object] = {}
    for journey in journeys:
        record_conversion(written, 0, +1, journey)
    rows = analytics_items(written.items(), {0})[0]["journeys"]
    legacy = [["c9", journey_to_row(ConvertedJourney("c9", "o", "p", 3, 2.0, ()))]]
    mine = converted_table([*rows, *legacy])
    theirs = converted_from_journeys(converted_journeys([*rows, *legacy]))
    assert mine.count == 61 and mine.lengths.sum() > 0 and mine.campaigns == ["camp"]
    for name, value in vars(theirs).items():
        other = getattr(mine, name)
        if isinstance(value, np.ndarray):
            assert np.array_equal(other, value), name
        elif hasattr(value, "equals"):
            assert other.equals(value), name
        else:
            assert other == value, name


def test_keys_name_their_partition_and_a_share_sums_per_partition() -> None:
    key = aggregate_keys.markov_state(12, "email")
    assert key == "12|markov|email" and aggregate_keys.partition_of(key) == 12
    assert aggregate_keys.parse(aggregate_keys.daily(3, "2026-01-02")) == (3, "daily", "2026-01-02")
    items = {
        aggregate_keys.totals(0): {"conversions": 1.0, "wm": 5, "invalid": 1},
        aggregate_keys.totals(1): {"conversions": 2.0, "wm": 9, "invalid_offsets": {"t": 3}},
        aggregate_keys.credits(1): {"linear": {"email": [2.0, 20.0]}},
        aggregate_keys.tick(0): 4,
        aggregate_keys.tick(1): 7,
        aggregate_keys.totals(2): {"conversions": 40.0},  # a partition not owned here
    }
    share = items_by_partition(items.items(), {0, 1})
    assert sorted(share) == ["0", "1"] and sorted(share["1"]) == ["credits", "tick", "totals"]
    merged = merge_partitions(share)
    assert merged.totals == {"conversions": 3.0} and merged.invalid == 1
    assert (merged.watermark, merged.tick) == (9, 4)  # newest event, slowest expiry clock
    assert merged.credits == {"linear": {"email": [2.0, 20.0]}}
    assert items_by_partition(items.items(), {0, 1}, {"tick"}) == {
        "0": {"tick": 4},
        "1": {"tick": 7},
    }
