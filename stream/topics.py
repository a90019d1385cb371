"""The pipeline's topic names, and what each input topic carries (the one place that names them)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from attribution.events import AnyEvent, Cost, InvalidRecord, parse_event
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
# The kind of topic each event type goes to, and back.
KIND_OF_TYPE = {
    "touchpoint": TOUCHPOINTS,
    "purchase": PURCHASES,
    "cost": COSTS,
    "assignment": ASSIGNMENTS,
}
TYPE_OF_KIND = {kind: event_type for event_type, kind in KIND_OF_TYPE.items()}


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


def event_key(event: AnyEvent) -> str:
    """Partition key: the customer, or the campaign for costs."""
    return event.campaign if isinstance(event, Cost) else event.customer_id


def route(event: AnyEvent, settings: Settings) -> str:
    """Topic name of an event."""
    return str(getattr(settings.topics, KIND_OF_TYPE[event.type]))


def raw_route(text: str, settings: Settings) -> tuple[str, bytes | None]:
    """Best-effort topic and key of a record that may be invalid (for dead-letter testing)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return settings.topics.touchpoints, None
    try:
        event = parse_event(raw)
        return route(event, settings), event_key(event).encode("utf-8")
    except InvalidRecord:
        pass
    if not isinstance(raw, dict):
        return settings.topics.touchpoints, None
    kind = KIND_OF_TYPE.get(str(raw.get("type")), TOUCHPOINTS)
    key = raw.get("campaign" if kind == COSTS else "customer_id")
    return getattr(settings.topics, kind), str(key).encode("utf-8") if key is not None else None
