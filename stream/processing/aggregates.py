"""The aggregates table's values: written per source partition here, and summed here.

Every aggregate key names the partition whose events wrote it (see
:mod:`stream.processing.aggregate_keys`). A partition is processed by exactly one worker at a
time and its table changelog lives in the same partition, so two workers, one worker, or a
restarted worker all end with the same per-partition values; a query sums the partitions
(:func:`merge_partitions`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import polars as pl

from attribution.analytics.converted import (
    ConvertedTable,
    converted_from_arrays,
    converted_from_columns,
)
from attribution.analytics.funnel import REACHED
from attribution.events import Cost
from attribution.journey_table import ranges
from attribution.journeys import ConvertedJourney, Journey
from stream.processing import aggregate_keys as keys
from stream.processing import journey_blocks
from stream.processing.analytics_parts import apply_cost
from stream.processing.contributions import Contribution, day_of
from stream.processing.journey_rows import journey_to_row, row_to_journey
from stream.processing.write_back import editable

TOTAL_FIELDS = ("conversions", "value", "null", "unattributed_conversions")
# Journey keys per partition and day. Their values are compressed blocks since 2026-12-06: 8 of
# them hold a day in values about the size of the 32 of JSON text before (a mean of 1.0 KB
# against 0.9 KB at 20,000 customers x 180 days), and fewer, fuller blocks compress better and
# save each key's own bytes (a worker holds every one of them).
CONVERSION_BUCKETS = 8
# Tables written from 2026-12-02 to 2026-12-06 spread a day's journeys over 32 keys. As 8
# divides 32, an id's bucket of 32 modulo 8 is its bucket of 8: the first 8 of those keys are
# the new ones, and the others are read (and emptied as their journeys change) but never grow.
OLD_CONVERSION_BUCKETS = 32
# The aggregate kinds the credit intervals resample: every kept journey.
CREDIT_INTERVAL_KINDS = {keys.CONVERSIONS, keys.NULL_PATHS}


def _add_credits(
    target: dict[str, list[float]], credits: Mapping[str, tuple[float, float]], sign: int
) -> None:
    for channel, (conv, value) in credits.items():
        slot = target.setdefault(channel, [0.0, 0.0])
        slot[0] += sign * conv
        slot[1] += sign * value


def _add_totals(target: dict[str, float], delta: Contribution) -> None:
    s = delta.sign
    target["conversions"] = target.get("conversions", 0.0) + s * delta.conversions
    target["value"] = target.get("value", 0.0) + s * delta.value
    target["null"] = target.get("null", 0.0) + s * delta.nulls
    target["unattributed_conversions"] = (
        target.get("unattributed_conversions", 0.0) + s * delta.unattributed
    )


def apply_contribution(
    table: MutableMapping[str, Any], partition: int, delta: Contribution
) -> None:
    """Add a signed journey contribution to the partition's aggregate keys."""
    _add_totals(editable(table, keys.totals(partition), dict), delta)
    if delta.conversions:
        day = editable(table, keys.daily(partition, delta.day), dict)
        _add_totals(day.setdefault("totals", {}), delta)
        for model, credits in delta.credits.items():
            _add_credits(day.setdefault(model, {}), credits, delta.sign)
    if delta.credits:
        all_time = editable(table, keys.credits(partition), dict)
        for model, credits in delta.credits.items():
            _add_credits(all_time.setdefault(model, {}), credits, delta.sign)
    if delta.transitions is not None:
        _apply_transitions(table, partition, delta)


def _new_state() -> dict[str, Any]:
    return {"to": {}, "cv": 0.0, "cc": 0.0}


def _apply_transitions(
    table: MutableMapping[str, Any], partition: int, delta: Contribution
) -> None:
    counts = delta.transitions
    assert counts is not None
    sign = delta.sign
    for (src, dst), weight in counts.edges.items():
        to = editable(table, keys.markov_state(partition, src), _new_state)["to"]
        new = to.get(dst, 0.0) + sign * weight
        if new:
            to[dst] = new
        else:
            to.pop(dst, None)
    for state, value in counts.conversion_value.items():
        editable(table, keys.markov_state(partition, state), _new_state)["cv"] += sign * value
    for state, count in counts.conversion_count.items():
        editable(table, keys.markov_state(partition, state), _new_state)["cc"] += sign * count


