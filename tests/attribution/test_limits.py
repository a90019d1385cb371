"""Poison records: every field bounded, in the one validator batch and stream share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attribution.events import InvalidRecord, parse_event
from attribution.io.events_reader import read_event_table
from attribution.limits import RecordLimits, record_limits, set_record_limits
from crm_attribution.cli import main
from crm_attribution.settings.typed import load_settings

GOOD = {"type": "purchase", "event_id": "p1", "customer_id": "c1", "order_id": "o1",
        "amount": 10.0, "ts": "2026-01-05T10:00:00Z"}  # fmt: skip
TOUCH = {"type": "touchpoint", "event_id": "t1", "customer_id": "c1", "channel": "email",
         "ts": "2026-01-05T09:00:00Z"}  # fmt: skip


def test_the_default_limits_are_the_shipped_settings() -> None:
    assert RecordLimits.from_settings(load_settings().validation) == RecordLimits()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (GOOD | {"amount": 1e308}, "amount must be at most 1,000,000,000,000"),
        (TOUCH | {"campaign": "x" * 900_000}, "field 'campaign': String should have at most 256"),
        (TOUCH | {"interaction": "y" * 257}, "field 'interaction': String should have at most"),
        (GOOD | {"currency": "z" * 300}, "field 'currency': String should have at most 256"),
        (TOUCH | {"ts": "2999-01-01T00:00:00Z"}, "outside the accepted range"),
        (TOUCH | {"ts": -5}, "outside the accepted range"),
    ],
)
def test_a_record_beyond_a_bound_is_invalid_with_that_reason(
    record: dict[str, object], reason: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRecord, match=reason.replace("(", r"\(")):
        parse_event(record)
    # The vectorised reader says the same, and keeps the good records around it.
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in (TOUCH, record, GOOD)) + "\n")
    read = read_event_table(log)
    assert read.count == 2 and [(r.line, reason in r.reason) for r in read.invalid] == [(2, True)]


def test_limits_come_from_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in (TOUCH, GOOD, GOOD | {"event_id": "p2",
                   "order_id": "o2", "amount": 500.0})) + "\n")  # fmt: skip
    monkeypatch.setenv("CRM_VALIDATION__MAX_AMOUNT", "100")
    try:
        assert main(["attribute", str(log), "--events", "--models", "last_touch"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["totals"]["invalid_records"] == 1 and out["totals"]["conversions"] == 1
        assert record_limits().max_amount == 100
    finally:
        set_record_limits(RecordLimits())
