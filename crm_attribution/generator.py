"""A realistic synthetic CRM event stream for demos, tests and benchmarks, a day at a time.

Customers meet channels with different reach; each touch raises their purchase propensity by
a channel-specific effect that fades over days; CRM channels are silent for the holdout
(control) group; some customers buy again, until they drop out; activity follows a weekly and
a monthly cycle.
Campaign costs are booked daily. Events come out in *arrival order*: each event arrives up to
``lateness_minutes`` after it happened, with duplicates and, optionally, a share of invalid
records of many kinds.

The simulation advances one day at a time over all customers at once (numpy arrays), so a
million customers take seconds, and events leave as soon as nothing generated later can arrive
before them: memory holds about two days of events, whatever the log's length.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ChannelProfile:
    """How often a channel reaches a customer and how much a touch lifts buying."""

    name: str
    touches_per_week: float
    effect: float
    crm: bool
    cost_per_touch: float


# About 0.85 touches a week per customer (before affinity and season), as a CRM base sees it:
# 60,000 customers over 180 days make about two million events.
DEFAULT_CHANNELS = (
    ChannelProfile("email", 0.22, 0.024, True, 0.002),
    ChannelProfile("push", 0.16, 0.016, True, 0.001),
    ChannelProfile("sms", 0.053, 0.040, True, 0.02),
    ChannelProfile("whatsapp", 0.04, 0.048, True, 0.015),
    ChannelProfile("paid_search", 0.066, 0.064, False, 0.60),
    ChannelProfile("social", 0.09, 0.020, False, 0.20),
    ChannelProfile("display", 0.116, 0.008, False, 0.05),
    ChannelProfile("organic_search", 0.053, 0.040, False, 0.0),
    ChannelProfile("direct", 0.04, 0.052, False, 0.0),
)

# About six touches a week per customer: what earlier versions generated, kept for tests that
# need many touches per journey (late touches, short windows) in few days.
DENSE_CHANNELS = tuple(
    ChannelProfile(c.name, c.touches_per_week * 7.5, c.effect / 4, c.crm, c.cost_per_touch)
    for c in DEFAULT_CHANNELS
)

# Email funnel after delivery: each step happens with this probability given the previous one.
EMAIL_FUNNEL = (("open", 0.35), ("click", 0.25))
CAMPAIGN_DAYS = 14  # a new campaign per channel every two weeks
MS_PER_DAY = 86_400_000
MS_PER_MINUTE = 60_000

# Event kinds, in the order of the ``kind`` column of a generated batch.
ASSIGNMENT, TOUCHPOINT, PURCHASE, COST = 0, 1, 2, 3
# Interactions of a touchpoint.
INTERACTIONS = ("delivered", "click", "open")


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


def _weekly(weekday: int) -> float:
    return (0.8, 0.9, 1.0, 1.0, 1.1, 1.3, 1.2)[weekday]


@dataclass
class EventBatch:
    """Generated events as columns (one row per event); see :func:`batches`."""

    kind: NDArray[np.int8]
    customer: NDArray[np.int64]  # customer index (-1 for costs)
    ts_ms: NDArray[np.int64]
    channel: NDArray[np.int16]  # index into the channel profiles (-1: none)
    period: NDArray[np.int32]  # campaign period number, 1-based (0: none)
    interaction: NDArray[np.int8]  # index into INTERACTIONS (-1: none)
    amount: NDArray[np.float64]  # purchases and costs (NaN otherwise)
    serial: NDArray[np.int64]  # unique number within the log (event and order ids)
    control: NDArray[np.bool_]  # assignments: the customer is in the control group

    def __len__(self) -> int:
        return len(self.kind)

    def take(self, index: NDArray[np.int64]) -> EventBatch:
        """The rows at ``index``, in that order."""
        return EventBatch(*(getattr(self, name)[index] for name in _COLUMNS))

    @classmethod
    def concat(cls, parts: list[EventBatch]) -> EventBatch:
        """Rows of every part, in order."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMNS))


_COLUMNS = ("kind", "customer", "ts_ms", "channel", "period", "interaction", "amount",
            "serial", "control")  # fmt: skip


def _empty() -> EventBatch:
    return EventBatch(
        np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64),
        np.zeros(0, np.int16), np.zeros(0, np.int32), np.zeros(0, np.int8),
        np.zeros(0, np.float64), np.zeros(0, np.int64), np.zeros(0, np.bool_),
    )  # fmt: skip


