"""The pipeline's topic names, and what each input topic carries (the one place that names them)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from attribution.events import AnyRecord, Cost, InvalidRecord, Rate, parse_record
from crm_attribution.settings.typed import Settings

TICKS_SUFFIX = "ticks"
# What an input topic carries: its kind names the event type expected on it (see
# stream.processing.records), or the expiry ticks the leader sends.
TOUCHPOINTS, PURCHASES, COSTS, ASSIGNMENTS, TICKS = (
    "touchpoints",
    "purchases",
    "costs",
    "assignments",
    "ticks",
)
# The kinds whose records belong to a customer (keyed by customer_id).
CUSTOMER_KINDS = (TOUCHPOINTS, PURCHASES)
# The kind of topic each event type goes to. A refund follows its order's purchases on the
# purchases topic, so that the partition's order keeps it after them. A rate goes to every
# partition of the purchases and costs topics (see :func:`destinations`): each partition then
# holds every rate, in the order it was produced among the amounts it converts.
KIND_OF_TYPE = {
    "touchpoint": TOUCHPOINTS,
    "purchase": PURCHASES,
    "cost": COSTS,
    "assignment": ASSIGNMENTS,
    "refund": PURCHASES,
    "rate": PURCHASES,
}
RATE_KINDS = (PURCHASES, COSTS)
# The event types each kind of input topic carries.
TYPES_OF_KIND = {
    TOUCHPOINTS: frozenset({"touchpoint"}),
    PURCHASES: frozenset({"purchase", "refund", "rate"}),
    COSTS: frozenset({"cost", "rate"}),
    ASSIGNMENTS: frozenset({"assignment"}),
}


@dataclass(frozen=True)
class TopicNames:
    """Every topic the pipeline reads or writes, by role."""

    touchpoints: str
    purchases: str
    costs: str
    assignments: str
    ticks: str
    dead_letter: str
    attributions: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        """The names in ``settings`` (the ticks topic is internal: ``<app_id>-ticks``)."""
        t = settings.topics
        return cls(
            touchpoints=t.touchpoints,
            purchases=t.purchases,
            costs=t.costs,
            assignments=t.assignments,
            ticks=f"{settings.worker.app_id}-{TICKS_SUFFIX}",
            dead_letter=t.dead_letter,
            attributions=t.attributions,
        )

    def kinds(self) -> dict[str, str]:
        """Input topic name -> its kind (events and expiry ticks)."""
        return {
            self.touchpoints: TOUCHPOINTS,
            self.purchases: PURCHASES,
            self.costs: COSTS,
            self.assignments: ASSIGNMENTS,
            self.ticks: TICKS,
        }

    def inputs(self) -> list[str]:
        """The topics one agent reads, so that partition P of all of them is on one worker."""
        return list(self.kinds())

    def customer_topics(self) -> dict[str, str]:
        """Kind -> topic name, for the topics keyed by customer."""
        return {TOUCHPOINTS: self.touchpoints, PURCHASES: self.purchases}

    def all(self) -> list[str]:
        """Every topic the pipeline reads or writes (what must exist before a worker starts)."""
        return [
            self.touchpoints,
            self.purchases,
            self.costs,
            self.assignments,
            self.dead_letter,
            self.attributions,
            self.ticks,
        ]


def event_key(event: AnyRecord) -> str:
    """Partition key: the customer, the campaign for costs, the currency for rates."""
    if isinstance(event, Cost):
        return event.campaign
    if isinstance(event, Rate):
        return event.currency
    return event.customer_id


def route(event: AnyRecord, settings: Settings) -> str:
    """Topic name of an event (for a rate, the first of the topics it goes to)."""
    return str(getattr(settings.topics, KIND_OF_TYPE[event.type]))


def destinations(event: AnyRecord, settings: Settings) -> list[tuple[str, bytes, int | None]]:
    """Where to send an event: (topic, key, partition; None: the key's partition).

    A rate goes to every partition of the purchases and costs topics, so that whichever
    worker converts an amount knows it; any other event goes once, keyed.
    """
    key = event_key(event).encode("utf-8")
    if isinstance(event, Rate):
        return [
            (str(getattr(settings.topics, kind)), key, partition)
            for kind in RATE_KINDS
            for partition in range(settings.topics.partitions)
        ]
    return [(route(event, settings), key, None)]


def raw_route(text: str, settings: Settings) -> tuple[str, bytes | None]:
    """Best-effort topic and key of a record that may be invalid (for dead-letter testing)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return settings.topics.touchpoints, None
    try:
        event = parse_record(raw)
        return route(event, settings), event_key(event).encode("utf-8")
    except InvalidRecord:
        pass
    if not isinstance(raw, dict):
        return settings.topics.touchpoints, None
    kind = KIND_OF_TYPE.get(str(raw.get("type")), TOUCHPOINTS)
    field = "campaign" if kind == COSTS else "currency" if raw.get("type") == "rate" else None
    key = raw.get(field or "customer_id")
    return getattr(settings.topics, kind), str(key).encode("utf-8") if key is not None else None
