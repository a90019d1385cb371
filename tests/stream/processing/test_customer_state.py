"""The incremental customer state gives the batch journeys whatever the arrival order."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from attribution.events import Purchase, Touchpoint
from attribution.journeys import ConvertedJourney, JourneyRules, build_journeys
from stream.processing import customer_record
from stream.processing.customer_state import (
    RECENT_IDS_DAYS,
    CustomerState,
    TooLateError,
    journey_identity,
    replay,
)

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = datetime(2026, 1, 1, tzinfo=UTC)
START = int(T0.timestamp() * 1000)  # the first test event's time, epoch ms
RULES = JourneyRules(lookback_ms=7 * DAY, timeout_ms=7 * DAY, allowed_lateness_ms=HOUR)


def touch(i: int, hours: float, channel: str = "email", customer: str = "c1") -> Touchpoint:
    return Touchpoint(
        event_id=f"t{i:04d}", customer_id=customer, channel=channel, ts=T0 + timedelta(hours=hours)
    )


def purchase(i: int, hours: float, amount: float = 10.0, customer: str = "c1") -> Purchase:
    return Purchase(
        event_id=f"p{i:04d}",
        customer_id=customer,
        order_id=f"o{i}",
        amount=amount,
        ts=T0 + timedelta(hours=hours),
    )


def net(changes: list) -> Counter:
    total: Counter = Counter()
    for change in changes:
        total[journey_identity(change.journey)] += change.sign
    return +total


def random_log(rng: random.Random, n: int) -> list[Touchpoint | Purchase]:
    events: list[Touchpoint | Purchase] = []
    hours = 0.0
    for i in range(n):
        hours += rng.expovariate(1 / 30.0)
        if rng.random() < 0.25:
            events.append(purchase(i, hours, amount=round(rng.uniform(1, 100), 2)))
        else:
            events.append(touch(i, hours, rng.choice(["email", "push", "sms", "direct"])))
    return events


def shuffle_within(events: list, lateness_ms: int, rng: random.Random) -> list:
    """Reorder so that no event arrives after one newer than it by more than the lateness."""
    keyed = sorted(events, key=lambda e: e.ts_ms + rng.uniform(0, lateness_ms))
    return keyed


@pytest.mark.parametrize("seed", range(30))
def test_any_arrival_order_within_lateness_gives_the_batch_journeys(seed: int) -> None:
    rng = random.Random(seed)
    events = random_log(rng, 60)
    arrival = shuffle_within(events, RULES.allowed_lateness_ms, rng)
    arrival += [arrival[rng.randrange(len(arrival))] for _ in range(5)]  # duplicates
    as_of = max(e.ts_ms for e in events)
    batch, _ = build_journeys(events, RULES, as_of)
    _, changes = replay("c1", arrival, RULES, retention_ms=2 * HOUR, as_of_ms=as_of)
    assert net(changes) == Counter(journey_identity(j) for j in batch)


def test_late_touch_moves_credit_into_the_closed_journey() -> None:
    state = CustomerState("c1")
    first = state.add(purchase(1, 10), RULES, None)
    assert [c.sign for c in first] == [+1] and first[0].journey.unattributed
    changes = state.add(touch(2, 9.5), RULES, None)
    assert sorted(c.sign for c in changes) == [-1, +1]
    new = next(c.journey for c in changes if c.sign > 0)
    assert isinstance(new, ConvertedJourney) and new.channels == ("email",)


def test_duplicates_change_nothing() -> None:
    state = CustomerState("c1")
    state.add(touch(1, 1), RULES, None)
    assert state.add(touch(1, 1), RULES, None) == []


def test_watermark_expires_open_journey_and_later_event_can_still_reopen_it() -> None:
    state = CustomerState("c1")
    first = touch(1, 0)
    state.add(first, RULES, None)
    assert state.advance(first.ts_ms + 7 * DAY + HOUR, RULES, None) == []  # not yet
    expired = state.advance(first.ts_ms + 8 * DAY + 2 * HOUR, RULES, None)
    assert [c.sign for c in expired] == [+1]
    # A purchase inside the timeout arriving after the expiry reverses it exactly.
    changes = state.add(purchase(2, 24), RULES, None)
    assert sorted(c.sign for c in changes) == [-1, +1]


def test_event_in_settled_history_is_too_late_but_after_it_is_placed() -> None:
    state = CustomerState("c1")
    state.add(touch(1, 0), RULES, None)
    state.add(purchase(2, 1), RULES, None)
    settled = touch(3, 100).ts_ms - HOUR
    state.add(touch(3, 100), RULES, settled)  # compacts the first journey
    assert [e.event_id for e in state.events] == ["t0003"]
    with pytest.raises(TooLateError, match="too late"):
        state.add(touch(4, 0.5), RULES, settled)
    # Older than the settled horizon but after the compacted journey: still placed exactly.
    changes = state.add(touch(5, 50), RULES, settled)
    assert changes == [] and [e.event_id for e in state.events] == ["t0005", "t0003"]


def test_state_round_trips_through_json() -> None:
    state = CustomerState("c1")
    for event in [touch(1, 0), touch(2, 1, "sms"), purchase(3, 2), touch(4, 3)]:
        state.add(event, RULES, None)
    again = customer_record.decode("c1", customer_record.encode(state))
    assert customer_record.encode(again) == customer_record.encode(state)
    assert [journey_identity(j) for j in again.emitted] == [
        journey_identity(j) for j in state.emitted
    ]


def test_a_purchase_read_before_its_touches_is_held_then_credited_once() -> None:
    """While the touches' topic lags, the order waits instead of being re-credited per touch."""
    state = CustomerState("c1")
    order = purchase(9, 10)
    lagging_touches_at = touch(1, 0).ts_ms  # the touchpoints topic has been read up to here
    assert state.add(order, RULES, None, credit_through_ms=lagging_touches_at) == []
    assert state.held_since_ms == order.ts_ms
    for i, hours in [(2, 1), (3, 4), (4, 8)]:
        late_touch = touch(i, hours)
        assert state.add(late_touch, RULES, None, credit_through_ms=late_touch.ts_ms) == []
    assert state.release(RULES, None, touch(5, 9).ts_ms) == []  # still before the order
    released = state.release(RULES, None, order.ts_ms)
    assert [c.sign for c in released] == [+1]
    assert released[0].journey.channels == ("email", "email", "email")
    assert state.held_since_ms is None
    # The same journeys as reading the events in order.
    in_order, _ = replay("c1", [touch(2, 1), touch(3, 4), touch(4, 8), order], RULES, DAY)
    assert [journey_identity(j) for j in state.emitted] == [
        journey_identity(j) for j in in_order.emitted
    ]


