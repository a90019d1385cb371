"""Held table writes: reads see them at once, the changelog gets each key once per flush, and
the store gets the values only after delivery, in the partition each belongs to.

The stores are a worker's own: Faust's memory and RocksDB stores behind stream.stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_attribution.settings.typed import load_settings
from stream.pipeline import Pipeline
from stream.processing import aggregate_keys
from stream.processing.write_back import WriteBack, editable, snapshot_items
from stream.stores import FaustTableStore


def aggregate_partition(key: str, value: Any) -> int:
    return aggregate_keys.partition_of(key)


@pytest.fixture(params=["memory://", "rocksdb://"])
def pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Pipeline:
    settings = load_settings(environ={"CRM_WORKER__STORE": request.param})
    return Pipeline(settings, "127.0.0.1:1", data_dir=str(tmp_path))


class Changelog(list[tuple[int, Any, Any]]):
    def send(self, partition: int, key: Any, value: Any) -> None:
        """What the pipeline's changelog sender does with a flushed write."""
        self.append((partition, key, value))


def test_reads_see_held_writes_and_a_flush_sends_the_last_value_once(pipeline: Pipeline) -> None:
    store = pipeline.aggregates_store
    store.put(1, "1|totals", {"conversions": 1})
    held = WriteBack(store, aggregate_partition)
    held["1|totals"] = {"conversions": 2}
    held["1|totals"] = {"conversions": 3}
    held["2|credits"] = {"linear": {}}
    assert held["1|totals"] == {"conversions": 3} and held.get("nope") is None
    changelog = Changelog()
    assert held.flush(changelog.send) == 2
    assert store.get("1|totals") == {"conversions": 1}  # the store waits for the delivery
    assert held["1|totals"] == {"conversions": 3}  # while reads see the value on its way
    held.store_sent()
    assert changelog == [(1, "1|totals", {"conversions": 3}), (2, "2|credits", {"linear": {}})]
    assert store.get("1|totals") == {"conversions": 3} and held.coalesced == 1
    assert store.get("2|credits") == {"linear": {}}
    assert held.flush(changelog.send) == 0


def test_keys_cannot_be_deleted(pipeline: Pipeline) -> None:
    with pytest.raises(TypeError):
        del WriteBack(pipeline.aggregates_store, aggregate_partition)["k"]


def test_each_key_goes_to_its_own_changelog_partition(pipeline: Pipeline) -> None:
    """Aggregates credited at the end of a batch belong to no message in hand: the key decides.

    (Once they went to the last message's partition: a recovery then read a stale ``2|totals``
    from another partition's changelog and the restart test lost a quarter of a partition.)
    """
    held = WriteBack(pipeline.aggregates_store, aggregate_partition)
    for key in ["3|totals", "0|credits", "12|markov|a", "3|totals"]:
        held[key] = key
    changelog = Changelog()
    held.flush(changelog.send)
    assert sorted(changelog) == [(0, "0|credits", "0|credits"), (3, "3|totals", "3|totals"),
                                 (12, "12|markov|a", "12|markov|a")]  # fmt: skip
    # A customer's entry goes where its events arrive, whatever partitioner put them there.
    by_customer = WriteBack(pipeline.customers_store, lambda key, value: value[0])
    by_customer[b"c000007"] = b"\x03c7"
    by_customer[b"c000008"] = b"\x00c8"
    customers = Changelog()
    by_customer.flush(customers.send)
    assert customers == [(3, b"c000007", b"\x03c7"), (0, b"c000008", b"\x00c8")]


def test_editable_values_are_the_batchs_own_copy_until_the_flush(pipeline: Pipeline) -> None:
    """A batch changes aggregates in place; the store must not see it before the flush."""
    store: FaustTableStore = pipeline.aggregates_store
    store.put(0, "0|credits", {"linear": {"email": [1.0, 10.0]}})
    held = WriteBack(store, aggregate_partition)
    credits = editable(held, "0|credits", dict)
    credits["linear"]["email"][0] += 1.0
    assert editable(held, "0|credits", dict) is credits  # copied once per batch
    assert store.get("0|credits") == {"linear": {"email": [1.0, 10.0]}}
    assert held["0|credits"] == {"linear": {"email": [2.0, 10.0]}}
    editable(held, "0|totals", dict)["conversions"] = 1.0
    changelog = Changelog()
    held.flush(changelog.send)
    held.store_sent()
    assert store.get("0|credits") == {"linear": {"email": [2.0, 10.0]}}
    assert sorted(changelog) == [(0, "0|credits", {"linear": {"email": [2.0, 10.0]}}),
                                 (0, "0|totals", {"conversions": 1.0})]  # fmt: skip
    plain: dict[str, object] = {}
    editable(plain, "1|totals", dict)["null"] = 2.0  # a plain mapping is changed in place
    assert plain == {"1|totals": {"null": 2.0}}


def test_a_snapshot_keeps_what_a_batch_goes_on_changing_in_place(pipeline: Pipeline) -> None:
    """/analytics reads a snapshot on a thread while batches go on: a batch paused mid-way
    holds values it will change in place (P|funnel), which the snapshot must not share."""
    store: FaustTableStore = pipeline.aggregates_store
    store.put(0, "0|funnel", {"n": 1, "counts": {"email": 1}})
    held = WriteBack(store, aggregate_partition)
    held["1|funnel"] = {"n": 5, "counts": {"push": 5}}
    held.flush(Changelog().send)  # written by an earlier batch, on its way to the store
    sums = editable(held, "0|funnel", dict)
    sums["n"] += 1
    snapshot = dict(snapshot_items(held))
    sums["n"] += 1
    sums["counts"]["sms"] = 1  # a key added while a thread might iterate the counts
    assert snapshot["0|funnel"] == {"n": 2, "counts": {"email": 1}}
    assert snapshot["1|funnel"] is held["1|funnel"]  # written values are never changed
    only_one = snapshot_items(held, lambda key: key.startswith("1|"))
    assert only_one == [("1|funnel", {"n": 5, "counts": {"push": 5}})]
    plain = {"0|funnel": {"n": 1, "counts": {}}}
    copied = dict(snapshot_items(plain))
    plain["0|funnel"]["n"] = 9
    assert copied == {"0|funnel": {"n": 1, "counts": {}}}
