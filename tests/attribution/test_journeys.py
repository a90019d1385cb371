"""Journey rules: lookback, timeout, expiry at the end of the log, ordering, unattributed."""

from __future__ import annotations

from attribution.events import MS_PER_DAY, Purchase, Touchpoint, parse_event
from attribution.journeys import ConvertedJourney, JourneyRules, NullJourney, build_journeys

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000


def touch(event_id: str, at_ms: int, channel: str, customer: str = "c1") -> Touchpoint:
    event = parse_event(
        {
            "type": "touchpoint",
            "event_id": event_id,
            "ts": at_ms,
            "customer_id": customer,
            "channel": channel,
        }
    )
    assert isinstance(event, Touchpoint)
    return event


def buy(event_id: str, at_ms: int, amount: float = 10.0, customer: str = "c1") -> Purchase:
    event = parse_event(
        {
            "type": "purchase",
            "event_id": event_id,
            "ts": at_ms,
            "customer_id": customer,
            "order_id": f"o-{event_id}",
            "amount": amount,
        }
    )
    assert isinstance(event, Purchase)
    return event


def day(n: float) -> int:
    return T0 + round(n * MS_PER_DAY)


def shape(journeys: list) -> list[tuple[str, tuple[str, ...]]]:
    return [("buy" if isinstance(j, ConvertedJourney) else "null", j.channels) for j in journeys]


def test_lookback_window_credits_only_recent_touches() -> None:
    rules = JourneyRules.from_days(lookback_days=30, timeout_days=60)
    events = [
        touch("t1", day(0), "display"),
        touch("t2", day(10), "email"),  # exactly 30 days before the purchase: credited
        touch("t3", day(35), "push"),
        buy("p1", day(40)),
    ]
    journeys, still_open = build_journeys(events, rules)
    assert shape(journeys) == [("null", ("display",)), ("buy", ("email", "push"))]
    assert still_open == 0
    converted = journeys[1]
    assert isinstance(converted, ConvertedJourney)
    assert converted.ages_days() == (30.0, 5.0)


def test_timeout_expires_journey_into_null_path() -> None:
    rules = JourneyRules.from_days(lookback_days=30)
    events = [
        touch("t1", day(0), "email"),
        touch("t2", day(1), "sms"),
        touch("t3", day(31), "push"),  # more than 30 days after t1: t1, t2 expire
        buy("p1", day(32)),
    ]
    journeys, _ = build_journeys(events, rules)
    assert shape(journeys) == [("null", ("email", "sms")), ("buy", ("push",))]


def test_open_journey_expires_at_as_of_after_lateness() -> None:
    rules = JourneyRules.from_days(lookback_days=30, allowed_lateness_hours=1)
    events = [touch("t1", day(0), "email")]
    limit = day(30) + HOUR  # as_of - lateness - first touch == timeout: still open
    journeys, still_open = build_journeys(events, rules, as_of_ms=limit)
    assert journeys == [] and still_open == 1
    journeys, still_open = build_journeys(events, rules, as_of_ms=limit + 1)
    assert shape(journeys) == [("null", ("email",))] and still_open == 0
    assert isinstance(journeys[0], NullJourney)


def test_as_of_defaults_to_newest_event() -> None:
    rules = JourneyRules.from_days(lookback_days=30, allowed_lateness_hours=1)
    events = [touch("t1", day(0), "email"), touch("t2", day(40), "sms", customer="c2")]
    journeys, still_open = build_journeys(events, rules)
    assert shape(journeys) == [("null", ("email",))]
    assert still_open == 1


def test_ties_broken_by_event_id() -> None:
    rules = JourneyRules.from_days(lookback_days=30)
    same = day(1)
    events = [
        touch("t-b", same, "sms"),
        touch("t-a", same, "email"),
        buy("z-purchase", day(2)),
        # At the same instant as the purchase: "a..." sorts before "z...", so it is credited.
        touch("a-last", day(2), "push"),
    ]
    journeys, _ = build_journeys(events, rules)
    assert shape(journeys) == [("buy", ("email", "sms", "push"))]


def test_touch_after_purchase_at_same_time_opens_next_journey() -> None:
    rules = JourneyRules.from_days(lookback_days=30)
    events = [
        touch("b-touch", day(1), "email"),
        buy("a-purchase", day(1)),
    ]
    journeys, still_open = build_journeys(events, rules)
    assert shape(journeys) == [("buy", ())]
    assert still_open == 1


def test_purchase_without_touches_is_unattributed_not_dropped() -> None:
    rules = JourneyRules.from_days(lookback_days=30)
    events = [buy("p1", day(1), 25.0), touch("t1", day(2), "sms"), buy("p2", day(3), 5.0)]
    journeys, _ = build_journeys(events, rules)
    assert shape(journeys) == [("buy", ()), ("buy", ("sms",))]
    first = journeys[0]
    assert isinstance(first, ConvertedJourney) and first.unattributed and first.value == 25.0


def test_duplicate_events_count_once() -> None:
    rules = JourneyRules.from_days(lookback_days=30)
    events = [
        touch("t1", day(1), "sms"),
        touch("t1", day(1), "sms"),
        buy("p1", day(2)),
        buy("p1", day(2)),
    ]
    journeys, _ = build_journeys(events, rules)
    assert shape(journeys) == [("buy", ("sms",))]


def test_customers_are_independent() -> None:
    rules = JourneyRules.from_days(lookback_days=30)
    events = [
        touch("t1", day(1), "sms", customer="a"),
        touch("t1", day(1), "email", customer="b"),  # same event id, other customer: kept
        buy("p1", day(2), customer="b"),
    ]
    journeys, still_open = build_journeys(events, rules)
    assert shape(journeys) == [("buy", ("email",))]
    assert still_open == 1
