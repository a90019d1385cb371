"""Each batch one Kafka transaction, fenced by the consumer group's generation (Kafka's EOS v2).

A worker owns one transactional aiokafka producer. A batch's changelog writes, attribution
records, dead letters and the input offsets it consumed are one transaction: a
``read_committed`` reader (table recovery, downstream consumers) sees all of a batch or none
of it, whenever the worker dies.

Zombies are fenced as Kafka Streams' EOS v2 (KIP-447) does: the offsets go to the transaction
with the consumer's group metadata (generation and member id), so a worker the group has
already replaced gets ``ILLEGAL_GENERATION`` and its whole transaction, changelog writes
included, is aborted. aiokafka 0.14 sends ``TxnOffsetCommit`` version 0 only (no group
metadata); :func:`fence_by_group` makes its producer send version 3, which carries it.

The transactional id is the app id and a worker id kept in the worker's data directory (as
Kafka Streams keeps its process id in its state directory): a worker restarted on its data
directory aborts the transaction its killed predecessor left open at once, instead of the
broker aborting it after ``transaction_timeout_ms``.
"""

from __future__ import annotations

import collections
import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer.sender import TxnOffsetCommitHandler
from aiokafka.producer.transaction_manager import TransactionState
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)
from aiokafka.structs import TopicPartition

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.security import aiokafka_args

# The file in a worker's data directory that keeps its id across restarts.
WORKER_ID_FILE = "crm-worker-id"

# Group coordinator answers that mean this member no longer belongs to the group's generation.
_FENCED_BY_GROUP = {
    22: "ILLEGAL_GENERATION",
    25: "UNKNOWN_MEMBER_ID",
    82: "FENCED_INSTANCE_ID",
}


@dataclass(frozen=True)
class GroupMetadata:
    """The consumer's place in its group when the batch was read."""

    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None = None


class GroupFenced(Exception):
    """The group has moved on without this worker: its transaction must not commit."""


def _abortable(txn_manager: Any, error: Exception) -> None:
    # aiokafka's TransactionManager.error_transaction also forgets the transaction's
    # partitions and group, after which abort_transaction sends no EndTxn at all and the
    # broker's transaction stays open, to be committed by the producer's next transaction
    # (seen on the real broker: tests/integration/test_transactions.py). Keep them.
    txn_manager._transition_to(TransactionState.ABORTABLE_ERROR)
    for _, _, fut in txn_manager._pending_txn_offsets:
        fut.set_exception(error)
    txn_manager._pending_txn_offsets.clear()
    waiter = txn_manager._transaction_waiter
    waiter.set_exception(error)
    waiter.add_done_callback(lambda done: done.exception())  # read by abort, or by nobody