class _Simulation:
    """The customers' state between days and the events of one day."""

    def __init__(self, cfg: GeneratorConfig, rng: np.random.Generator) -> None:
        n = cfg.customers
        self.cfg = cfg
        self.rng = rng
        self.start_ms = _epoch_ms(cfg.start)
        self.control = rng.random(n) < cfg.control_share
        self.affinity = rng.lognormal(0.0, 0.6, n)
        self.spend = rng.lognormal(3.8, 0.5, n)
        # Customers drop out: after each purchase, with a probability of their own (the
        # BG/NBD story, mean 1/6), they buy no more; CRM messages keep reaching them.
        self.dropout = rng.beta(1.0, 5.0, n)
        self.active = np.ones(n, np.bool_)
        self.lift = np.zeros(n)
        self.lift_decay = math.log(2) / cfg.effect_half_life_days
        self.serial = 0
        channels = cfg.channels
        self.effects = np.array([c.effect for c in channels])
        weekly = np.array([c.touches_per_week for c in channels])
        crm = np.array([c.crm for c in channels])
        # A touch's channel: the channels' reach shares, without the CRM ones for the control.
        self.rate_treated = weekly.sum() / 7.0
        self.rate_control = weekly[~crm].sum() / 7.0
        self.cdf_treated = np.cumsum(weekly / weekly.sum())
        control_weekly = np.where(crm, 0.0, weekly)
        self.cdf_control = np.cumsum(control_weekly / max(control_weekly.sum(), 1e-300))
        self.crm = crm
        self.email = next((i for i, c in enumerate(channels) if c.name == "email"), -1)

    def _serials(self, count: int) -> NDArray[np.int64]:
        first = self.serial + 1
        self.serial += count
        return np.arange(first, first + count, dtype=np.int64)

    def assignments(self) -> EventBatch:
        """Every customer's holdout assignment, at the start."""
        n = self.cfg.customers
        return EventBatch(
            np.full(n, ASSIGNMENT, np.int8), np.arange(n, dtype=np.int64),
            np.full(n, self.start_ms, np.int64), np.full(n, -1, np.int16),
            np.zeros(n, np.int32), np.full(n, -1, np.int8), np.full(n, np.nan),
            np.zeros(n, np.int64), self.control.copy(),
        )  # fmt: skip

    def _hours_ms(self, count: int) -> NDArray[np.int64]:
        # Most activity in the day and evening.
        hours = np.clip(self.rng.normal(15.0, 4.0, count), 0.0, 23.99)
        return np.asarray(hours * 3_600_000, dtype=np.int64)

    def day(self, d: int) -> EventBatch:
        """Touches, purchases and costs of day ``d`` for every customer."""
        cfg, rng = self.cfg, self.rng
        day_ms = self.start_ms + d * MS_PER_DAY
        weekday = (cfg.start + timedelta(days=d)).weekday()
        season = _weekly(weekday) * (1.0 + 0.3 * math.sin(2 * math.pi * d / 30.0))
        self.lift *= math.exp(-self.lift_decay)
        rate = np.where(self.control, self.rate_control, self.rate_treated)
        counts = rng.poisson(rate * season * self.affinity)
        who = np.repeat(np.arange(cfg.customers, dtype=np.int64), counts)
        draws = rng.random(len(who))
        channel = np.where(
            self.control[who],
            np.searchsorted(self.cdf_control, draws, side="right"),
            np.searchsorted(self.cdf_treated, draws, side="right"),
        )
        channel = np.minimum(channel, len(cfg.channels) - 1).astype(np.int16)
        touch_ts = day_ms + self._hours_ms(len(who))
        interaction = np.where(self.crm[channel], 0, 1).astype(np.int8)
        self.lift += np.bincount(who, weights=self.effects[channel], minlength=cfg.customers)
        parts = [_touches(who, touch_ts, channel, interaction, d)]
        if self.email >= 0:
            parts += self._email_funnel(who, touch_ts, channel, d)
        p_buy = 1.0 - np.exp(-(cfg.base_daily_purchase * season + self.lift))
        buyers = np.flatnonzero((rng.random(cfg.customers) < p_buy) & self.active)
        amount = np.round(self.spend[buyers] * rng.lognormal(0.0, 0.3, len(buyers)), 2)
        parts.append(
            EventBatch(
                np.full(len(buyers), PURCHASE, np.int8),
                buyers,
                day_ms + self._hours_ms(len(buyers)),
                np.full(len(buyers), -1, np.int16),
                np.zeros(len(buyers), np.int32),
                np.full(len(buyers), -1, np.int8),
                amount,
                np.zeros(len(buyers), np.int64),
                np.zeros(len(buyers), np.bool_),
            )  # fmt: skip
        )
        self.lift[buyers] *= 0.3  # a purchase satisfies the need for a while
        self.active[buyers] = rng.random(len(buyers)) >= self.dropout[buyers]
        batch = EventBatch.concat(parts)
        batch = EventBatch.concat([batch, self._costs(batch, day_ms)])
        batch.serial = self._serials(len(batch))
        return batch

    def _email_funnel(
        self, who: NDArray[np.int64], ts: NDArray[np.int64], channel: NDArray[np.int16], d: int
    ) -> list[EventBatch]:
        rng = self.rng
        out = []
        # Each step follows the previous one by 1 to 120 minutes, for those who took it.
        step = np.flatnonzero(channel == self.email)
        step_ts = ts[step]
        for name, probability in EMAIL_FUNNEL:
            took = rng.random(len(step)) < probability
            step, step_ts = step[took], step_ts[took]
            step_ts = step_ts + np.asarray(
                rng.uniform(1.0, 120.0, len(step)) * MS_PER_MINUTE, dtype=np.int64
            )
            interaction = np.full(len(step), INTERACTIONS.index(name), np.int8)
            out.append(_touches(who[step], step_ts, channel[step], interaction, d))
        return out

    def _costs(self, batch: EventBatch, day_ms: int) -> EventBatch:
        """One cost event per campaign with delivered or clicked touches that day."""
        cfg = self.cfg
        paid = (batch.kind == TOUCHPOINT) & (batch.interaction <= 1)
        per_channel = np.bincount(batch.channel[paid], minlength=len(cfg.channels))
        rows = [
            (ch, round(int(count) * cfg.channels[ch].cost_per_touch * 100, 2))
            for ch, count in enumerate(per_channel)
        ]
        rows = [(ch, amount) for ch, amount in rows if amount > 0]
        n = len(rows)
        period = (day_ms - self.start_ms) // MS_PER_DAY // CAMPAIGN_DAYS + 1
        return EventBatch(
            np.full(n, COST, np.int8), np.full(n, -1, np.int64),
            np.full(n, day_ms + 23 * 3_600_000, np.int64),
            np.array([ch for ch, _ in rows], np.int16), np.full(n, period, np.int32),
            np.full(n, -1, np.int8), np.array([a for _, a in rows], np.float64),
            np.zeros(n, np.int64), np.zeros(n, np.bool_),
        )  # fmt: skip