def test_held_state_round_trips_and_release_without_a_limit_credits_everything() -> None:
    state = CustomerState("c1")
    state.add(touch(1, 0), RULES, None, credit_through_ms=0)
    state.add(purchase(2, 5), RULES, None, credit_through_ms=0)
    again = customer_record.decode("c1", customer_record.encode(state))
    assert again.held_since_ms == purchase(2, 5).ts_ms
    assert [c.sign for c in again.release(RULES, None, None)] == [+1]
    assert again.held_since_ms is None and len(again.emitted) == 1


def test_a_credited_journey_is_not_retracted_because_a_topic_lags_again() -> None:
    state = CustomerState("c1")
    state.add(touch(1, 0), RULES, None)
    state.add(purchase(2, 5), RULES, None)
    assert len(state.emitted) == 1
    # A later touch while the purchases topic lags far behind: the credited order stays.
    assert state.add(touch(3, 20), RULES, None, credit_through_ms=touch(1, 0).ts_ms) == []
    assert len(state.emitted) == 1 and state.held_since_ms is None


def test_compaction_keeps_the_events_of_a_held_journey() -> None:
    state = CustomerState("c1")
    for event in [touch(1, 0), purchase(2, 24), touch(3, 48), purchase(4, 72)]:
        state.add(event, RULES, None)
    assert len(state.emitted) == 2
    # A late touch changes the first order while its topic lags: that order is held, the
    # second stays credited, and compaction past both must not drop the held one's events.
    horizon = purchase(5, 200).ts_ms
    changes = state.add(touch(6, 12), RULES, horizon, credit_through_ms=touch(6, 12).ts_ms)
    assert [c.sign for c in changes] == [-1]
    assert {"t0001", "t0006", "p0002"} <= {e.event_id for e in state.events}
    released = state.release(RULES, horizon, None)
    assert [c.sign for c in released] == [+1]
    assert released[0].journey.channels == ("email", "email")