def note_event(table: MutableMapping[str, Any], partition: int, ts_ms: int | None) -> None:
    """Move the partition's newest event time (one write, only when it moves)."""
    key = keys.totals(partition)
    totals = dict(table.get(key) or {})
    if ts_ms is not None and ts_ms > totals.get("wm", 0):
        totals["wm"] = ts_ms
        table[key] = totals


def stored_watermark(table: Mapping[str, Any], partition: int) -> int:
    """The partition's newest event time as its totals hold it (0: none yet)."""
    return int((table.get(keys.totals(partition)) or {}).get("wm", 0))


def with_watermark(totals: Mapping[str, Any] | None, ts_ms: int) -> dict[str, Any]:
    """A ``P|totals`` value whose newest event time is at least ``ts_ms``."""
    out = dict(totals or {})
    if ts_ms > out.get("wm", 0):
        out["wm"] = ts_ms
    return out


def note_invalid(table: MutableMapping[str, Any], partition: int, topic: str, offset: int) -> bool:
    """Count an invalid record once; False when this offset was already counted.

    After a restart Faust redelivers the records after the last committed offset; counting
    (and dead-lettering) a record again would make the totals differ from the batch engine.
    """
    key = keys.totals(partition)
    totals = dict(table.get(key) or {})
    seen = dict(totals.get("invalid_offsets") or {})
    if offset <= seen.get(topic, -1):
        return False
    seen[topic] = offset
    totals["invalid_offsets"] = seen
    totals["invalid"] = totals.get("invalid", 0) + 1
    table[key] = totals
    return True


def note_tick(table: MutableMapping[str, Any], partition: int, as_of_ms: int) -> None:
    """Move the partition's expiry clock forward (never back)."""
    key = keys.tick(partition)
    if (table.get(key) or 0) < as_of_ms:
        table[key] = as_of_ms


def record_cost(table: MutableMapping[str, Any], partition: int, event: Cost) -> None:
    """Keep a campaign cost event in ``P|costs`` (a repeat changes nothing)."""
    key = keys.costs(partition)
    changed = apply_cost(table.get(key), event)
    if changed is not None:
        table[key] = changed


def record_funnel(
    table: MutableMapping[str, Any],
    partition: int,
    before: Mapping[str, Sequence[str]] | None,
    after: Mapping[str, Sequence[str]] | None,
    campaign: str | None = None,
) -> None:
    """Add to ``P|funnel`` what one customer's funnel part gained (``apply_to_parts``).

    With ``campaign``, only that campaign's names are compared: ``apply_to_parts`` keeps the
    part itself unless the event's own campaign gained, so the other campaigns are unchanged.

    A funnel part only grows (a campaign's first touch, an interaction new for it), so the
    partition's counts are the sums of its customers' parts however events repeat or arrive
    out of order. ``n`` counts the customers added: a partition whose customers' parts
    predate ``P|funnel`` has fewer than its customers with a funnel part, and its share
    counts them from the parts instead (stream.processing.analytics_columns).
    """
    if before is after or not after or (campaign is None and before == after):
        return  # apply_to_parts keeps the part itself when the event adds nothing
    sums = editable(table, keys.funnel(partition), lambda: {"n": 0, "counts": {}})
    if not before:
        sums["n"] += 1
    counts = sums["counts"]
    # The event's campaign alone where it is known: a customer's part has a key per campaign
    # it met (tens at 180 days), and walking them all was 5.7% of a drain (cProfile).
    grown = after.items() if campaign is None else ((campaign, after.get(campaign) or ()),)
    for name_of_campaign, names in grown:
        known = (before or {}).get(name_of_campaign)
        if known is not None and len(known) == len(names):
            continue
        bucket = counts.setdefault(name_of_campaign, {})
        if known is None:
            bucket[REACHED] = bucket.get(REACHED, 0) + 1
        for name in set(names).difference(known or ()):
            bucket[name] = bucket.get(name, 0) + 1


