"""Converted journeys as columns, and every model's credit spread over their touches.

A :class:`ConvertedTable` holds the converted journeys of a log (unattributed ones too: no
touches) and their touches as flat arrays. :func:`touch_weights` gives each touch its share of
its journey under a model, for conversions and for value (the same except Markov):

* the rule-based models use the engine's own vectorised rules
  (:mod:`attribution.models.heuristics`), so a touch gets exactly the weight the model gives it;
* ``shapley``: the journey split equally over its distinct channels (the closed form of the
  engine's default additive worth), then equally over each channel's touches;
* ``markov``: the journey split over its distinct channels in proportion to the model's
  channel credits (conversions and value apart; all equal when they are all zero), then
  equally over each channel's touches.

The credit a touch carries goes to its channel and to its campaign (a touch without a campaign
credits none), by period of the journey's purchase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from numpy.typing import NDArray

from attribution.analytics._common import ALL_TIME, Granularity, distinct
from attribution.analytics.touch_credit import CreditLike, credit_conversions, credit_value
from attribution.events import MS_PER_DAY
from attribution.models.heuristics import POSITION_RULES, WEIGHT_RULES
from attribution.models.options import ModelOptions
from attribution.paths import PathTable

if TYPE_CHECKING:
    from attribution.journey_table import JourneyTable
    from attribution.journeys import ConvertedJourney

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class ConvertedTable:
    """Converted journeys and their touches, text as codes into name lists.

    Per journey: ``customer`` (code into ``customers``), purchase ``event_id``, ``ts_ms``,
    ``value``; journey i's touches are ``offsets[i]:offsets[i + 1]`` (none for an unattributed
    conversion). Per touch: ``channel`` and ``campaign`` (codes into ``channels`` and
    ``campaigns``; -1 for no campaign) and ``touch_ts``.
    """

    customer: NDArray[np.int64]
    customers: list[str]
    event_id: pl.Series
    ts_ms: NDArray[np.int64]
    value: Floats
    offsets: NDArray[np.int64]
    channel: NDArray[np.int64]
    channels: list[str]
    campaign: NDArray[np.int64]
    campaigns: list[str]
    touch_ts: NDArray[np.int64]

    @property
    def count(self) -> int:
        """Number of converted journeys."""
        return len(self.ts_ms)

    @property
    def lengths(self) -> NDArray[np.int64]:
        """Touches per journey."""
        return np.diff(self.offsets)

    def journey_of_touch(self) -> NDArray[np.int64]:
        """Index of the journey of each touch."""
        return np.repeat(np.arange(self.count, dtype=np.int64), self.lengths)

    def path_table(self) -> PathTable:
        """The journeys with touches as a path table (touches aligned with this table's)."""
        lengths = self.lengths
        rows = np.flatnonzero(lengths > 0)
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths[rows], out=offsets[1:])
        ages = (self.ts_ms[self.journey_of_touch()] - self.touch_ts) / MS_PER_DAY
        return PathTable(
            tuple(self.channels),
            offsets,
            self.channel,
            np.ones(len(rows)),
            self.value[rows],
            np.zeros(len(rows)),
            ages.astype(np.float64),
        )


def converted_from_journey_table(journeys: JourneyTable) -> ConvertedTable:
    """The converted journeys of a journey table."""
    from attribution.journey_kernel import CONVERTED, UNATTRIBUTED
    from attribution.journey_table import ranges

    arrays = journeys.arrays
    events = journeys.events
    keep = (arrays.kind == CONVERTED) | (arrays.kind == UNATTRIBUTED)
    purchase = arrays.purchase[keep]
    counts = arrays.touches[keep]
    touch_rows = ranges(arrays.first[keep], counts)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ConvertedTable(
        events.customer[purchase],
        events.customers,
        events.column("event_id", purchase),
        events.ts_ms[purchase],
        events.amount[purchase],
        offsets,
        events.channel[touch_rows],
        events.channels,
        events.campaign[touch_rows],
        events.campaigns,
        events.ts_ms[touch_rows],
    )


def converted_from_journeys(journeys: Sequence[ConvertedJourney]) -> ConvertedTable:
    """Converted journey objects (the stream's) as a table."""
    touches = [t for j in journeys for t in j.touches]
    return converted_from_columns(
        [j.customer_id for j in journeys],
        [j.event_id for j in journeys],
        [j.ts_ms for j in journeys],
        [j.value for j in journeys],
        [len(j.touches) for j in journeys],
        [t.channel for t in touches],
        [t.campaign for t in touches],
        [t.ts_ms for t in touches],
    )


