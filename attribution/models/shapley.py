"""Exact Shapley attribution over channel sets.

The worth of a coalition S of channels is what the journeys whose channel set lies inside S
achieved. With ``worth="conversions"`` (the default) that is their conversions (and, separately,
their value): a sum of unanimity games, so the Shapley value has the closed form
``phi_i = sum over sets T containing i of w(T) / |T|`` (w(T): conversions of the journeys whose
channel set is exactly T), computed for any number of channels. ``worth="conversion_rate"`` is
not additive and needs the enumeration of all 2^n coalitions. See docs/models.md.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from attribution.models.options import ModelOptions
from attribution.paths import PathTable
from attribution.results import ChannelCredit, ModelResult

# 2^20 coalitions are a few megabytes per array and well under a second; 2^30 would not be.
MAX_ENUMERATION_CHANNELS = 20

Worth = Literal["conversions", "conversion_rate"]


class TooManyChannels(ValueError):
    """The coalition enumeration was asked for more channels than it handles."""


def _touched(table: PathTable) -> tuple[NDArray[np.int64], NDArray[np.int64], list[str]]:
    """Row of every touch, its channel as a compact code, and the channels that occur."""
    rows = np.repeat(np.arange(table.n_paths, dtype=np.int64), table.lengths)
    present = np.flatnonzero(np.bincount(table.codes, minlength=len(table.channels)))
    compact = np.zeros(len(table.channels), dtype=np.int64)
    compact[present] = np.arange(len(present), dtype=np.int64)
    names = [table.channels[c] for c in present.tolist()]
    return rows, compact[table.codes], names


# Channel sets of up to this many channels fit in one int64 bit mask per journey.
_MASK_BITS = 62


def closed_form(
    table: PathTable,
) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    """Shapley conversions and value per channel: each journey split over its distinct channels."""
    rows, codes, names = _touched(table)
    n = len(names)
    if n <= _MASK_BITS:
        return names, *_closed_form_masks(table, codes, n)
    # Distinct (row, channel) pairs; a plain sort is much faster than np.unique's hashing here.
    pairs = np.sort(rows * n + codes)
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    pair_rows, pair_codes = pairs // n, pairs % n
    set_size = np.bincount(pair_rows, minlength=table.n_paths)[pair_rows]
    conv = np.bincount(pair_codes, weights=table.conversions[pair_rows] / set_size, minlength=n)
    value = np.bincount(pair_codes, weights=table.value[pair_rows] / set_size, minlength=n)
    return names, conv.astype(np.float64), value.astype(np.float64)


def distinct_channel_weights(table: PathTable, options: ModelOptions) -> NDArray[np.float64]:
    """Per touch, the closed form's split of its row: 1/k on the first touch of each of the
    row's k distinct channels, 0 on repeated ones (the stream credits journey by journey)."""
    rows = np.repeat(np.arange(table.n_paths, dtype=np.int64), table.lengths)
    key = rows * len(table.channels) + table.codes
    _, first = np.unique(key, return_index=True)
    distinct = np.bincount(rows[first], minlength=table.n_paths)
    weights = np.zeros(len(table.codes), dtype=np.float64)
    weights[first] = 1.0 / distinct[rows[first]]
    return weights


