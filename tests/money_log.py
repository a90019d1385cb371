"""A log with the money rules' inputs added: rates, other currencies, refunds.

Shared by the real-broker invariant tests and the broker-free runner tests, which drain the
same money log (the batch's and the stream's money rules on the same events).
"""

from __future__ import annotations

import json
import random
from typing import Any

from attribution.events import InvalidRecord, parse_record


def with_money(lines: list[str], seed: int = 11) -> list[str]:
    """The log with rate events first, a fifth of the purchases and costs in USD and some in
    GBP, then refunds (partial and full) of about one order in ten, a refund of an order that
    does not exist and an amount in a currency without a rate: the batch's and the stream's
    money rules on the same log (attribution/money.py, stream/processing/money.py)."""
    rates = [
        {"type": "rate", "event_id": "x-usd", "currency": "USD", "rate": 0.9,
         "ts": "2025-12-01T00:00:00Z"},
        {"type": "rate", "event_id": "x-gbp", "currency": "GBP", "rate": 1.17,
         "ts": "2025-12-01T00:00:00Z"},
    ]  # fmt: skip
    out = [json.dumps(rate) for rate in rates]
    refunds: dict[str, dict[str, Any]] = {}  # one per purchase event, however many copies
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append(line)
            continue
        if not isinstance(record, dict) or record.get("type") not in ("purchase", "cost"):
            out.append(line)
            continue
        try:
            valid = parse_record(record)
        except InvalidRecord:
            out.append(line)
            continue
        # Decided by the event id: the log's duplicate copies of an event stay identical.
        rng = random.Random(f"{seed}-{valid.event_id}")
        pick = rng.random()
        if pick < 0.2:
            record["currency"] = "USD"
        elif pick < 0.3:
            record["currency"] = "GBP"
        out.append(json.dumps(record))
        if valid.type == "purchase" and rng.random() < 0.1:
            part = rng.choice([0.25, 0.5, 1.0])
            # A day later, after every purchase in the file (produced after their orders).
            refunds[valid.event_id] = {
                "type": "refund", "event_id": f"r-{record['event_id']}",
                "customer_id": record["customer_id"], "order_id": record["order_id"],
                "amount": round(record["amount"] * part, 2), "ts": valid.ts_ms + 86_400_000,
            }  # fmt: skip
    out += [json.dumps(refund) for refund in refunds.values()]
    first = next(iter(refunds.values()))
    out.append(json.dumps({**first, "event_id": "r-unknown", "order_id": "no-such-order"}))
    out.append(json.dumps({"type": "cost", "event_id": "k-jpy", "campaign": "c-jpy",
                           "channel": "email", "amount": 500, "currency": "JPY",
                           "ts": "2026-01-06T00:00:00Z"}))  # fmt: skip
    return out
