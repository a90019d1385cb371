"""Rolling RFM: windows, the tie rule, grades, the segment map, snapshots and movement."""

from __future__ import annotations

import itertools
import json

import pytest

from attribution.analytics.ledger import PurchaseLedger
from attribution.analytics.movement import NONE, movement
from attribution.analytics.rfm import (
    quintile_scores,
    rfm_snapshot,
    rfm_values,
    snapshot_from_json,
    snapshot_to_json,
)
from attribution.analytics.rfm_segments import (
    SEGMENT_OF_CODE,
    SEGMENTS,
    grade_of,
    segment_of,
)
from tests.analytics._events import ms, purchase


def test_segment_map_covers_all_125_codes_exactly_once() -> None:
    codes = {f"{r}{f}{m}" for r, f, m in itertools.product(range(1, 6), repeat=3)}
    assert set(SEGMENT_OF_CODE) == codes
    assert len(SEGMENTS) == 11
    assert set(SEGMENT_OF_CODE.values()) == set(SEGMENTS)
    from attribution.analytics.rfm_segments import _SEGMENT_CODES

    listed = [c for codes_ in _SEGMENT_CODES.values() for c in codes_.split()]
    assert len(listed) == 125 and len(set(listed)) == 125


@pytest.mark.parametrize(
    ("code", "segment"),
    [
        ("555", "Champions"),
        ("111", "Lost"),
        ("311", "New Customers"),
        ("144", "Cannot Lose Them"),
        ("323", "Potential Loyalist"),
        ("251", "About To Sleep"),
        ("124", "At Risk"),
    ],
)
def test_segment_examples(code: str, segment: str) -> None:
    assert segment_of(*(int(c) for c in code)) == segment


def test_grade_rule() -> None:
    expected = {15: "A", 13: "A", 12: "B", 10: "B", 9: "C", 7: "C", 6: "D", 5: "D", 4: "E", 3: "E"}
    for total, grade in expected.items():
        assert grade_of(total) == grade
    with pytest.raises(ValueError, match="between 3 and 15"):
        grade_of(2)


def test_quintiles_of_distinct_values() -> None:
    assert quintile_scores([10.0, 20, 30, 40, 50]) == [1, 2, 3, 4, 5]
    assert quintile_scores([10.0, 20, 30, 40, 50], higher_is_better=False) == [5, 4, 3, 2, 1]
    assert quintile_scores(list(range(10))) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_share_a_score_and_the_rule_is_exact() -> None:
    # Strictly worse counts: 0, 0, 0, 3, 4 over n = 5 -> 1 + floor(5w/5).
    assert quintile_scores([1.0, 1, 1, 2, 3]) == [1, 1, 1, 4, 5]
    assert quintile_scores([7.0, 7, 7]) == [1, 1, 1]
    assert quintile_scores([5.0]) == [1]
    # Recency: three customers tied at the best (smallest) value, one strictly worse than
    # them: 1 + floor(5 * 1 / 4) = 2 for the three, 1 for the one.
    assert quintile_scores([0.0, 0, 0, 9], higher_is_better=False) == [2, 2, 2, 1]


def test_window_and_values() -> None:
    ledger = PurchaseLedger().add_all(
        [
            purchase("a", 0, 10.0),
            purchase("a", 100, 20.0),
            purchase("a", 400, 5.0),
            purchase("b", 10, 99.0),
        ]
    )
    values = rfm_values(ledger, ms(410), window_days=365)
    # Window (45, 410]: a keeps days 100 and 400, b's purchase at day 10 is out.
    assert set(values) == {"a"}
    assert values["a"].frequency == 2
    assert values["a"].monetary == 25.0
    assert values["a"].recency_days == 10.0
    with pytest.raises(ValueError, match="window_days"):
        rfm_values(ledger, ms(410), window_days=0)


def _ledger() -> PurchaseLedger:
    events = []
    for i in range(10):
        # Customer i bought i+1 times, the last time 10*(10-i) days before day 300.
        for k in range(i + 1):
            events.append(purchase(f"c{i}", 300 - 10 * (10 - i) - k, 10.0 * (i + 1)))
    return PurchaseLedger().add_all(events)


def test_snapshot_scores_segments_and_grades() -> None:
    snap = rfm_snapshot(_ledger(), ms(300))
    assert [snap[f"c{i}"].r for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert snap["c9"].code == "555" and snap["c9"].segment == "Champions"
    assert snap["c9"].grade == "A"
    assert snap["c0"].code == "111" and snap["c0"].segment == "Lost" and snap["c0"].grade == "E"
    assert snapshot_from_json(json.loads(json.dumps(snapshot_to_json(snap)))) == snap


def test_snapshot_does_not_depend_on_event_order_or_duplicates() -> None:
    events = [purchase("x", d, a) for d, a in [(1, 5.0), (3, 7.0), (9, 1.0)]]
    events += [purchase("y", 2, 50.0), purchase("z", 8, 0.5)]
    one = PurchaseLedger().add_all(events)
    two = PurchaseLedger().add_all(list(reversed(events)) + events[:2])
    assert rfm_snapshot(one, ms(10)) == rfm_snapshot(two, ms(10))


def test_movement_matrix_with_appearing_and_leaving_customers() -> None:
    ledger = _ledger()
    before = rfm_snapshot(ledger, ms(300))
    ledger.add_all([purchase("new", 320, 1000.0)])
    after = rfm_snapshot(ledger, ms(330), window_days=40)
    moves = movement(before, after)
    assert sum(moves.segments.values()) == len(before.keys() | after.keys())
    assert sum(moves.grades.values()) == sum(moves.segments.values())
    assert moves.segments[(NONE, after["new"].segment)] == 1
    gone = [c for c in before if c not in after]
    assert gone
    assert sum(n for (a, b), n in moves.segments.items() if b == NONE) == len(gone)
    assert json.loads(json.dumps(moves.to_json()))["segments"][NONE]
