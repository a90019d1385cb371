"""Kept journeys as compressed blocks: round trips, older values, retractions, sizes."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from attribution.journeys import ConvertedJourney, Journey, NullJourney, Touch
from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.processing import aggregate_keys, journey_blocks
from stream.processing.aggregates import (
    CONVERSION_BUCKETS,
    OLD_CONVERSION_BUCKETS,
    analytics_items,
    converted_journeys,
    converted_table,
    credited_journey,
    record_journeys,
    stored_journeys,
)
from stream.processing.journey_rows import journey_to_row
from stream.testing import TestingLog, run_main

DAY_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def converted(i: int, touches: int = 2) -> ConvertedJourney:
    """A purchase of customer ``c{i % 9}`` with a few touches."""
    return ConvertedJourney(
        f"c{i % 9}",
        f"o-{i}",
        f"p-{i}",
        DAY_MS + 1_000 * i,
        12.5 + i,
        tuple(
            Touch(("email", "sms", "push")[k % 3], DAY_MS + k, f"t-{i}-{k}", f"camp-{k}", "click")
            for k in range(touches)
        ),
    )


def null_path(i: int) -> NullJourney:
    """A null path whose first touch is ``n-{i}-0``."""
    return NullJourney(f"c{i % 9}", (Touch("email", DAY_MS + i, f"n-{i}-0", None, None),))


def pair(journey: Journey) -> list[Any]:
    """The ``[customer_id, row]`` a block keeps of a journey."""
    return [journey.customer_id, journey_to_row(journey)]


class CountingTable(dict[str, Any]):
    """A table that counts its writes."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def test_a_block_gives_back_its_journeys() -> None:
    """Converted journeys (with and without touches) and null paths, keyed by their ids."""
    journeys: list[Journey] = [converted(1), converted(2, touches=0), null_path(3)]
    rows = {journey_blocks.journey_id(pair(j)): pair(j) for j in journeys}
    assert list(rows) == ["p-1", "p-2", "n-3-0"]
    block = journey_blocks.encode(rows)
    assert isinstance(block, str) and block.startswith(journey_blocks.MARKER)
    assert journey_blocks.decode(block) == rows
    assert journey_blocks.pairs(block) == list(rows.values())
    assert journey_blocks.find(block, "p-2") == pair(journeys[1])
    assert journey_blocks.find(block, "p-9") is None
    assert journey_blocks.decode(journey_blocks.encode({})) == {}
    # The changelog is JSON: a block must survive it as it is.
    assert orjson.loads(orjson.dumps(block)) == block


def test_values_written_before_blocks_still_read() -> None:
    """A dict of JSON text (2026-12) and a dict of lists (before) read as the block does."""
    journeys = [converted(i) for i in range(5)]
    as_lists = {j.event_id: pair(j) for j in journeys}
    as_texts = {j.event_id: orjson.dumps(pair(j)).decode() for j in journeys}
    block = journey_blocks.encode(as_lists)
    for value in (as_lists, as_texts, block):
        assert journey_blocks.decode(value) == as_lists
        assert journey_blocks.find(value, "p-3") == pair(journeys[3])
        assert converted_journeys(journey_blocks.pairs(value)) == sorted(
            journeys, key=lambda j: (j.customer_id, j.ts_ms, j.event_id)
        )
    assert journey_blocks.decode(None) == {} and journey_blocks.pairs(None) == []


def test_retracting_a_journey_the_block_does_not_keep_writes_nothing() -> None:
    """No key is added (or rewritten) for a retraction that finds nothing."""
    table = CountingTable()
    record_journeys(table, [(0, -1, converted(1))])
    assert table == {} and table.writes == []
    record_journeys(table, [(0, +1, converted(1))])
    [key] = table.writes
    before = table[key]
    stranger = converted(1 + 9 * 32 * 11)  # another purchase, maybe in the same bucket
    record_journeys(table, [(0, -1, stranger), (0, -1, null_path(4))])
    assert table.writes == [key] and table[key] == before
    # Old values too: the legacy day key and the bucketed dicts are left as they are.
    old = CountingTable({"0|conv|2026-01-01": {"p-77": orjson.dumps(pair(converted(77))).decode()}})
    record_journeys(old, [(0, -1, converted(78))])
    assert old.writes == []


def test_a_batch_writes_each_block_once() -> None:
    """A batch's changes to a key are one decode, one encode, one write."""
    table = CountingTable()
    batch = [(0, +1, converted(i)) for i in range(200)] + [(1, +1, null_path(i)) for i in range(50)]
    record_journeys(table, batch)
    assert len(table.writes) == len(set(table.writes)) == len(table)
    record_journeys(table, [(0, -1, converted(i)) for i in range(0, 200, 2)])
    kept = stored_journeys(table.items())
    assert sorted(j.event_id for j in kept if isinstance(j, ConvertedJourney)) == sorted(
        f"p-{i}" for i in range(1, 200, 2)
    )
    assert sum(isinstance(j, NullJourney) for j in kept) == 50


