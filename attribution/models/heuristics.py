"""Rule-based attribution models, vectorised over a :class:`PathTable`.

Each model gives every touch of a credited row a weight (the weights of a row sum to 1); a
row with ``c`` conversions and value ``v`` gives its channels ``c * w`` and ``v * w``. Rows
with neither conversions nor value, and rows without touches, credit nothing. No model loops
over paths in Python: the benchmark has a million of them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from attribution.models.options import ModelOptions
from attribution.paths import PathTable
from attribution.results import ChannelCredit, ModelResult

# Position-based (U-shaped) split: first and last touch, the rest shared by the middle.
FIRST_SHARE = 0.4
LAST_SHARE = 0.4
MIDDLE_SHARE = 0.2


def select_rows(table: PathTable, keep: NDArray[np.bool_]) -> PathTable:
    """The rows of ``table`` where ``keep`` is true, channels unchanged."""
    lengths = table.lengths
    touch_keep = np.repeat(keep, lengths)
    offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=offsets[1:])
    ages = None if table.ages_days is None else table.ages_days[touch_keep]
    return PathTable(
        table.channels,
        offsets,
        table.codes[touch_keep],
        table.conversions[keep],
        table.value[keep],
        table.nulls[keep],
        ages,
    )


def credited_mask(table: PathTable) -> NDArray[np.bool_]:
    """Which rows carry credit: at least one touch, and conversions or value."""
    return (table.lengths > 0) & ((table.conversions > 0) | (table.value > 0))


def credited_rows(table: PathTable) -> PathTable:
    """Rows that carry credit (see :func:`credited_mask`)."""
    keep = credited_mask(table)
    if keep.all():
        return table
    return select_rows(table, keep)


def _result(
    name: str,
    table: PathTable,
    touch_codes: NDArray[np.int64],
    touch_conv: NDArray[np.float64],
    touch_value: NDArray[np.float64],
) -> ModelResult:
    n = len(table.channels)
    conv = np.bincount(touch_codes, weights=touch_conv, minlength=n)
    value = np.bincount(touch_codes, weights=touch_value, minlength=n)
    channels = {
        table.channels[code]: ChannelCredit(float(conv[code]), float(value[code]))
        for code in np.flatnonzero((conv != 0) | (value != 0))
    }
    return ModelResult(name, channels)


def _single_touch(name: str, table: PathTable, positions: NDArray[np.int64]) -> ModelResult:
    """Whole credit of each row to the touch at ``positions`` (one index per row)."""
    return _result(name, table, table.codes[positions], table.conversions, table.value)


def _weighted(name: str, table: PathTable, weights: NDArray[np.float64]) -> ModelResult:
    """Credit split by per-touch ``weights`` (aligned with ``table.codes``)."""
    lengths = table.lengths
    conv = np.repeat(table.conversions, lengths) * weights
    value = np.repeat(table.value, lengths) * weights
    return _result(name, table, table.codes, conv, value)


# Each rule gives, for a table of credited rows, either one touch index per row that takes the
# row's whole credit ("positions"), or a weight per touch, summing to 1 over each row
# ("weights"). The models below and the per-row credits of the stream (row_credits.py) both
# apply these functions, so each rule has one implementation.


def first_touch_positions(t: PathTable, options: ModelOptions) -> NDArray[np.int64]:
    """The first touch of each row."""
    return t.offsets[:-1]


def last_touch_positions(t: PathTable, options: ModelOptions) -> NDArray[np.int64]:
    """The last touch of each row."""
    return t.offsets[1:] - 1


def last_non_direct_positions(t: PathTable, options: ModelOptions) -> NDArray[np.int64]:
    """The last touch that is not the direct channel (the last one if all are)."""
    last = t.offsets[1:] - 1
    if options.direct_channel not in t.channels or t.n_paths == 0:
        return last
    direct = t.channels.index(options.direct_channel)
    index = np.arange(len(t.codes), dtype=np.int64)
    candidate = np.where(t.codes != direct, index, -1)
    # Every credited row has a touch, so the row starts strictly increase: reduceat is safe.
    best = np.maximum.reduceat(candidate, t.offsets[:-1])
    return np.where(best >= 0, best, last)


def linear_weights(t: PathTable, options: ModelOptions) -> NDArray[np.float64]:
    """Equal weight to every touch; a channel touched twice gets two shares."""
    lengths = t.lengths
    return np.repeat(1.0 / np.maximum(lengths, 1), lengths)


def position_based_weights(t: PathTable, options: ModelOptions) -> NDArray[np.float64]:
    """40% first touch, 40% last, 20% shared by the middle; 100% alone, 50/50 for two."""
    lengths = t.lengths
    middle = np.where(lengths > 2, MIDDLE_SHARE / np.maximum(lengths - 2, 1), 0.0)
    weights = np.repeat(middle, lengths)
    # First and last share 40/40 from three touches on; a lone touch takes it all, two split.
    edge = np.where(lengths == 1, 1.0, np.where(lengths == 2, 0.5, FIRST_SHARE))
    weights[t.offsets[:-1]] = edge
    last_edge = np.where(lengths == 1, 1.0, np.where(lengths == 2, 0.5, LAST_SHARE))
    weights[t.offsets[1:] - 1] = last_edge
    return weights


def check_time_decay(table: PathTable, options: ModelOptions) -> None:
    """Refuse a table without touch ages, or a half-life that is not positive."""
    if table.ages_days is None:
        raise ValueError(
            "time_decay needs the age of every touch, known only from raw events: "
            "run the attribute command with --events on an event log"
        )
    if options.half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {options.half_life_days}")


def time_decay_weights(t: PathTable, options: ModelOptions) -> NDArray[np.float64]:
    """Weight ``2^(-age/half_life)`` per touch, normalised over the row."""
    check_time_decay(t, options)
    assert t.ages_days is not None
    if t.n_paths == 0:
        return np.zeros(0)
    lengths = t.lengths
    starts = t.offsets[:-1]
    # Measure ages from the row's youngest touch: the normalised weights are the same, and the
    # youngest weight is exactly 1, so long lookbacks with short half-lives cannot underflow to 0/0.
    youngest = np.repeat(np.minimum.reduceat(t.ages_days, starts), lengths)
    raw = np.exp2(-(t.ages_days - youngest) / options.half_life_days)
    return np.asarray(raw / np.repeat(np.add.reduceat(raw, starts), lengths), dtype=np.float64)


def first_touch(table: PathTable, options: ModelOptions) -> ModelResult:
    """All credit to the first touch of each path."""
    t = credited_rows(table)
    return _single_touch("first_touch", t, first_touch_positions(t, options))


def last_touch(table: PathTable, options: ModelOptions) -> ModelResult:
    """All credit to the last touch of each path."""
    t = credited_rows(table)
    return _single_touch("last_touch", t, last_touch_positions(t, options))


def last_non_direct(table: PathTable, options: ModelOptions) -> ModelResult:
    """All credit to the last touch that is not the direct channel (the last one if all are)."""
    t = credited_rows(table)
    return _single_touch("last_non_direct", t, last_non_direct_positions(t, options))


def linear(table: PathTable, options: ModelOptions) -> ModelResult:
    """Equal credit to every touch; a channel touched twice gets two shares."""
    t = credited_rows(table)
    return _weighted("linear", t, linear_weights(t, options))


def position_based(table: PathTable, options: ModelOptions) -> ModelResult:
    """40% first touch, 40% last, 20% shared by the middle; 100% alone, 50/50 for two."""
    t = credited_rows(table)
    return _weighted("position_based", t, position_based_weights(t, options))


def time_decay(table: PathTable, options: ModelOptions) -> ModelResult:
    """Weight ``2^(-age/half_life)`` per touch, normalised over the path."""
    check_time_decay(table, options)
    t = credited_rows(table)
    if t.n_paths == 0:
        return ModelResult("time_decay", {})
    return _weighted("time_decay", t, time_decay_weights(t, options))


POSITION_RULES = {
    "first_touch": first_touch_positions,
    "last_touch": last_touch_positions,
    "last_non_direct": last_non_direct_positions,
}
WEIGHT_RULES = {
    "linear": linear_weights,
    "position_based": position_based_weights,
    "time_decay": time_decay_weights,
}