def worker_id(data_dir: str | Path) -> str:
    """This worker's id: kept in its data directory, made once."""
    path = Path(data_dir) / WORKER_ID_FILE
    try:
        existing = path.read_text().strip()
    except OSError:
        existing = ""
    if existing:
        return existing
    made = uuid.uuid4().hex[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(made + "\n")
    return made


class TxnOffsetCommitResponse_v3(Response):
    """Kafka's TxnOffsetCommitResponse, version 3 (flexible)."""

    API_KEY = 28
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                (
                    "partitions",
                    CompactArray(
                        ("partition_index", Int32),
                        ("error_code", Int16),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class TxnOffsetCommitRequest_v3(RequestStruct):
    """Kafka's TxnOffsetCommitRequest, version 3: the first with the group's metadata."""

    FLEXIBLE_VERSION = True
    API_KEY = 28
    API_VERSION = 3
    RESPONSE_TYPE = TxnOffsetCommitResponse_v3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("group_id", CompactString("utf-8")),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("generation_id", Int32),
        ("member_id", CompactString("utf-8")),
        ("group_instance_id", CompactString("utf-8")),
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                (
                    "partitions",
                    CompactArray(
                        ("partition_index", Int32),
                        ("committed_offset", Int64),
                        ("committed_leader_epoch", Int32),
                        ("committed_metadata", CompactString("utf-8")),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class GroupTxnOffsetCommitRequest(Request[TxnOffsetCommitRequest_v3]):
    """A TxnOffsetCommit that carries the group metadata (refused by brokers before 2.5)."""

    API_KEY = 28

    def __init__(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        group: GroupMetadata,
        topics: list[tuple[str, list[tuple[int, int, str]]]],
    ) -> None:
        self._fields = (transactional_id, producer_id, producer_epoch, group, topics)

    def build(self, request_struct_class: type[TxnOffsetCommitRequest_v3]) -> Any:
        """The version 3 request struct."""
        transactional_id, producer_id, producer_epoch, group, topics = self._fields
        return request_struct_class(
            transactional_id,
            group.group_id,
            producer_id,
            producer_epoch,
            group.generation_id,
            group.member_id,
            group.group_instance_id,
            [
                (topic, [(p, offset, -1, metadata, {}) for p, offset, metadata in parts], {})
                for topic, parts in topics
            ],
            {},
        )


class _GroupTxnOffsetCommitHandler(TxnOffsetCommitHandler):
    """aiokafka's handler, sending version 3 and aborting on a group fencing answer."""

    def __init__(self, sender: Any, offsets: Any, group: GroupMetadata) -> None:
        super().__init__(sender, offsets, group.group_id)
        self._group = group

    def create_request(self) -> GroupTxnOffsetCommitRequest:
        txn_manager = self._sender._txn_manager
        offset_data: dict[str, list[tuple[int, int, str]]] = collections.defaultdict(list)
        for tp, offset in sorted(self._offsets.items()):
            offset_data[tp.topic].append((tp.partition, offset.offset, offset.metadata))
        return GroupTxnOffsetCommitRequest(
            txn_manager.transactional_id,
            txn_manager.producer_id,
            txn_manager.producer_epoch,
            self._group,
            list(offset_data.items()),
        )

    def handle_response(self, resp: Any) -> Any:
        for _topic, partitions, _tags in resp.topics:
            for _partition, error_code, _ptags in partitions:
                if error_code in _FENCED_BY_GROUP:
                    group = self._group
                    _abortable(
                        self._sender._txn_manager,
                        GroupFenced(
                            f"{_FENCED_BY_GROUP[error_code]}: group {group.group_id} has moved "
                            f"past generation {group.generation_id} of member {group.member_id}"
                        ),
                    )
                    return None
        # The version 0 shape, for aiokafka's own handling of every other answer.
        shaped = SimpleNamespace(
            errors=[(topic, [(p, code) for p, code, _ in parts]) for topic, parts, _ in resp.topics]
        )
        return super().handle_response(shaped)


async def _txn_offset_commit_with_group(
    sender: Any, group: Callable[[], GroupMetadata], offsets: Any, group_id: str
) -> None:
    # aiokafka's Sender._do_txn_offset_commit, with the handler above.
    if not offsets:
        return
    from aiokafka.errors import GroupAuthorizationFailedError
    from aiokafka.producer.sender import CoordinationType

    try:
        node_id = await sender._find_coordinator(CoordinationType.GROUP, group_id)
    except GroupAuthorizationFailedError as exc:
        sender._txn_manager.error_transaction(exc)
        return
    metadata = group()
    if metadata.group_id != group_id:
        raise ValueError(f"offsets for group {group_id}, metadata of {metadata.group_id}")
    await _GroupTxnOffsetCommitHandler(sender, offsets, metadata).do(node_id)


def fence_by_group(producer: AIOKafkaProducer, group: Callable[[], GroupMetadata]) -> None:
    """Make ``producer`` commit transactional offsets with the group metadata ``group`` gives.

    aiokafka 0.14 (pinned <0.15) has no public way: this replaces its sender's one method
    that sends TxnOffsetCommit (``Sender._do_txn_offset_commit``, same signature).
    """
    sender = producer._sender
    sender._do_txn_offset_commit = functools.partial(_txn_offset_commit_with_group, sender, group)


class TransactionalProducer:
    """The worker's transactional producer: begin, send record batches, commit with offsets."""

    def __init__(
        self,
        bootstrap: str,
        transactional_id: str,
        group: Callable[[], GroupMetadata],
        *,
        max_batch_size: int,
        transaction_timeout_ms: int,
        kafka: KafkaSettings | None = None,
    ) -> None:
        self.transactional_id = transactional_id
        self._group = group
        self._settings = {
            "bootstrap_servers": bootstrap,
            "transactional_id": transactional_id,
            "enable_idempotence": True,
            "acks": "all",
            "max_batch_size": max_batch_size,
            "transaction_timeout_ms": transaction_timeout_ms,
        }
        # TLS and SASL, as every client of the worker (the [kafka] settings).
        self._kafka = kafka or KafkaSettings()
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> AIOKafkaProducer:
        """Start the producer once (this fences any earlier producer of the same id)."""
        if self.producer is None:
            producer = AIOKafkaProducer(**self._settings, **aiokafka_args(self._kafka))
            fence_by_group(producer, self._group)
            await producer.start()
            self.producer = producer
        return self.producer

    def started(self) -> AIOKafkaProducer:
        """The started producer (``start`` must have run)."""
        if self.producer is None:
            raise RuntimeError("the transactional producer has not started")
        return self.producer

    async def begin(self) -> None:
        """Open the batch's transaction."""
        await (await self.start()).begin_transaction()

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Add the consumed ``offsets`` (next offset to read) and commit the transaction."""
        producer = self.started()
        if offsets:
            group = self._group()
            await producer.send_offsets_to_transaction(
                {TopicPartition(t, p): o for (t, p), o in offsets.items()}, group.group_id
            )
        await producer.commit_transaction()

    async def abort(self) -> None:
        """Abort the open transaction (after a failure in it)."""
        await self.started().abort_transaction()

    async def stop(self) -> None:
        """Stop the producer (no transaction may be open)."""
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()