def _buckets(journey_id: str) -> tuple[int, int]:
    """A journey id's bucket, and its bucket in tables written before 2026-12-06."""
    old = zlib.crc32(journey_id.encode("utf-8")) % OLD_CONVERSION_BUCKETS
    return old % CONVERSION_BUCKETS, old


def _older_keys(key: str, journey_id: str) -> list[str]:
    """The keys older tables may keep a journey of ``key`` in (not ``key`` itself)."""
    partition, kind, tail = keys.parse(key)
    day = tail.partition("|")[0]
    old = _buckets(journey_id)[1]
    if kind == keys.CONVERSIONS:
        # Tables written before the buckets (2026-12-02) keep a day's journeys in one key.
        found = [keys.conversions(partition, day, old), keys.conversions(partition, day, None)]
    else:
        found = [keys.null_paths(partition, day, old)]
    return [k for k in found if k != key]


def record_journeys(
    table: MutableMapping[str, Any], changes: Iterable[tuple[int, int, Journey]]
) -> None:
    """Keep (or drop, on retraction) a batch's journeys in ``P|conv|DAY|B`` (converted, for the
    analytics) and ``P|null|DAY|B`` (null paths, for the credit intervals): ``changes`` are
    ``(partition, sign, journey)`` in order.

    A day's journeys are spread over ``CONVERSION_BUCKETS`` keys by a stable hash of their id
    (the purchase event id; a null path's first touch event id, as a touch belongs to one
    journey): one key per day would grow with the day's conversions and be rewritten whole with
    each of them (a busy day's key would outgrow Kafka's message size limit). Each key's value is
    a compressed block (stream.processing.journey_blocks), edited once for the whole batch.
    """
    edits: dict[str, list[journey_blocks.Edit]] = {}
    for partition, sign, journey in changes:
        day = day_of(journey.ts_ms)
        if isinstance(journey, ConvertedJourney):
            journey_id = journey.event_id
            key = keys.conversions(partition, day, _buckets(journey_id)[0])
        else:
            journey_id = journey.touches[0].event_id
            key = keys.null_paths(partition, day, _buckets(journey_id)[0])
        pair = [journey.customer_id, journey_to_row(journey)] if sign > 0 else None
        edits.setdefault(key, []).append((sign, journey_id, pair))
    older: dict[str, list[journey_blocks.Edit]] = {}
    for key, key_edits in edits.items():
        for journey_id in journey_blocks.edit(table, key, key_edits):
            # A retracted journey may be kept where an older table put it: dropped there too
            # (a key that does not keep it is not written).
            for old_key in _older_keys(key, journey_id):
                older.setdefault(old_key, []).append((-1, journey_id, None))
    for key, key_edits in older.items():
        journey_blocks.edit(table, key, key_edits)


def record_conversion(
    table: MutableMapping[str, Any], partition: int, sign: int, journey: ConvertedJourney
) -> None:
    """Keep (or drop, on retraction) one converted journey in ``P|conv|DAY|B``
    (:func:`record_journeys`)."""
    record_journeys(table, [(partition, sign, journey)])


def stored_journeys(items: Iterable[tuple[str, Any]]) -> list[Journey]:
    """Every journey kept in ``P|conv`` and ``P|null`` items (keys with or without ``P|``),
    customer by customer in time order, as the batch engine's journey table lists them."""
    journeys: list[Journey] = []
    for key, value in items:
        parts = key.split("|")
        kind = parts[1] if parts[0].isdigit() else parts[0]
        if kind not in (keys.CONVERSIONS, keys.NULL_PATHS):
            continue
        for item in journey_blocks.pairs(value):
            customer, row = orjson.loads(item) if isinstance(item, str) else item
            journeys.append(row_to_journey(customer, row))
    journeys.sort(key=_journey_order)
    return journeys


def _journey_order(journey: Journey) -> tuple[str, int, int]:
    """A customer's journeys follow one another: order them by their last event."""
    if isinstance(journey, ConvertedJourney):
        return (journey.customer_id, journey.ts_ms, 1)
    return (journey.customer_id, journey.touches[-1].ts_ms, 0)