def _closed_form_masks(
    table: PathTable, codes: NDArray[np.int64], n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The closed form with one bit mask per journey: n passes over the rows, no sort."""
    has = np.flatnonzero(table.lengths > 0)
    conv, value = np.zeros(n), np.zeros(n)
    if len(has) == 0:
        return conv, value
    masks = np.bitwise_or.reduceat(np.left_shift(np.int64(1), codes), table.offsets[:-1][has])
    members = [(masks >> bit) & 1 for bit in range(n)]
    set_size = np.sum(members, axis=0)
    conv_share = table.conversions[has] / set_size
    value_share = table.value[has] / set_size
    for bit, member in enumerate(members):
        inside = member.astype(np.bool_)
        conv[bit] = conv_share[inside].sum()
        value[bit] = value_share[inside].sum()
    return conv, value


def channel_set_masks(table: PathTable) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64]]:
    """Rows with touches and the bit mask of each one's channel set (enumeration sizes only)."""
    rows, codes, names = _touched(table)
    if len(names) > MAX_ENUMERATION_CHANNELS:
        raise TooManyChannels(
            f"exact Shapley enumeration over coalitions handles at most "
            f"{MAX_ENUMERATION_CHANNELS} channels (2^{MAX_ENUMERATION_CHANNELS} coalitions); "
            f"the journeys have {len(names)} channels. Use worth='conversions' (closed form, "
            "any number of channels) or merge channels."
        )
    has = np.flatnonzero(table.lengths > 0)
    if len(has) == 0:
        return names, has, np.zeros(0, dtype=np.int64)
    bits = np.left_shift(np.int64(1), codes)
    masks = np.bitwise_or.reduceat(bits, table.offsets[:-1][has])
    del rows
    return names, has, masks.astype(np.int64)


def subset_sums(
    masks: NDArray[np.int64], weights: NDArray[np.float64], n: int
) -> NDArray[np.float64]:
    """v(S) = sum of ``weights`` of the rows whose mask is a subset of S, for all 2^n sets S."""
    v = np.bincount(masks, weights=weights, minlength=1 << n).astype(np.float64)
    for bit in range(n):
        # Viewed as (high bits, this bit, low bits): sets with the bit add their sets without it.
        view = v.reshape(-1, 2, 1 << bit)
        view[:, 1, :] += view[:, 0, :]
    return v


def shapley_from_worth(v: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Shapley values of the game with worth ``v`` (indexed by bit mask), by definition."""
    sizes = np.zeros(1 << n, dtype=np.int64)
    for bit in range(n):
        sizes.reshape(-1, 2, 1 << bit)[:, 1, :] += 1
    # |S|! (n-|S|-1)! / n! for a coalition S without the player, by size.
    coefficient = np.array([1.0 / (n * math.comb(n - 1, s)) for s in range(n)] + [0.0])
    phi = np.zeros(n)
    for bit in range(n):
        view = v.reshape(-1, 2, 1 << bit)
        without = sizes.reshape(-1, 2, 1 << bit)[:, 0, :]
        phi[bit] = float(np.sum(coefficient[without] * (view[:, 1, :] - view[:, 0, :])))
    return phi


def _rate_shapley(table: PathTable) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    """Credits for the conversion-rate worth, scaled by the journeys so they conserve totals."""
    names, rows, masks = channel_set_masks(table)
    n = len(names)
    conv = subset_sums(masks, table.conversions[rows], n)
    value = subset_sums(masks, table.value[rows], n)
    journeys = subset_sums(masks, table.conversions[rows] + table.nulls[rows], n)
    rate = np.divide(conv, journeys, out=np.zeros_like(conv), where=journeys > 0)
    value_rate = np.divide(value, journeys, out=np.zeros_like(value), where=journeys > 0)
    # Shapley values of a rate sum to the overall rate; times the journeys they sum to totals.
    scale = float(journeys[-1]) if n else 0.0
    return names, shapley_from_worth(rate, n) * scale, shapley_from_worth(value_rate, n) * scale


def shapley(table: PathTable, options: ModelOptions, worth: Worth = "conversions") -> ModelResult:
    """Exact Shapley attribution of the journeys with touches (see module doc for ``worth``)."""
    del options  # no knob applies; the signature is the registry's
    if worth == "conversions":
        names, conv, value = closed_form(table)
        keep = [i for i in range(len(names)) if conv[i] != 0 or value[i] != 0]
    elif worth == "conversion_rate":
        names, conv, value = _rate_shapley(table)
        keep = list(range(len(names)))
    else:
        raise ValueError(f"unknown Shapley worth {worth!r}; use 'conversions' or 'conversion_rate'")
    channels = {names[i]: ChannelCredit(float(conv[i]), float(value[i])) for i in keep}
    return ModelResult("shapley", channels, extras={"worth": worth})