def converted_from_columns(
    customer_ids: Sequence[str],
    event_ids: Sequence[str],
    ts_ms: Sequence[int],
    values: Sequence[float],
    touch_counts: Sequence[int],
    channels: Sequence[str],
    campaigns: Sequence[str | None],
    touch_ts: Sequence[int],
) -> ConvertedTable:
    """Converted journeys given as columns, in table order: per journey its customer, purchase
    event id, time, value and number of touches; per touch (journey after journey) its
    channel, campaign and time."""
    return converted_from_arrays(
        pl.Series(customer_ids, dtype=pl.String),
        pl.Series(event_ids, dtype=pl.String),
        np.array(ts_ms, dtype=np.int64),
        np.array(values, dtype=np.float64),
        np.array(touch_counts, dtype=np.int64),
        pl.Series(channels, dtype=pl.String),
        pl.Series(campaigns, dtype=pl.String),
        np.array(touch_ts, dtype=np.int64),
    )


def converted_from_arrays(
    customer_ids: pl.Series,
    event_ids: pl.Series,
    ts_ms: NDArray[np.int64],
    values: Floats,
    touch_counts: NDArray[np.int64],
    channels: pl.Series,
    campaigns: pl.Series,
    touch_ts: NDArray[np.int64],
) -> ConvertedTable:
    """:func:`converted_from_columns` of columns already made (text as String series)."""
    from attribution.journey_table import text_codes

    offsets = np.zeros(len(touch_counts) + 1, np.int64)
    np.cumsum(touch_counts, out=offsets[1:])
    customer, customer_names = text_codes(customer_ids)
    channel, channel_names = text_codes(channels)
    campaign, campaign_names = text_codes(campaigns)
    return ConvertedTable(
        customer,
        customer_names,
        event_ids.rename("event_id"),
        ts_ms,
        values,
        offsets,
        channel,
        channel_names,
        campaign,
        campaign_names,
        touch_ts,
    )


@dataclass(frozen=True)
class TouchWeights:
    """Per touch of a converted table: its share of its journey for conversions and value."""

    conversions: Floats
    value: Floats


def _rule_weights(name: str, table: PathTable, options: ModelOptions) -> Floats:
    if name in POSITION_RULES:
        weights = np.zeros(len(table.codes))
        if table.n_paths:
            weights[POSITION_RULES[name](table, options)] = 1.0
        return weights
    return np.asarray(WEIGHT_RULES[name](table, options), dtype=np.float64)


def _per_channel_touch(table: PathTable, channel_share: Floats) -> Floats:
    """Each (row, channel) share split equally among that channel's touches in the row.

    ``channel_share`` is aligned with the distinct (row, channel) pairs in order of
    :func:`_pairs`.
    """
    _, pair_of_touch, touches_per_pair = _pairs(table)
    return np.asarray(channel_share[pair_of_touch] / touches_per_pair[pair_of_touch])


def _pairs(table: PathTable) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Distinct (row, channel) pairs in order of first touch: (first touch of each pair, pair
    of each touch, touches of each pair)."""
    rows = np.repeat(np.arange(table.n_paths, dtype=np.int64), table.lengths)
    key = rows * max(len(table.channels), 1) + table.codes
    _, first, inverse, count = np.unique(key, return_index=True, return_inverse=True,
                                         return_counts=True)  # fmt: skip
    # np.unique sorts by key; within a row, order pairs by their first touch instead.
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse], count[order]


def _split_by_channel(table: PathTable, credits: Mapping[str, float] | None) -> Floats:
    """Per touch: the row split over its distinct channels (equally, or in proportion to
    ``credits`` clipped at zero when they are positive), then over each channel's touches."""
    first, _, _ = _pairs(table)
    pair_row = np.repeat(np.arange(table.n_paths), table.lengths)[first]
    distinct = np.bincount(pair_row, minlength=table.n_paths)
    equal = 1.0 / distinct[pair_row]
    if credits is None:
        return _per_channel_touch(table, equal)
    effect_of_code = np.array(
        [max(0.0, credits.get(name, 0.0)) for name in table.channels], dtype=np.float64
    )
    effects = effect_of_code[table.codes[first]]
    total = np.bincount(pair_row, weights=effects, minlength=table.n_paths)[pair_row]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, effects / total, equal)
    return _per_channel_touch(table, share)


def touch_weights(
    model: str,
    converted: ConvertedTable,
    options: ModelOptions,
    channel_credits: Mapping[str, CreditLike] | None = None,
) -> TouchWeights | None:
    """Shares of every touch under ``model`` (None for a model without per-touch credit)."""
    table = converted.path_table()
    if model in POSITION_RULES or model in WEIGHT_RULES:
        weights = _rule_weights(model, table, options)
        return TouchWeights(weights, weights)
    if model == "shapley":
        weights = _split_by_channel(table, None)
        return TouchWeights(weights, weights)
    if model == "markov":
        credits = channel_credits or {}
        conv = {ch: credit_conversions(c) for ch, c in credits.items()}
        value = {ch: credit_value(c) for ch, c in credits.items()}
        return TouchWeights(_split_by_channel(table, conv), _split_by_channel(table, value))
    return None