def _touches(
    who: NDArray[np.int64],
    ts: NDArray[np.int64],
    channel: NDArray[np.int16],
    interaction: NDArray[np.int8],
    d: int,
) -> EventBatch:
    n = len(who)
    return EventBatch(
        np.full(n, TOUCHPOINT, np.int8), who, ts, channel,
        np.full(n, d // CAMPAIGN_DAYS + 1, np.int32), interaction, np.full(n, np.nan),
        np.zeros(n, np.int64), np.zeros(n, np.bool_),
    )  # fmt: skip


def _epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def batches(cfg: GeneratorConfig) -> Iterator[EventBatch]:
    """The log in arrival order, in batches of about a day, duplicates included."""
    rng = np.random.default_rng(cfg.seed)
    sim = _Simulation(cfg, rng)
    lateness_ms = cfg.lateness_minutes * MS_PER_MINUTE
    pending = _empty()
    pending_arrival = np.zeros(0)
    for d in range(-1, cfg.days):
        fresh = sim.assignments() if d < 0 else sim.day(d)
        arrival = fresh.ts_ms + rng.uniform(0.0, lateness_ms, len(fresh))
        pending = EventBatch.concat([pending, fresh])
        pending_arrival = np.concatenate([pending_arrival, arrival])
        # Nothing generated from the next day on happens, hence arrives, before it starts.
        horizon = sim.start_ms + (d + 1) * MS_PER_DAY if d + 1 < cfg.days else math.inf
        ready = pending_arrival < horizon
        if ready.any():
            ready_rows = np.flatnonzero(ready)
            order = ready_rows[np.argsort(pending_arrival[ready_rows], kind="stable")]
            out = pending.take(order)
            keep = np.flatnonzero(~ready)
            pending, pending_arrival = pending.take(keep), pending_arrival[keep]
            twice = rng.random(len(out)) < cfg.duplicate_rate
            yield out.take(np.repeat(np.arange(len(out)), np.where(twice, 2, 1)))


class _Names:
    """Text of ids, channels and campaigns, made once per value."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.width = max(6, len(str(cfg.customers - 1)))
        self.channels = [c.name for c in cfg.channels]
        self.start_ms = _epoch_ms(cfg.start)

    def customer(self, index: int) -> str:
        return f"c{index:0{self.width}d}"


def iso_ms(ts_ms: NDArray[np.int64]) -> NDArray[np.str_]:
    """ISO 8601 UTC text with milliseconds ("2026-01-05T15:04:05.123Z") of epoch-ms times."""
    text = np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z")


def records(batch: EventBatch, names: _Names) -> Iterator[dict[str, Any]]:
    """Each event of a batch as a JSON-ready dict (the producers' format)."""
    times = iso_ms(batch.ts_ms).tolist()
    for i in range(len(batch)):
        yield _record(batch, names, i, times[i])


def _record(batch: EventBatch, names: _Names, i: int, ts: str) -> dict[str, Any]:
    kind = int(batch.kind[i])
    serial = int(batch.serial[i])
    if kind == COST:
        channel = names.channels[int(batch.channel[i])]
        campaign = f"{channel}-{int(batch.period[i]):02d}"
        day = ts[:10]
        return {"type": "cost", "event_id": f"cost-{campaign}-{day}", "campaign": campaign,
                "channel": channel, "amount": float(batch.amount[i]), "currency": "EUR",
                "ts": ts}  # fmt: skip
    cid = names.customer(int(batch.customer[i]))
    if kind == ASSIGNMENT:
        group = "control" if batch.control[i] else "treatment"
        return {"type": "assignment", "event_id": f"a-{cid}", "customer_id": cid,
                "group": group, "ts": ts}  # fmt: skip
    if kind == PURCHASE:
        return {"type": "purchase", "event_id": f"p-{cid}-{serial}", "customer_id": cid,
                "order_id": f"o-{cid}-{serial}", "amount": float(batch.amount[i]),
                "currency": "EUR", "ts": ts}  # fmt: skip
    channel = names.channels[int(batch.channel[i])]
    return {"type": "touchpoint", "event_id": f"t-{cid}-{serial}", "customer_id": cid,
            "channel": channel, "campaign": f"{channel}-{int(batch.period[i]):02d}",
            "interaction": INTERACTIONS[int(batch.interaction[i])], "ts": ts}  # fmt: skip


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
        base["type"] = "chargeback"
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
    names = _Names(cfg)
    invalid_rng = random.Random(cfg.seed)
    serial = 0
    for batch in batches(cfg):
        for record in records(batch, names):
            yield json.dumps(record)
            if cfg.invalid_rate and invalid_rng.random() < cfg.invalid_rate:
                serial += 1
                yield invalid_record(INVALID_KINDS[serial % len(INVALID_KINDS)], invalid_rng,
                                     serial)  # fmt: skip


FILE_COLUMNS = ("type", "event_id", "customer_id", "channel", "campaign", "interaction",
                "order_id", "amount", "currency", "group", "ts")  # fmt: skip
_KIND_NAMES = ("assignment", "touchpoint", "purchase", "cost")


def _kind_frame(batch: EventBatch, names: _Names, kind: int) -> Any:
    """The rows of one kind as a Polars frame of that kind's fields, ``pos`` its rows."""
    import polars as pl

    rows = np.flatnonzero(batch.kind == kind)
    sub = batch.take(rows)
    frame = pl.DataFrame({"pos": rows, "ts_ms": sub.ts_ms})
    columns: dict[str, Any] = {"type": pl.lit(_KIND_NAMES[kind])}
    serial = pl.lit(pl.Series(sub.serial)).cast(pl.String)
    if kind != COST:
        cid = pl.lit("c") + pl.lit(pl.Series(sub.customer)).cast(pl.String).str.zfill(names.width)
        columns["customer_id"] = cid
    if kind in (TOUCHPOINT, COST):
        channel = pl.Series(names.channels).gather(sub.channel.astype(np.int64))
        period = pl.lit(pl.Series(sub.period)).cast(pl.String).str.zfill(2)
        columns["channel"] = pl.lit(channel)
        columns["campaign"] = pl.lit(channel) + pl.lit("-") + period
    if kind in (PURCHASE, COST):
        columns["amount"] = pl.lit(pl.Series(sub.amount))
        columns["currency"] = pl.lit("EUR")
    frame = frame.with_columns(**columns)
    if kind == TOUCHPOINT:
        interaction = pl.Series(list(INTERACTIONS)).gather(sub.interaction.astype(np.int64))
        frame = frame.with_columns(
            event_id=pl.lit("t-") + pl.col("customer_id") + pl.lit("-") + serial,
            interaction=pl.lit(interaction),
        )
    elif kind == PURCHASE:
        frame = frame.with_columns(
            event_id=pl.lit("p-") + pl.col("customer_id") + pl.lit("-") + serial,
            order_id=pl.lit("o-") + pl.col("customer_id") + pl.lit("-") + serial,
        )
    elif kind == ASSIGNMENT:
        group = np.where(sub.control, "control", "treatment")
        frame = frame.with_columns(
            event_id=pl.lit("a-") + pl.col("customer_id"), group=pl.lit(pl.Series(group))
        )
    else:
        day = pl.from_epoch(pl.col("ts_ms"), time_unit="ms").dt.strftime("%Y-%m-%d")
        frame = frame.with_columns(event_id=pl.lit("cost-") + pl.col("campaign") + "-" + day)
    return frame


_JSON_FIELDS = {
    TOUCHPOINT: ("customer_id", "channel", "campaign", "interaction"),
    PURCHASE: ("customer_id", "order_id", "amount", "currency"),
    ASSIGNMENT: ("customer_id", "group"),
    COST: ("campaign", "channel", "amount", "currency"),
}


def json_lines(batch: EventBatch, names: _Names) -> Any:
    """Each event of a batch as the JSON text ``json.dumps`` gives its record, in order."""
    import polars as pl

    def quoted(value: Any) -> Any:
        # The generator's names, ids and times hold no character JSON would escape.
        return pl.lit('"') + value + pl.lit('"')

    parts = []
    for kind, fields in _JSON_FIELDS.items():
        frame = _kind_frame(batch, names, kind)
        if frame.height == 0:
            continue
        pieces = [pl.lit('{"type": "' + _KIND_NAMES[kind] + '", "event_id": '),
                  quoted(pl.col("event_id"))]  # fmt: skip
        for name in fields:
            value = pl.col(name).cast(pl.String) if name == "amount" else quoted(pl.col(name))
            pieces += [pl.lit(f', "{name}": '), value]
        ts = pl.from_epoch(pl.col("ts_ms"), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        pieces += [pl.lit(', "ts": '), quoted(ts), pl.lit("}")]
        parts.append(frame.select("pos", line=pl.concat_str(pieces)))
    return pl.concat(parts).sort("pos")["line"]


def file_frame(batch: EventBatch, names: _Names) -> Any:
    """A batch as a Polars frame of :data:`FILE_COLUMNS` (``ts`` a UTC datetime), in order."""
    import polars as pl

    parts = [_kind_frame(batch, names, kind) for kind in _JSON_FIELDS]
    frame = pl.concat([p for p in parts if p.height], how="diagonal_relaxed").sort("pos")
    frame = frame.with_columns(
        ts=pl.from_epoch(pl.col("ts_ms"), time_unit="ms").cast(pl.Datetime("ms", "UTC"))
    )
    for name in FILE_COLUMNS:
        if name not in frame.columns:
            dtype = pl.Float64 if name == "amount" else pl.String
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(FILE_COLUMNS)


OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
_CHUNK_EVENTS = 262_144


def chunks(cfg: GeneratorConfig, size: int = _CHUNK_EVENTS) -> Iterator[EventBatch]:
    """:func:`batches` regrouped into chunks of at least ``size`` events (the last smaller)."""
    held: list[EventBatch] = []
    count = 0
    for batch in batches(cfg):
        held.append(batch)
        count += len(batch)
        if count >= size:
            yield EventBatch.concat(held)
            held, count = [], 0
    if held:
        yield EventBatch.concat(held)


def write_log(
    cfg: GeneratorConfig,
    path: Any,
    fmt: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the log to ``path`` as JSON Lines, CSV or Parquet; return the record count.

    Chunks are formatted on a second thread while the next ones are simulated, and written in
    order as they are ready, so memory stays at a few chunks whatever the log's size. Invalid
    records (``cfg.invalid_rate``) are JSON text: JSON Lines and CSV only.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {OUTPUT_FORMATS}")
    if fmt == "parquet" and cfg.invalid_rate:
        raise ValueError("invalid records are JSON text: write JSON Lines or CSV to include them")
    names = _Names(cfg)
    invalid = _InvalidLines(cfg)
    written = 0
    with _Sink(path, fmt) as sink, ThreadPoolExecutor(max_workers=2) as pool:
        ahead: deque[Future[Any]] = deque()

        def drain(limit: int) -> None:
            nonlocal written
            while len(ahead) > limit:
                written += sink.write(ahead.popleft().result(), invalid)
                if progress:
                    progress(written)

        for chunk in chunks(cfg):
            ahead.append(pool.submit(_formatted, chunk, names, fmt))
            drain(3)
        drain(0)
    return written


def _formatted(chunk: EventBatch, names: _Names, fmt: str) -> Any:
    return json_lines(chunk, names).to_frame() if fmt == "jsonl" else file_frame(chunk, names)


class _InvalidLines:
    """The invalid records a log gets, in the same places as :func:`generate` puts them."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.rate = cfg.invalid_rate
        self.rng = random.Random(cfg.seed)
        self.serial = 0

    def after(self, count: int) -> list[tuple[int, str]]:
        """(index of the event it follows, text) for the next ``count`` events."""
        if not self.rate:
            return []
        out = []
        for i in range(count):
            if self.rng.random() < self.rate:
                self.serial += 1
                kind = INVALID_KINDS[self.serial % len(INVALID_KINDS)]
                out.append((i, invalid_record(kind, self.rng, self.serial)))
        return out


class _Sink:
    """The output file of :func:`write_log`."""

    def __init__(self, path: Any, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self.handle: Any = None
        self.parquet: Any = None
        self.header = True

    def __enter__(self) -> _Sink:
        if self.fmt != "parquet":
            self.handle = (
                sys.stdout.buffer if str(self.path) == "-" else open(self.path, "wb")  # noqa: SIM115
            )
        return self

    def write(self, formatted: Any, invalid: _InvalidLines) -> int:
        """Append one formatted chunk; return how many records it wrote."""
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            table = formatted.to_arrow()
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self.parquet.write_table(table)
            return int(table.num_rows)
        extra = invalid.after(len(formatted))
        if self.fmt == "csv":
            formatted = _csv_text(formatted)
        if not extra:
            # The common case: Polars writes the lines straight to the file.
            if self.fmt == "jsonl":
                formatted.write_csv(self.handle, include_header=False, quote_style="never")
            else:
                formatted.write_csv(self.handle, include_header=self.header)
                self.header = False
            return len(formatted)
        if self.fmt == "jsonl":
            lines = formatted["line"].to_list()
        else:
            lines = formatted.write_csv(include_header=self.header).rstrip("\n").split("\n")
            if self.header:
                self.handle.write((lines.pop(0) + "\n").encode())
                self.header = False
        for index, text in reversed(extra):
            lines.insert(index + 1, text if self.fmt == "jsonl" else _csv_invalid(text))
        self.handle.write(("\n".join(lines) + "\n").encode())
        return len(lines)

    def __exit__(self, *exc: object) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.handle is not None and self.handle is not sys.stdout.buffer:
            self.handle.close()
        elif self.handle is not None:
            self.handle.flush()


def _csv_text(frame: Any) -> Any:
    import polars as pl

    return frame.with_columns(ts=pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))


def _csv_invalid(text: str) -> str:
    """An invalid JSON record as a CSV row of the file's columns (what a broken export gives)."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return '"' + text.replace('"', '""') + '"'
    if not isinstance(record, dict):
        return ",".join([""] * len(FILE_COLUMNS))
    cells = ["" if record.get(c) is None else str(record[c]) for c in FILE_COLUMNS]
    return ",".join('"' + c.replace('"', '""') + '"' if "," in c or '"' in c else c for c in cells)
