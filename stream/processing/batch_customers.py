"""The customers a batch touches: decoded once, rebuilt together, written once.

Events are first inserted into their customers' states (:meth:`BatchCustomers.load`,
:meth:`BatchCustomers.touch`); :meth:`BatchCustomers.flush` then rebuilds the journeys of every
customer that needs it with one call of the journey kernel
(:mod:`stream.processing.journey_shapes`), keeps their changes for crediting, writes each
customer's record once and brings the partition indexes in step. The runner flushes before an
expiry tick (which reads the indexes) and at the end of the batch.

A customer's journeys after a flush are those of all its events so far, exactly as if rebuilt
after each event: the journeys of a set of events do not depend on the order it arrived in.
What a batch no longer makes is the journeys in between (a purchase credited, then retracted
and credited again when a touch of the same batch arrives); their records cancelled out.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from stream.processing import customer_record
from stream.processing.context import Context
from stream.processing.crediting import PendingChanges
from stream.processing.customer_state import CustomerState
from stream.processing.journey_shapes import journey_shapes
from stream.processing.outcome import Outcome
from stream.processing.partition_indexes import PartitionIndexes


@dataclass
class _Touched:
    """A customer's state in the batch, and what the flush must do with it."""

    state: CustomerState
    partition: int
    rebuild: bool = False
    # History settled before this time may be compacted: the partition's horizon when the
    # customer was last touched, as a rebuild right then would have used. (A later horizon
    # would compact more than event-by-event processing, and refuse as too late events that
    # it still places.)
    compact_before_ms: int | None = None
    # Outcomes of the customer's purchase events in the batch, with their event times: the
    # flush says whether each one's journey is held.
    purchases: list[tuple[Outcome, int]] = field(default_factory=list)


class BatchCustomers:
    """Customers' states decoded once per batch and written back once, rebuilt together."""

    def __init__(
        self,
        ctx: Context,
        customers: MutableMapping[bytes, Any],
        indexes: PartitionIndexes,
        pending: PendingChanges,
    ) -> None:
        self.ctx = ctx
        self.customers = customers
        self.indexes = indexes
        self.pending = pending
        self.touched: dict[str, _Touched] = {}
        # Outcomes of a flush made mid-batch (settle), handed out by the next flush.
        self.settled: list[Outcome] = []
        # Since the runner started: customer records decoded (a customer's first touch in a
        # batch), and customers whose journeys a flush rebuilt. Per event, they are what the
        # arrival order costs: the same events spread over more batches decode more.
        self.decoded = 0
        self.rebuilt = 0

    def load(self, customer_id: str) -> CustomerState:
        """The customer's state as the batch has it so far."""
        entry = self.touched.get(customer_id)
        if entry is not None:
            return entry.state
        self.decoded += 1
        return customer_record.decode(customer_id, self.customers.get(customer_id.encode("utf-8")))

    def touch(
        self, customer_id: str, state: CustomerState, partition: int, rebuild: bool = False
    ) -> None:
        """Write ``state`` at the flush; with ``rebuild``, rebuild its journeys first."""
        entry = self.touched.get(customer_id)
        if entry is None:
            entry = self.touched[customer_id] = _Touched(state, partition)
        entry.partition = partition
        entry.rebuild = entry.rebuild or rebuild
        entry.compact_before_ms = self.ctx.settled_before(partition)

    def home_partition(self, customer_id: str) -> int | None:
        """The partition the customer's state lives with (None: a customer not seen yet)."""
        entry = self.touched.get(customer_id)
        if entry is not None:
            return entry.partition
        return customer_record.partition(self.customers.get(customer_id.encode("utf-8")))

    def purchase(self, customer_id: str, outcome: Outcome, ts_ms: int) -> None:
        """Note a purchase of a touched customer, whose held flag the flush will set."""
        self.touched[customer_id].purchases.append((outcome, ts_ms))

    def advance(self, customer_id: str, partition: int, as_of_ms: int) -> None:
        """Move a customer's expiry clock to the watermark (may turn its journey null)."""
        state = self.load(customer_id)
        moved, due = state.set_clock(as_of_ms, self.ctx.rules)
        if moved:
            self.touch(customer_id, state, partition, rebuild=due)

    def release(self, customer_id: str, partition: int) -> None:
        """Credit a customer's held journeys that the partition's credit horizon now reaches."""
        state = self.load(customer_id)
        # Touched even when nothing is due, so that the flush puts it back in the held index.
        self.touch(
            customer_id,
            state,
            partition,
            rebuild=state.holds_through(self.ctx.credit_through(partition)),
        )

    def settle(self) -> None:
        """Flush now, mid-batch, for an update that reads the journeys rebuilt so far (a
        refund); the outcomes wait for the next :meth:`flush`."""
        # flush() hands back (and clears) what earlier settles kept, so this replaces them.
        self.settled = self.flush()

    def flush(self) -> list[Outcome]:
        """Rebuild, keep the changes for crediting, write back; one outcome per rebuild."""
        touched, self.touched = self.touched, {}
        settled, self.settled = self.settled, []
        if not touched:
            return settled
        ctx = self.ctx
        rebuilding = [(cid, entry) for cid, entry in touched.items() if entry.rebuild]
        self.rebuilt += len(rebuilding)
        shapes = journey_shapes(
            [(entry.state.events, entry.state.as_of_ms) for _, entry in rebuilding], ctx.rules
        )
        outcomes = []
        for (customer_id, entry), shape in zip(rebuilding, shapes, strict=True):
            partition, state = entry.partition, entry.state
            changes = state.rebuild(
                ctx.rules, entry.compact_before_ms, ctx.credit_through(partition), shape
            )
            outcome = Outcome(changes=changes, customer_id=customer_id)
            self.pending.add(partition, changes, outcome)
            outcomes.append(outcome)
            held = state.held_since_ms
            for purchase, ts_ms in entry.purchases:
                purchase.held = held is not None and held <= ts_ms
        for customer_id, entry in touched.items():
            self.customers[customer_id.encode("utf-8")] = customer_record.encode(entry.state)
            self.indexes.track(entry.partition, customer_id)
        return settled + outcomes
