"""The pipeline's access to Faust's table stores, by partition, for the memory and RocksDB stores.

The batch runner writes a batch's values after Kafka has their changelog messages, each into
the partition its key belongs to (stream.processing.write_back). Faust's own ``store[key] =
value`` takes the partition from the event being processed, which in a batch is another
partition's or none (its RocksDB store then fails an assertion), and Faust's RocksDB reads look
only in that event's partition database: every customer of the batch's other partitions would
read as new. So the pipeline reads and writes the stores here, naming the partition on writes
and looking a key up in every partition database this worker has open on reads (a bloom filter
answers most of them without a read).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import Store as RocksStore


class FaustTableStore:
    """Implements :class:`stream.types.TableStore` over a Faust table's store.

    ``store`` is a callable: Faust creates a table's store on first use.
    """

    def __init__(self, store: Callable[[], Any]) -> None:
        self._store = store

    def get(self, key: Any) -> Any:
        """The stored value of ``key``, or ``None``."""
        store = self._store()
        if isinstance(store, RocksStore):
            # Faust's lookup over its open databases, last partition of a key remembered.
            found = store._get_bucket_for_key(store._encode_key(key))  # noqa: SLF001
            return None if found is None else store._decode_value(found.value)  # noqa: SLF001
        return _memory(store).data.get(key)

    def put_many(self, writes: Iterable[tuple[int, Any, Any]]) -> None:
        """Store each ``(partition, key, value)``: one RocksDB write batch per partition."""
        store = self._store()
        if isinstance(store, RocksStore):
            _rocks_put_many(store, writes)
            return
        memory = _memory(store)
        data, partitions = memory.data, memory._key_partition  # noqa: SLF001
        for partition, key, value in writes:
            data[key] = value
            # Faust drops, after a recovery, the keys of partitions no longer assigned by this map.
            partitions[key] = partition

    def put(self, partition: int, key: Any, value: Any) -> None:
        """Store ``value`` under ``key`` in ``partition``."""
        self.put_many([(partition, key, value)])

    def items(self, keep: Callable[[Any], bool] | None = None) -> Iterator[tuple[Any, Any]]:
        """Every stored item whose key ``keep`` accepts (all without it; RocksDB: of the
        partitions this worker actively owns)."""
        store = self._store()
        if isinstance(store, RocksStore):
            yield from _rocks_items(store, keep)
            return
        data = _memory(store).data
        if keep is None:
            yield from data.items()
            return
        for key, value in data.items():
            if keep(key):
                yield key, value

    def key_count(self) -> int:
        """How many keys the store holds: exact in memory, RocksDB's own estimate (no scan)."""
        store = self._store()
        if isinstance(store, RocksStore):
            return sum(
                int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
                for db in store._dbs_for_actives()  # noqa: SLF001
            )
        return len(_memory(store).data)

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        """Remember the newest changelog offset the store holds (RocksDB; memory keeps none)."""
        self._store().set_persisted_offset(tp, offset)


def _rocks_put_many(store: RocksStore, writes: Iterable[tuple[int, Any, Any]]) -> None:
    # rocksdict is the optional `rocksdb` extra (the pipeline asks Faust for that driver).
    from rocksdict import WriteBatch

    encode_key, encode_value = store._encode_key, store._encode_value  # noqa: SLF001
    key_index = store._key_index  # noqa: SLF001
    batches: defaultdict[int, WriteBatch] = defaultdict(lambda: WriteBatch(raw_mode=True))
    for partition, key, value in writes:
        raw_key = encode_key(key)
        batches[partition].put(raw_key, encode_value(value))
        key_index[raw_key] = partition
    for partition, batch in batches.items():
        store._db_for_partition(partition).write(batch)  # noqa: SLF001


def _rocks_items(
    store: RocksStore, keep: Callable[[Any], bool] | None
) -> Iterator[tuple[Any, Any]]:
    # Keys first, values only for the keys kept: a scan for a few small keys (the totals the
    # expiry ticks read every few seconds) must not read and decode every converted journey.
    decode_key, decode_value = store._decode_key, store._decode_value  # noqa: SLF001
    if keep is None:
        for raw_key, raw_value in store._iteritems():  # noqa: SLF001
            yield decode_key(raw_key), decode_value(raw_value)
        return
    offset_key = store.offset_key
    for db in store._dbs_for_actives():  # noqa: SLF001
        for raw_key in db.keys():  # noqa: SIM118 - an Rdict's keys alone, no values read
            if raw_key == offset_key:
                continue
            key = decode_key(raw_key)
            if keep(key):
                raw_value = db.get(raw_key)
                if raw_value is not None:
                    yield key, decode_value(raw_value)


def _memory(store: Any) -> MemoryStore:
    if not isinstance(store, MemoryStore):
        raise TypeError(f"unsupported table store {type(store).__name__}")
    return store