def period_of_journeys(
    converted: ConvertedTable, granularity: Granularity, time_zone: str = "UTC"
) -> tuple[NDArray[np.int64], list[str]]:
    """Period of each journey's purchase (in ``time_zone``): codes into labels (sorted)."""
    from attribution.analytics.inputs import period_labels

    if granularity == "all":
        return np.zeros(converted.count, np.int64), [ALL_TIME]
    if time_zone != "UTC":
        # Local days do not start at multiples of a UTC day: label every distinct time.
        times = np.unique(converted.ts_ms, return_inverse=True)
        named = (
            pl.DataFrame({"ts": times[0]})
            .select(period_labels(pl.col("ts"), granularity, time_zone))
            .to_series()
        )
        names, of_time = np.unique(np.array(named.to_list(), dtype=object), return_inverse=True)
        return of_time[times[1]].astype(np.int64), [str(n) for n in names]
    days = np.unique(converted.ts_ms // MS_PER_DAY, return_inverse=True)
    labels = (
        pl.DataFrame({"ts": days[0] * MS_PER_DAY})
        .select(period_labels(pl.col("ts"), granularity))
        .to_series()
    )
    names, of_day = np.unique(np.array(labels.to_list(), dtype=object), return_inverse=True)
    return of_day[days[1]].astype(np.int64), [str(n) for n in names]


def allocate(
    converted: ConvertedTable,
    weights: Floats,
    key: str = "channel",
    granularity: Granularity = "all",
    time_zone: str = "UTC",
) -> dict[str, dict[str, tuple[float, float]]]:
    """period (``all`` included) -> key -> (conversions, value) over touches with a share.

    A key gets credit only from touches whose share is not zero, as per-journey allocation
    does (so its presence in the result means exactly that).
    """
    journey = converted.journey_of_touch()
    codes = converted.channel if key == "channel" else converted.campaign
    names = converted.channels if key == "channel" else converted.campaigns
    counted = (weights != 0) & (codes >= 0)
    code = codes[counted]
    share = weights[counted]
    value = share * converted.value[journey[counted]]
    out: dict[str, dict[str, tuple[float, float]]] = {}
    groups = [(ALL_TIME, np.zeros(len(code), np.int64), [ALL_TIME])]
    if granularity != "all":
        period, labels = period_of_journeys(converted, granularity, time_zone)
        groups.append(("", period[journey[counted]], labels))
    for _, period_code, labels in groups:
        slot = period_code * max(len(names), 1) + code
        size = len(labels) * max(len(names), 1)
        present = np.bincount(slot, minlength=size) > 0
        conv = np.bincount(slot, weights=share, minlength=size)
        val = np.bincount(slot, weights=value, minlength=size)
        for index in np.flatnonzero(present).tolist():
            p, k = divmod(index, max(len(names), 1))
            out.setdefault(labels[p], {})[names[k]] = (float(conv[index]), float(val[index]))
    return {period: dict(sorted(keys.items())) for period, keys in sorted(out.items())}


def first_purchase_credit(converted: ConvertedTable, weights: Floats) -> dict[str, float]:
    """New customers per campaign: each customer's first purchase, spread by the weights."""
    order = pl.DataFrame(
        {
            "customer": converted.customer,
            "ts": converted.ts_ms,
            "event_id": converted.event_id,
            "journey": np.arange(converted.count),
        }  # fmt: skip
    ).sort("customer", "ts", "event_id")
    firsts = order.unique("customer", keep="first", maintain_order=True)["journey"].to_numpy()
    chosen = np.zeros(converted.count, np.bool_)
    chosen[firsts] = True
    journey = converted.journey_of_touch()
    counted = chosen[journey] & (weights != 0) & (converted.campaign >= 0)
    sums = np.bincount(converted.campaign[counted], weights=weights[counted],
                       minlength=len(converted.campaigns))  # fmt: skip
    present = np.bincount(converted.campaign[counted], minlength=len(converted.campaigns)) > 0
    return {
        converted.campaigns[k]: float(sums[k])
        for k in sorted(np.flatnonzero(present).tolist(), key=lambda k: converted.campaigns[k])
    }


def assists(converted: ConvertedTable) -> dict[str, tuple[int, int]]:
    """channel -> (journeys it assisted, journeys it closed as last touch)."""
    journey = converted.journey_of_touch()
    n = max(len(converted.channels), 1)
    is_last = np.arange(len(journey)) == (converted.offsets[1:] - 1)[journey]
    pairs = distinct(journey[~is_last] * n + converted.channel[~is_last])
    assisted = np.bincount(pairs % n, minlength=n)
    last = np.bincount(converted.channel[is_last], minlength=n)
    return {
        converted.channels[k]: (int(assisted[k]), int(last[k]))
        for k in sorted(
            np.flatnonzero((assisted > 0) | (last > 0)).tolist(),
            key=lambda k: converted.channels[k],
        )  # fmt: skip
    }
