"""A realistic synthetic CRM event stream for demos, tests and benchmarks.

Customers meet channels with different reach; each touch raises their purchase propensity by
a channel-specific effect that fades over days; CRM channels are silent for the holdout
(control) group; some customers buy again; activity follows a weekly and a daily cycle.
Campaign costs are booked daily. Events are written in *arrival order*: shuffled within the
allowed lateness, with duplicates and, optionally, a share of invalid records of many kinds.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class ChannelProfile:
    """How often a channel reaches a customer and how much a touch lifts buying."""

    name: str
    touches_per_week: float
    effect: float
    crm: bool
    cost_per_touch: float


DEFAULT_CHANNELS = (
    ChannelProfile("email", 1.6, 0.006, True, 0.002),
    ChannelProfile("push", 1.2, 0.004, True, 0.001),
    ChannelProfile("sms", 0.4, 0.010, True, 0.02),
    ChannelProfile("whatsapp", 0.3, 0.012, True, 0.015),
    ChannelProfile("paid_search", 0.5, 0.016, False, 0.60),
    ChannelProfile("social", 0.7, 0.005, False, 0.20),
    ChannelProfile("display", 0.9, 0.002, False, 0.05),
    ChannelProfile("organic_search", 0.4, 0.010, False, 0.0),
    ChannelProfile("direct", 0.3, 0.013, False, 0.0),
)

EMAIL_FUNNEL = (("open", 0.35), ("click", 0.25))


@dataclass
class GeneratorConfig:
    """Size and shape of the synthetic stream."""

    customers: int = 2_000
    days: int = 60
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    seed: int = 7
    control_share: float = 0.05
    base_daily_purchase: float = 0.002
    effect_half_life_days: float = 3.0
    lateness_minutes: float = 30.0
    duplicate_rate: float = 0.01
    invalid_rate: float = 0.0
    channels: tuple[ChannelProfile, ...] = field(default=DEFAULT_CHANNELS)


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _weekly(day: datetime) -> float:
    return (0.8, 0.9, 1.0, 1.0, 1.1, 1.3, 1.2)[day.weekday()]


def _hour(rng: random.Random) -> float:
    # Most activity in the day and evening.
    return min(23.99, max(0.0, rng.gauss(15.0, 4.0)))


def _customer_events(cfg: GeneratorConfig, rng: random.Random, index: int) -> list[dict[str, Any]]:
    cid = f"c{index:06d}"
    control = rng.random() < cfg.control_share
    events: list[dict[str, Any]] = [
        {
            "type": "assignment",
            "event_id": f"a-{cid}",
            "customer_id": cid,
            "group": "control" if control else "treatment",
            "ts": _iso(cfg.start),
        }
    ]
    affinity = rng.lognormvariate(0.0, 0.6)
    spend = rng.lognormvariate(3.8, 0.5)
    lift_decay = math.log(2) / cfg.effect_half_life_days
    lift = 0.0
    serial = 0
    for d in range(cfg.days):
        day = cfg.start + timedelta(days=d)
        season = _weekly(day) * (1.0 + 0.3 * math.sin(2 * math.pi * d / 30.0))
        lift *= math.exp(-lift_decay)
        for ch in cfg.channels:
            if control and ch.crm:
                continue
            rate = ch.touches_per_week / 7.0 * season * affinity
            for _ in range(_poisson(rng, rate)):
                serial += 1
                ts = day + timedelta(hours=_hour(rng))
                campaign = f"{ch.name}-{(d // 14) + 1:02d}"
                interaction = "delivered" if ch.crm else "click"
                events.append(_touch(cid, serial, ch.name, campaign, interaction, ts))
                lift += ch.effect
                if ch.name == "email":
                    for step, p in EMAIL_FUNNEL:
                        if rng.random() < p:
                            serial += 1
                            ts = ts + timedelta(minutes=rng.uniform(1, 120))
                            events.append(_touch(cid, serial, ch.name, campaign, step, ts))
                        else:
                            break
        if rng.random() < 1 - math.exp(-(cfg.base_daily_purchase * season + lift)):
            serial += 1
            ts = day + timedelta(hours=_hour(rng))
            amount = round(spend * rng.lognormvariate(0.0, 0.3), 2)
            events.append(
                {
                    "type": "purchase",
                    "event_id": f"p-{cid}-{serial}",
                    "customer_id": cid,
                    "order_id": f"o-{cid}-{serial}",
                    "amount": amount,
                    "currency": "EUR",
                    "ts": _iso(ts),
                }
            )
            lift *= 0.3  # a purchase satisfies the need for a while
    return events


def _touch(
    cid: str, serial: int, channel: str, campaign: str, interaction: str, ts: datetime
) -> dict[str, Any]:
    return {
        "type": "touchpoint",
        "event_id": f"t-{cid}-{serial}",
        "customer_id": cid,
        "channel": channel,
        "campaign": campaign,
        "interaction": interaction,
        "ts": _iso(ts),
    }


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _costs(cfg: GeneratorConfig, touches: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    by_name = {c.name: c for c in cfg.channels}
    out = []
    for (campaign, day), count in sorted(touches.items()):
        channel = campaign.rsplit("-", 1)[0]
        amount = round(count * by_name[channel].cost_per_touch * 100, 2)
        if amount <= 0:
            continue
        out.append(
            {
                "type": "cost",
                "event_id": f"cost-{campaign}-{day}",
                "campaign": campaign,
                "channel": channel,
                "amount": amount,
                "currency": "EUR",
                "ts": f"{day}T23:00:00Z",
            }
        )
    return out


INVALID_KINDS = (
    "bad_json",
    "not_object",
    "missing_type",
    "unknown_type",
    "missing_field",
    "naive_ts",
    "bad_ts",
    "negative_amount",
    "text_amount",
    "empty_customer",
    "bad_group",
)


def invalid_record(kind: str, rng: random.Random, serial: int) -> str:
    """One invalid line of the given kind (as text: some are not even JSON)."""
    base = {
        "type": "purchase",
        "event_id": f"bad-{serial}",
        "customer_id": f"c{rng.randrange(1000):06d}",
        "order_id": f"bad-{serial}",
        "amount": 10.0,
        "ts": "2026-01-10T10:00:00Z",
    }
    if kind == "bad_json":
        return '{"type": "touchpoint", "event_id": "bad-' + str(serial) + '", '
    if kind == "not_object":
        return json.dumps(["touchpoint", serial])
    if kind == "missing_type":
        base.pop("type")
    elif kind == "unknown_type":
        base["type"] = "refund"
    elif kind == "missing_field":
        base.pop("order_id")
    elif kind == "naive_ts":
        base["ts"] = "2026-01-10T10:00:00"
    elif kind == "bad_ts":
        base["ts"] = "yesterday"
    elif kind == "negative_amount":
        base["amount"] = -5
    elif kind == "text_amount":
        base["amount"] = "ten euros"
    elif kind == "empty_customer":
        base["customer_id"] = ""
    elif kind == "bad_group":
        base = {
            "type": "assignment",
            "event_id": f"bad-{serial}",
            "customer_id": "c000001",
            "group": "maybe",
            "ts": "2026-01-10T10:00:00Z",
        }
    return json.dumps(base)


def generate(cfg: GeneratorConfig) -> Iterator[str]:
    """Lines of JSON, in arrival order."""
    rng = random.Random(cfg.seed)
    events: list[dict[str, Any]] = []
    touch_counts: dict[tuple[str, str], int] = {}
    for i in range(cfg.customers):
        for event in _customer_events(cfg, rng, i):
            events.append(event)
            if event["type"] == "touchpoint" and event["interaction"] in ("delivered", "click"):
                key = (event["campaign"], event["ts"][:10])
                touch_counts[key] = touch_counts.get(key, 0) + 1
    events += _costs(cfg, touch_counts)
    lateness_s = cfg.lateness_minutes * 60.0

    def arrival(event: dict[str, Any]) -> float:
        ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()
        return ts + rng.uniform(0.0, lateness_s)

    keyed = sorted(((arrival(e), j, json.dumps(e)) for j, e in enumerate(events)))
    lines = [line for _, _, line in keyed]
    out: list[str] = []
    serial = 0
    for line in lines:
        out.append(line)
        if rng.random() < cfg.duplicate_rate:
            out.append(line)
        if rng.random() < cfg.invalid_rate:
            serial += 1
            out.append(invalid_record(INVALID_KINDS[serial % len(INVALID_KINDS)], rng, serial))
    yield from out
