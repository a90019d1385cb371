"""Many customers through one kernel call give each customer's own journeys."""

from __future__ import annotations

import random

from attribution.journey_kernel import NULL
from attribution.journeys import EventRow, JourneyRules, journeys_from_rows
from stream.processing.journey_shapes import journey_shapes

DAY = 86_400_000


def test_one_call_for_many_customers_equals_one_call_per_customer() -> None:
    rng = random.Random(11)
    rules = JourneyRules(lookback_ms=7 * DAY, timeout_ms=7 * DAY, allowed_lateness_ms=3_600_000)
    customers = []
    for c in range(60):
        rows = sorted(
            EventRow(
                rng.randrange(40 * DAY), f"e{c}-{i}", rng.random() < 0.2, f"x{i}", 1.0, None, None
            )  # fmt: skip
            for i in range(rng.randrange(0, 9))
        )
        # Each customer's own expiry clock, some never moved.
        as_of = None if c % 4 == 0 else rng.randrange(20 * DAY, 60 * DAY)
        customers.append((rows, as_of))
    shapes = journey_shapes(customers, rules)
    opened = closed_null = 0
    for (rows, as_of), shape in zip(customers, shapes, strict=True):
        closed, open_touches = journeys_from_rows("c", rows, rules, as_of)
        assert len(shape.first) == len(closed)
        for first, count, purchase, kind, journey in zip(
            shape.first, shape.touches, shape.purchase, shape.kind, closed, strict=True
        ):
            assert [t.event_id for t in journey.touches] == [
                r.event_id for r in rows[first : first + count]
            ]
            if kind == NULL:
                closed_null += 1
                assert purchase == -1
            else:
                assert rows[purchase].event_id == journey.event_id  # type: ignore[union-attr]
        if open_touches:
            opened += 1
            assert shape.open_row is not None
            assert rows[shape.open_row].event_id == open_touches[0].event_id
        else:
            assert shape.open_row is None
    assert opened > 5 and closed_null > 5


def test_no_events_at_all() -> None:
    shapes = journey_shapes([([], None), ([], 5)], JourneyRules())
    assert [(s.first, s.open_row) for s in shapes] == [([], None), ([], None)]
