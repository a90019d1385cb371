"""The pipeline's reads and writes of Faust's stores name the partition (memory and RocksDB)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from faust.streams import _current_event
from faust.types import TP

from crm_attribution.settings.typed import load_settings
from stream.pipeline import Pipeline, rocksdb_options


class _Message:
    def __init__(self, partition: int) -> None:
        self.partition = partition


class _Event:
    """What Faust's stores read of the event in hand: its message's partition."""

    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


def test_a_rocksdb_value_lands_in_its_partitions_database_and_is_found_from_any_event(
    tmp_path: Path,
) -> None:
    """Faust's own writes and reads take the partition of the event in hand; in a batch that is
    another customer's partition."""
    settings = load_settings(environ={"CRM_WORKER__STORE": "rocksdb://"})
    pipeline = Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path))
    pipeline.customers_store.put_many([(3, b"c000007", b"\x01record"), (1, b"c000009", b"\x01b")])
    pipeline.aggregates_store.put(2, "2|totals", {"conversions": 1.0})
    rocks = pipeline.customers_table.data
    assert rocks._db_for_partition(3).get(b"c000007") == b"\x01record"  # noqa: SLF001
    assert rocks._db_for_partition(0).get(b"c000007") is None  # noqa: SLF001
    assert rocks._db_for_partition(1).get(b"c000009") == b"\x01b"  # noqa: SLF001
    event = _Event(partition=0)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        assert rocks.get(b"c000007") is None  # Faust looks in partition 0's database only
        assert pipeline.customers_store.get(b"c000007") == b"\x01record"
        assert pipeline.customers_store.get(b"nobody") is None
        assert pipeline.aggregates_store.get("2|totals") == {"conversions": 1.0}
    finally:
        _current_event.reset(token)
    rocks._key_index.clear()  # noqa: SLF001 (found without the index of recent keys too)
    assert pipeline.customers_store.get(b"c000009") == b"\x01b"


def test_a_rocksdb_worker_reopening_its_files_finds_its_values(tmp_path: Path) -> None:
    """What a restarted worker relies on before it reads the changelog after its offset."""
    settings = load_settings(environ={"CRM_WORKER__STORE": "rocksdb://"})
    first = Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path))
    first.customers_store.put(2, b"c1", b"\x01x")
    first.customers_store.set_persisted_offset(TP("customers-changelog", 2), 41)
    first.customers_table.data._dbs.clear()  # noqa: SLF001 (what Faust's stop does)
    gc.collect()  # closes the databases, releasing their locks
    again = Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path))
    rocks = again.customers_table.data
    assert rocks.persisted_offset(TP("customers-changelog", 2)) == 41
    rocks._db_for_partition(2)  # noqa: SLF001 (Faust opens an assigned partition's database)
    assert again.customers_store.get(b"c1") == b"\x01x"


def test_rocksdb_memory_is_bounded_by_the_settings() -> None:
    settings = load_settings(
        environ={
            "CRM_WORKER__STORE": "rocksdb://",
            "CRM_WORKER__ROCKSDB_BLOCK_CACHE_MB": "16",
            "CRM_WORKER__ROCKSDB_WRITE_BUFFER_MB": "2",
        }
    )
    options = rocksdb_options(settings)
    assert options is not None
    assert options["block_cache_size"] == 16 * 1024 * 1024
    assert options["write_buffer_size"] == 2 * 1024 * 1024
    assert options["max_write_buffer_number"] == 2
    assert options["driver"] == "rocksdict"  # the binding stream.stores writes batches with
    assert rocksdb_options(load_settings(environ={})) is None  # the memory store has none


def test_a_memory_value_is_kept_with_its_partition(tmp_path: Path) -> None:
    """Faust drops, after a recovery, the keys its map puts on partitions no longer assigned."""
    pipeline = Pipeline(load_settings(environ={}), "127.0.0.1:1", data_dir=str(tmp_path))
    pipeline.customers_store.put(2, b"c1", b"\x01x")
    memory = pipeline.customers_table.data
    assert memory.data[b"c1"] == b"\x01x" and memory._key_partition[b"c1"] == 2  # noqa: SLF001
    assert pipeline.customers_store.key_count() == 1
    assert list(pipeline.customers_store.items()) == [(b"c1", b"\x01x")]


def test_a_filtered_scan_reads_only_the_values_of_the_keys_it_keeps(tmp_path: Path) -> None:
    """The expiry ticks ask for the totals every few seconds: a RocksDB scan that decoded every
    value (every converted journey) to keep three keys took an eighth of a worker's time."""
    for store in ("memory://", "rocksdb://"):
        settings = load_settings(environ={"CRM_WORKER__STORE": store})
        pipeline = Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path / store[:-3]))
        aggregates = pipeline.aggregates_store
        if store == "rocksdb://":
            rocks = pipeline.aggregates_table.data
            # Scans read the databases of actively assigned partitions: both, here.
            rocks._dbs_for_actives = lambda rocks=rocks: iter(rocks._dbs.values())  # noqa: SLF001
        aggregates.put_many([(0, "0|totals", {"c": 1}), (1, "1|totals", {"c": 2})])
        aggregates.put_many([(1, "1|credits", {"m": {}})])
        kept = dict(aggregates.items(lambda key: key.endswith("|totals")))
        assert kept == {"0|totals": {"c": 1}, "1|totals": {"c": 2}}
        assert len(dict(aggregates.items())) == 3
        if store == "rocksdb://":
            # A value no decoder reads: the filtered scan must not touch it.
            raw_key = rocks._encode_key("1|conv|2026-01-01|0")  # noqa: SLF001
            rocks._db_for_partition(1).put(raw_key, b"\xff not json")  # noqa: SLF001
            kept = dict(aggregates.items(lambda key: key.endswith("|totals")))
            assert kept == {"0|totals": {"c": 1}, "1|totals": {"c": 2}}


def test_a_fetch_brings_at_most_the_configured_kib_of_an_input_partition(tmp_path: Path) -> None:
    """A draining worker holds about one fetch of each input partition as decoded records."""
    default = Pipeline(load_settings(environ={}), "127.0.0.1:1", data_dir=str(tmp_path / "a"))
    assert default.app.conf.consumer_max_fetch_size == 1024 * 1024  # Faust's own default
    settings = load_settings(environ={"CRM_WORKER__FETCH_MAX_KB_PER_PARTITION": "64"})
    small = Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path / "b"))
    assert small.app.conf.consumer_max_fetch_size == 64 * 1024
