"""The processing context: the credit horizon and the settled history."""

from __future__ import annotations

from attribution.journeys import JourneyRules
from stream.processing.context import HOLD_ALL_MS, Context

RULES = JourneyRules(lookback_ms=10**9, timeout_ms=10**9, allowed_lateness_ms=0)


def test_credit_horizon_is_the_slowest_lagging_topic() -> None:
    ctx = Context(None, None, [], 0, {})  # type: ignore[arg-type]
    assert ctx.credit_through(0) is None  # nothing lags: credit at once
    ctx.topic_watermarks[("touchpoints", 0)] = 500
    ctx.topic_watermarks[("purchases", 0)] = 900
    ctx.lagging.add(("touchpoints", 0))
    assert ctx.credit_through(0) == 500
    ctx.lagging.add(("purchases", 0))
    assert ctx.credit_through(0) == 500
    ctx.lagging.discard(("touchpoints", 0))
    assert ctx.credit_through(0) == 900
    ctx.lagging.add(("touchpoints", 1))  # lagging, but no event of it read yet
    assert ctx.credit_through(1) == HOLD_ALL_MS


def test_history_is_settled_behind_the_slower_customer_topic() -> None:
    ctx = Context(RULES, None, [], 100, {})  # type: ignore[arg-type]
    ctx.note_event_time("touchpoints", 0, 5_000)
    assert ctx.settled_before(0) is None  # no purchase read yet: nothing is settled
    ctx.note_event_time("purchases", 0, 900)
    ctx.note_event_time("purchases", 0, 400)  # an older event does not move it back
    assert ctx.settled_before(0) == 800
