"""Event builders shared by the analytics tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from attribution.events import Assignment, Cost, Purchase, Touchpoint

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(days: float) -> datetime:
    """A time ``days`` after 2024-01-01T00:00Z."""
    return T0 + timedelta(days=days)


def ms(days: float) -> int:
    """Epoch ms of :func:`at`."""
    return int(at(days).timestamp() * 1000)


def purchase(customer: str, days: float, amount: float, eid: str | None = None) -> Purchase:
    """A purchase event."""
    eid = eid or f"p-{customer}-{days}-{amount}"
    return Purchase(event_id=eid, ts=at(days), customer_id=customer, order_id=eid, amount=amount)


def touch(
    customer: str,
    days: float,
    channel: str,
    campaign: str | None = None,
    interaction: str | None = None,
    eid: str | None = None,
) -> Touchpoint:
    """A touchpoint event."""
    eid = eid or f"t-{customer}-{days}-{channel}-{campaign}-{interaction}"
    return Touchpoint(
        event_id=eid,
        ts=at(days),
        customer_id=customer,
        channel=channel,
        campaign=campaign,
        interaction=interaction,
    )


def cost(campaign: str, channel: str, days: float, amount: float, eid: str) -> Cost:
    """A cost event."""
    return Cost(event_id=eid, ts=at(days), campaign=campaign, channel=channel, amount=amount)


def assign(
    customer: str,
    group: str,
    days: float = 0.0,
    campaign: str | None = None,
    eid: str | None = None,
) -> Assignment:
    """An assignment event."""
    eid = eid or f"a-{customer}-{days}-{campaign}-{group}"
    return Assignment(
        event_id=eid, ts=at(days), customer_id=customer, group=group, campaign=campaign
    )
