"""A journey as a compact JSON row: how ``P|conv`` aggregates keep converted journeys."""

from __future__ import annotations

from typing import Any

from attribution.journeys import ConvertedJourney, Journey, NullJourney, Touch


def journey_to_row(journey: Journey) -> list[Any]:
    """Compact JSON row of a journey; inverse of :func:`row_to_journey`."""
    touches = [[t.channel, t.ts_ms, t.event_id, t.campaign, t.interaction] for t in journey.touches]
    if isinstance(journey, ConvertedJourney):
        return ["c", journey.order_id, journey.event_id, journey.ts_ms, journey.value, touches]
    return ["n", touches]


def row_to_journey(customer_id: str, row: list[Any]) -> Journey:
    """The journey of a row made by :func:`journey_to_row`."""
    if row[0] == "c":
        _, order_id, event_id, ts_ms, value, touches = row
        return ConvertedJourney(
            customer_id, order_id, event_id, ts_ms, value, tuple(Touch(*t) for t in touches)
        )
    return NullJourney(customer_id, tuple(Touch(*t) for t in row[1]))