def credited_journey(
    table: Mapping[str, Any], partition: int, event_id: str, ts_ms: int
) -> ConvertedJourney | None:
    """The converted journey of a purchase as ``P|conv`` keeps it (None: not credited)."""
    key = keys.conversions(partition, day_of(ts_ms), _buckets(event_id)[0])
    for where in (key, *_older_keys(key, event_id)):
        pair = journey_blocks.find(table.get(where), event_id)
        if pair is not None:
            return converted_journeys([pair])[0]
    return None


def items_by_partition(
    items: Iterable[tuple[str, Any]], partitions: set[int], kinds: set[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The items of the given partitions (and kinds), by partition, keys without ``P|``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in items:
        partition, kind, _ = keys.parse(key)
        if partition in partitions and (not kinds or kind in kinds):
            out.setdefault(str(partition), {})[keys.without_partition(key)] = value
    return out


def analytics_items(
    items: Iterable[tuple[str, Any]], partitions: set[int]
) -> dict[int, dict[str, Any]]:
    """Per partition: ``costs`` (its cost events, or None), ``funnel_sums`` (``P|funnel``, or
    None) and ``journeys`` (its converted journeys as the [customer_id, row] pairs of
    ``P|conv``, as JSON text or decoded, see :func:`converted_journeys`)."""
    out: dict[int, dict[str, Any]] = {
        p: {"costs": None, "funnel_sums": None, "journeys": []} for p in partitions
    }
    for key, value in items:
        partition, kind, _ = keys.parse(key)
        if partition not in out:
            continue
        if kind == keys.COSTS:
            out[partition]["costs"] = value
        elif kind == keys.FUNNEL:
            out[partition]["funnel_sums"] = value
        elif kind == keys.CONVERSIONS:
            out[partition]["journeys"].extend(journey_blocks.pairs(value))
    return out


def converted_journeys(rows: Iterable[str | list[Any]]) -> list[ConvertedJourney]:
    """Journeys from the ``[customer_id, row]`` pairs of ``P|conv`` (as JSON text since
    2026-12, as lists before), in the batch engine's order."""
    journeys = []
    for item in rows:
        customer, row = orjson.loads(item) if isinstance(item, str) else item
        journey = row_to_journey(customer, row)
        assert isinstance(journey, ConvertedJourney)
        journeys.append(journey)
    journeys.sort(key=lambda j: (j.customer_id, j.ts_ms, j.event_id))
    return journeys


def converted_table(rows: Iterable[str | list[Any]]) -> ConvertedTable:
    """The table of the journeys of ``P|conv`` rows, in the order of
    :func:`converted_journeys` (without making a journey object of each)."""
    texts: list[str] = []
    decoded: list[Any] = []
    for item in rows:
        if isinstance(item, str):
            texts.append(item)
        else:
            decoded.append(item)
    # One parse of all the rows, not a call per row.
    decoded.extend(orjson.loads(f"[{','.join(texts)}]"))
    if not decoded:
        return converted_from_columns([], [], [], [], [], [], [], [])
    # [customer_id, ["c", order_id, event_id, ts_ms, value, touches]] (journey_rows.py),
    # made columns as they come, then sorted as columns: a Python sort keyed by a tuple per
    # journey was a third of this table's time at 60,000 customers.
    customers, journey_rows = _columns(decoded, 2, (0, 1))
    _, _, event_ids, ts_ms, values, touch_lists = _columns(journey_rows, 6, (2, 3, 4, 5))
    counts = np.fromiter(map(len, touch_lists), np.int64, len(touch_lists))
    touches = list(chain.from_iterable(touch_lists))
    # journey_to_row writes every touch as [channel, ts_ms, event_id, campaign, interaction].
    channel, touch_ts, _, campaign, _ = _columns(touches, 5, (0, 1, 3))
    journeys = pl.DataFrame(
        {
            "customer": pl.Series(customers, dtype=pl.String),
            "ts_ms": np.array(ts_ms, dtype=np.int64),
            "event_id": pl.Series(event_ids, dtype=pl.String),
        }
    )
    # Stable, by (customer id, time, event id): UTF-8 byte order is Python's code point order.
    order = (
        journeys.select(pl.arg_sort_by(["customer", "ts_ms", "event_id"], maintain_order=True))
        .to_series()
        .to_numpy()
    )
    starts = np.cumsum(counts) - counts
    touch_order = ranges(starts[order], counts[order])
    return converted_from_arrays(
        journeys["customer"].gather(order),
        journeys["event_id"].gather(order),
        journeys["ts_ms"].to_numpy()[order],
        np.array(values, dtype=np.float64)[order],
        counts[order],
        pl.Series(channel, dtype=pl.String).gather(touch_order),
        pl.Series(campaign, dtype=pl.String).gather(touch_order),
        np.array(touch_ts, dtype=np.int64)[touch_order],
    )


def _columns(rows: list[Any], width: int, kept: tuple[int, ...]) -> list[list[Any]]:
    """Columns ``kept`` of rows of ``width`` values (the others empty), a pass per column:
    ``zip(*rows)`` makes an iterator per row, several times slower at 150,000 rows."""
    if rows and set(map(len, rows)) != {width}:
        raise ValueError(f"P|conv rows of other than {width} values")
    return [list(map(itemgetter(i), rows)) if i in kept else [] for i in range(width)]


@dataclass
class Merged:
    """Aggregates of all partitions summed."""

    totals: dict[str, float] = field(default_factory=dict)
    invalid: int = 0
    credits: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    daily: dict[str, dict[str, Any]] = field(default_factory=dict)
    markov: dict[str, dict[str, Any]] = field(default_factory=dict)
    watermark: int = 0
    tick: int = 0

    def credits_between(
        self, start: str | None, end: str | None, models: Iterable[str]
    ) -> dict[str, dict[str, list[float]]]:
        """Model -> channel -> [conversions, value] summed over purchase days in [start, end]."""
        summed: dict[str, dict[str, list[float]]] = {}
        for day, bucket in self.daily.items():
            if (start and day < start) or (end and day > end):
                continue
            for model in models:
                sum_credits(summed.setdefault(model, {}), bucket.get(model, {}))
        return summed


def sum_credits(target: dict[str, list[float]], source: Mapping[str, list[float]]) -> None:
    """Add channel -> [conversions, value] credits into ``target``."""
    for channel, (conv, value) in source.items():
        slot = target.setdefault(channel, [0.0, 0.0])
        slot[0] += conv
        slot[1] += value


def merge_partitions(partitions: Mapping[str, Mapping[str, Any]]) -> Merged:
    """Sum the items of every partition (in partition order, for reproducibility).

    ``partitions``: partition -> its items, keyed without their ``P|`` prefix (a worker's share).
    """
    merged = Merged()
    for partition in sorted(partitions, key=int):
        for rest, value in sorted(partitions[partition].items()):
            kind, _, tail = rest.partition("|")
            if kind == keys.TOTALS:
                for name, amount in value.items():
                    if name == "wm":
                        merged.watermark = max(merged.watermark, int(amount))
                    elif name == "invalid":
                        merged.invalid += int(amount)
                    elif name == "invalid_offsets":
                        continue
                    else:
                        merged.totals[name] = merged.totals.get(name, 0.0) + amount
            elif kind == keys.CREDITS:
                for model, credits in value.items():
                    sum_credits(merged.credits.setdefault(model, {}), credits)
            elif kind == keys.DAILY:
                bucket = merged.daily.setdefault(tail, {})
                for model, content in value.items():
                    if model == "totals":
                        totals = bucket.setdefault("totals", {})
                        for name, amount in content.items():
                            totals[name] = totals.get(name, 0.0) + amount
                    else:
                        sum_credits(bucket.setdefault(model, {}), content)
            elif kind == keys.MARKOV:
                node = merged.markov.setdefault(tail, _new_state())
                for dst, weight in value["to"].items():
                    node["to"][dst] = node["to"].get(dst, 0.0) + weight
                node["cv"] += value["cv"]
                node["cc"] += value["cc"]
            elif kind == keys.TICK:
                merged.tick = int(value) if not merged.tick else min(merged.tick, int(value))
    return merged
