"""The customers table's values: one customer's state as stored, read and written here only.

Today's record is a JSON object (what Faust's json serializer writes to the changelog):

``e``  retained events, as :class:`attribution.journeys.EventRow` lists
``j``  journeys emitted from them, as rows of :mod:`stream.processing.journey_rows`
``r``  ids of the compacted events kept for de-duplication (a bounded ring)
``n``  newest event time; ``a`` the expiry clock; ``o`` the start of the open journey
``c``  (time, event id) of the last compacted event
``x``  the customer's analytics parts (:mod:`stream.processing.analytics_parts`)
``h``  earliest decision time of the journeys held back from crediting
``p``  the input partition the customer's events arrive on (absent before 2026-12: then the
       partition Kafka's Java client gives the key was assumed)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attribution.journeys import EventRow
from stream.processing.customer_state import CustomerState
from stream.processing.journey_rows import journey_to_row, row_to_journey


def encode(state: CustomerState) -> dict[str, Any]:
    """The table value of a customer's state."""
    return {
        "e": [list(e) for e in state.events],
        "j": [journey_to_row(j) for j in state.emitted],
        "r": state.recent_ids,
        "n": state.newest_ms,
        "a": state.as_of_ms,
        "o": state.open_since_ms,
        "c": list(state.compacted_through) if state.compacted_through else None,
        "x": state.analytics,
        "h": state.held_since_ms,
        "p": state.partition,
    }


def decode(customer_id: str, value: Mapping[str, Any] | None) -> CustomerState:
    """The state of a table value (``None``: a customer never seen)."""
    if not value:
        return CustomerState(customer_id)
    return CustomerState(
        customer_id,
        [EventRow(*row) for row in value["e"]],
        [row_to_journey(customer_id, row) for row in value["j"]],
        list(value["r"]),
        value["n"],
        value["a"],
        value["o"],
        tuple(value["c"]) if value.get("c") else None,
        value.get("x"),
        value.get("h"),
        value.get("p"),
    )


def open_since(value: Mapping[str, Any] | None) -> int | None:
    """Start of the customer's open journey (``None``: no journey open)."""
    return None if not value else value.get("o")


def held_since(value: Mapping[str, Any] | None) -> int | None:
    """Decision time of the customer's earliest journey held back from crediting."""
    return None if not value else value.get("h")


def partition(value: Mapping[str, Any] | None) -> int | None:
    """The input partition the customer's events arrive on (``None``: not recorded)."""
    return None if not value else value.get("p")


def analytics_parts(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The customer's analytics parts (``None``: none yet)."""
    return None if not value else value.get("x")