def test_compression_shrinks_the_kept_journeys() -> None:
    """A block is smaller than the JSON text each journey was kept as, even for one journey."""
    one = converted(5)
    text = orjson.dumps(pair(one)).decode()
    assert len(journey_blocks.encode({one.event_id: pair(one)})) < len(text)
    many = {j.event_id: pair(j) for j in (converted(i, touches=i % 4) for i in range(40))}
    texts = sum(len(orjson.dumps(p)) + len(e) for e, p in many.items())
    assert len(journey_blocks.encode(many)) < texts / 3


def old_format(table: dict[str, Any]) -> dict[str, Any]:
    """The table as older workers kept it: journeys over 32 keys a day as dicts of id -> JSON
    text (2026-12-02 to 12-06), a third of the converted ones in their day's single key (before)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        partition, kind, tail = aggregate_keys.parse(key)
        if kind not in (aggregate_keys.CONVERSIONS, aggregate_keys.NULL_PATHS):
            out[key] = value
            continue
        day = tail.partition("|")[0]
        for journey, pair in journey_blocks.decode(value).items():
            old = zlib.crc32(journey.encode()) % OLD_CONVERSION_BUCKETS
            if kind == aggregate_keys.NULL_PATHS:
                where = aggregate_keys.null_paths(partition, day, old)
            elif len(journey) % 3:
                where = aggregate_keys.conversions(partition, day, old)
            else:
                where = aggregate_keys.conversions(partition, day, None)
            out.setdefault(where, {})[journey] = orjson.dumps(pair).decode()
    return out


def test_a_table_of_older_values_gives_the_same_answers() -> None:
    """Migration: a worker that finds older values answers as if it had written blocks, and its
    next edits of them keep the same journeys."""
    settings = load_settings(environ={"CRM_ATTRIBUTION__CREDIT_INTERVALS": "true"})
    log = TestingLog(settings)
    log.produce_lines(generate(GeneratorConfig(customers=120, days=40, seed=3)), settings)
    run = run_main(log, settings)
    new = run.aggregates
    old = old_format(new)
    assert any(isinstance(v, str) and v.startswith("j1:") for v in new.values())
    assert not any(isinstance(v, str) and v.startswith("j1:") for v in old.values())
    tails = {k: aggregate_keys.parse(k)[2] for k in old if "|conv|" in k or "|null|" in k}
    legacy = {k for k, t in tails.items() if "|" not in t}  # day keys without a bucket
    beyond = {k for k, t in tails.items() if "|" in t and int(t[-2:]) >= CONVERSION_BUCKETS}
    assert legacy and beyond
    partitions = set(range(settings.topics.partitions))
    assert stored_journeys(old.items()) == stored_journeys(new.items())
    journeys = stored_journeys(new.items())
    assert any(isinstance(j, NullJourney) for j in journeys)
    purchases = [j for j in journeys if isinstance(j, ConvertedJourney)]
    assert purchases
    shares = [analytics_items(t.items(), partitions) for t in (old, new)]
    rows = [[r for p in s.values() for r in p["journeys"]] for s in shares]
    assert (
        converted_journeys(rows[0])
        == converted_journeys(rows[1])
        == sorted(purchases, key=lambda j: (j.customer_id, j.ts_ms, j.event_id))
    )
    assert vars(converted_table(rows[0])).keys() == vars(converted_table(rows[1])).keys()
    for name, value in vars(converted_table(rows[1])).items():
        assert str(getattr(converted_table(rows[0]), name)) == str(value), name
    for journey in purchases:
        for partition in partitions:
            args = (partition, journey.event_id, journey.ts_ms)
            assert credited_journey(old, *args) == credited_journey(new, *args)
    # The next batch retracts some journeys and keeps new ones: the same in both tables.
    changes: list[tuple[int, int, Journey]] = []
    for partition in partitions:
        for journey in journeys[partition::5]:
            changes.append((partition, -1, journey))
    changes += [(0, +1, converted(i)) for i in range(30)]
    record_journeys(old, changes)
    record_journeys(new, changes)
    # Retractions found journeys in keys no longer written to: those were rewritten, as blocks.
    assert any(isinstance(old[k], str) for k in legacy)
    assert any(isinstance(old[k], str) for k in beyond)
    assert stored_journeys(old.items()) == stored_journeys(new.items())
    assert stored_journeys(new.items()) != journeys  # the batch changed something
    for journey in purchases:
        for partition in partitions:
            args = (partition, journey.event_id, journey.ts_ms)
            assert credited_journey(old, *args) == credited_journey(new, *args)
