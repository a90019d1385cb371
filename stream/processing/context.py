"""What processing a record needs besides the tables: the rules and the clocks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from attribution.journeys import JourneyRules
from attribution.models.options import ModelOptions
from attribution.money import MoneySettings, read_rates_file
from crm_attribution.settings.typed import Settings
from stream.processing.partitioners import PARTITIONERS
from stream.topics import CUSTOMER_KINDS

# Credit horizon while a lagging topic partition has shown no event yet: hold every journey.
HOLD_ALL_MS = -(2**62)
# History younger than this (behind the slower customer topic) is never compacted.
MIN_RETENTION_MS = 24 * 3_600_000


@dataclass
class Context:
    """The rules and settings of processing, and the clocks it keeps in memory."""

    rules: JourneyRules
    options: ModelOptions
    models: list[str]
    retention_ms: int
    topic_kinds: Mapping[str, str]  # input topic name -> its kind (stream.topics)
    # Newest event time per partition. Kept in memory (a table write per event would halve
    # throughput) and persisted into ``P|totals`` with the partition's next aggregate write.
    watermarks: dict[int, int] = field(default_factory=dict)
    # Newest event time per (customer topic kind, partition): history older than the slowest
    # of them minus the retention is settled and may be compacted.
    topic_watermarks: dict[tuple[str, int], int] = field(default_factory=dict)
    # (customer topic kind, partition) known to have unread events (see stream.processing.backlog;
    # empty when nothing tells where the inputs end: nothing is ever held then).
    lagging: set[tuple[str, int]] = field(default_factory=set)
    # The partition a customer key belongs on (topics.partitioner); None: wherever it arrives.
    key_partition: Callable[[bytes], int] | None = None
    # The base currency and the rates file's rates (rate events are kept per partition).
    money: MoneySettings = field(default_factory=MoneySettings)
    # Keep null paths in the aggregates too, for credit intervals (attribution.credit_intervals).
    keep_null_paths: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, topic_kinds: Mapping[str, str]) -> Context:
        """The context a worker with these settings processes with."""
        attr = settings.attribution
        rules = JourneyRules.from_days(
            attr.lookback_days, attr.timeout_days, attr.allowed_lateness_hours
        )
        options = attr.model_options
        retention_ms = max(MIN_RETENTION_MS, rules.allowed_lateness_ms)
        partitioner = PARTITIONERS.get(settings.topics.partitioner)
        count = settings.topics.partitions
        business = settings.business
        # A rates file that cannot be read stops here with its reason (RatesFileError).
        rates = read_rates_file(business.rates_file) if business.rates_file else ()
        return cls(
            rules,
            options,
            list(attr.models),
            retention_ms,
            topic_kinds,
            key_partition=None if partitioner is None else lambda key: partitioner(key, count),
            money=MoneySettings(business.base_currency, rates),
            keep_null_paths=attr.credit_intervals,
        )

    def note_event_time(self, kind: str, partition: int, ts_ms: int) -> None:
        """Move the newest event time of the customer topic ``kind`` on ``partition``."""
        mark = (kind, partition)
        if ts_ms > self.topic_watermarks.get(mark, 0):
            self.topic_watermarks[mark] = ts_ms

    def note_partition_time(self, partition: int, ts_ms: int) -> None:
        """Move the newest event time of ``partition`` (all its customer topics)."""
        if ts_ms > self.watermarks.get(partition, 0):
            self.watermarks[partition] = ts_ms

    def credit_through(self, partition: int) -> int | None:
        """Journeys ending after this time wait for a lagging topic (``None``: credit all).

        When one customer topic of the partition is read ahead of the other (a backlog: the
        small purchases topic drains long before the touchpoints), crediting a purchase before
        its touches arrive would retract and re-credit the order for each of them. Holding it
        until the lagging topic's newest event time passes it credits it once. Only topics
        with unread events hold anything, so a stream read at the speed it is written (or one
        drained to its end) credits at once. The final numbers do not depend on it: a held
        journey is the same journey, credited later.
        """
        through: int | None = None
        for kind in CUSTOMER_KINDS:
            if (kind, partition) in self.lagging:
                mark = self.topic_watermarks.get((kind, partition), HOLD_ALL_MS)
                through = mark if through is None else min(through, mark)
        return through

    def settled_before(self, partition: int) -> int | None:
        """Event time before which the partition's customer history can no longer change."""
        marks = [self.topic_watermarks.get((kind, partition)) for kind in CUSTOMER_KINDS]
        if any(mark is None for mark in marks):
            return None
        return min(m for m in marks if m is not None) - self.retention_ms

    def forget_partition(self, partition: int) -> None:
        """Drop what is known of a partition's backlog (revoked or newly assigned)."""
        for kind in CUSTOMER_KINDS:
            self.lagging.discard((kind, partition))