def steady_customer(days: int) -> list[Touchpoint | Purchase]:
    """A touch every second day and a purchase every tenth, for ``days`` days."""
    events: list[Touchpoint | Purchase] = []
    for day in range(0, days, 2):
        events.append(touch(day, day * 24))
        if day % 10 == 8:
            events.append(purchase(day + 1, day * 24 + 1))
    return events


def test_a_copy_of_an_event_compacted_within_the_window_is_recognised() -> None:
    """A copy (re-read after a rebalance, redelivered, sent twice) of an event compacted while
    the horizon has since moved at most RECENT_IDS_DAYS days is a duplicate, not a late event;
    a copy of one compacted longer ago is refused as too late (changing nothing either way)."""
    events = steady_customer(200)
    state, _ = replay("c1", events, RULES, retention_ms=DAY)
    horizon = max(e.ts_ms for e in events) - DAY  # replay's last compaction horizon
    horizon_day = horizon // DAY
    compacted_on = dict(state.compacted_ids)
    assert min(compacted_on) >= horizon_day - RECENT_IDS_DAYS  # the older ones were dropped
    known = {row.event_id for row in state.events}
    # Compacted 86-88 days of horizon ago (a steady customer's events are compacted a few
    # days after they happen): still known.
    recent = [e for e in events if 86 <= horizon_day - e.ts_ms // DAY <= 88]
    assert recent and not known & {e.event_id for e in recent}
    for event in recent:
        assert state.add(event, RULES, horizon) == []
    gone = [e for e in events if horizon_day - e.ts_ms // DAY > RECENT_IDS_DAYS + 20]
    assert gone
    with pytest.raises(TooLateError):
        state.add(gone[-1], RULES, horizon)


def test_a_copy_of_a_late_event_is_known_however_far_the_customer_then_moves() -> None:
    """An idle customer's late touch is compacted long after its own time; the customer's
    next journey then moves its last compacted event 150 days on while the partition's
    settled time moves 3: a copy of the late touch is still a copy (dated by its event's day,
    it was forgotten and dead-lettered as too late)."""
    state = CustomerState("c1")
    state.add(touch(1, 0), RULES, START - DAY)
    state.add(purchase(1, 24), RULES, START)
    late = touch(9, 12)
    state.add(late, RULES, START + 149 * DAY)  # placed in the closed journey, then compacted
    state.add(touch(2, 150 * 24), RULES, START + 149 * DAY)
    state.add(purchase(2, 150 * 24 + 2), RULES, START + 149 * DAY)
    state.add(touch(3, 160 * 24), RULES, START + 152 * DAY)
    assert state.compacted_through is not None and state.compacted_through[0] >= START + 150 * DAY
    assert state.add(late, RULES, START + 152 * DAY) == []


def test_a_copy_of_an_event_compacted_after_a_long_lookback_is_known() -> None:
    """With a lookback longer than RECENT_IDS_DAYS, a touch is compacted more than that many
    days after its time, with the purchase it led to: a producer's immediate retry of it is a
    copy (dated by its event's day, it was dropped in the compaction that removed it)."""
    rules = JourneyRules(lookback_ms=120 * DAY, timeout_ms=120 * DAY, allowed_lateness_ms=HOUR)
    state = CustomerState("c1")
    first = touch(0, 0)
    state.add(first, rules, START - DAY)
    state.add(purchase(1, 100 * 24), rules, START + 99 * DAY)
    state.add(touch(2, 102 * 24), rules, START + 101 * DAY)
    assert state.compacted_through is not None and first.event_id not in {
        row.event_id for row in state.events
    }
    assert state.add(first, rules, START + 101 * DAY) == []


def test_the_dedupe_memory_stops_growing_with_the_history() -> None:
    """It keeps the compacted ids of RECENT_IDS_DAYS days, not the last 256 whatever their age:
    a steady customer's record is as long after 600 days as after 200."""
    sizes, remembered = [], []
    for days in (200, 600):
        state, _ = replay("c1", steady_customer(days), RULES, retention_ms=DAY)
        remembered.append(len(state.compacted_ids))
        sizes.append(len(customer_record.encode(state)))
    # A touch every second day and a purchase every tenth: 54 events in 90 days.
    assert remembered[0] == remembered[1] <= 60
    assert sizes[0] == sizes[1]
