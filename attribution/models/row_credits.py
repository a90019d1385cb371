"""Each row's own credit under an additive model: what it adds to the model's channel totals.

The stream credits journeys one by one (per-order records, retractions) but many at a time: a
batch of journeys is one table here, and every rule is the batch model's own (the touch
positions and weights of ``heuristics``, the closed-form split of ``shapley``), so the sum of the
rows' credits is the model's result on the same table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from attribution.models.heuristics import (
    POSITION_RULES,
    WEIGHT_RULES,
    check_time_decay,
    credited_mask,
    select_rows,
)
from attribution.models.options import ModelOptions
from attribution.models.shapley import distinct_channel_weights
from attribution.paths import PathTable

RowCredit = dict[str, tuple[float, float]]  # channel -> (conversions, value)

_WEIGHTS: dict[str, Callable[[PathTable, ModelOptions], NDArray[np.float64]]] = {
    **WEIGHT_RULES,
    "shapley": distinct_channel_weights,
}
ADDITIVE_MODELS = frozenset(POSITION_RULES) | frozenset(_WEIGHTS)


def row_credits(name: str, table: PathTable, options: ModelOptions) -> list[RowCredit]:
    """Per row of ``table``, its channels' (conversions, value) under model ``name``."""
    if name not in ADDITIVE_MODELS:
        raise ValueError(f"{name} is not additive over journeys: no per-row credit")
    if name == "time_decay":
        check_time_decay(table, options)
    out: list[RowCredit] = [{} for _ in range(table.n_paths)]
    keep = credited_mask(table)
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        return out
    t = table if kept.size == table.n_paths else select_rows(table, keep)
    rows = np.repeat(np.arange(t.n_paths, dtype=np.int64), t.lengths)
    if name in POSITION_RULES:
        positions = POSITION_RULES[name](t, options)
        touch_rows, codes = np.arange(t.n_paths, dtype=np.int64), t.codes[positions]
        conv, value = t.conversions, t.value
    else:
        weights = _WEIGHTS[name](t, options)
        touch_rows, codes = rows, t.codes
        conv = t.conversions[rows] * weights
        value = t.value[rows] * weights
    n = len(t.channels)
    keys, slot = np.unique(touch_rows * n + codes, return_inverse=True)
    conv_sum = np.bincount(slot, weights=conv, minlength=keys.size)
    value_sum = np.bincount(slot, weights=value, minlength=keys.size)
    for key, c, v in zip(keys.tolist(), conv_sum.tolist(), value_sum.tolist(), strict=True):
        if c != 0 or v != 0:
            row, code = divmod(key, n)
            out[int(kept[row])][t.channels[code]] = (c, v)
    return out
