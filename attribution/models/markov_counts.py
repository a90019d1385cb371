"""Additive transition counts of the Markov model: one journey at a time or a whole table.

The counting step is additive so that the stream can sum (and subtract, on retraction) the
counts of single journeys across partitions and workers and then solve exactly what the batch
engine solves. See docs/models.md for the rules.

State keys are strings: ``(start)``, ``(conversion)``, ``(null)``, and for a channel state the
JSON array of its channels, e.g. ``["email","ads"]``. A JSON array always starts with ``[`` and
escapes its contents, so no channel name (whatever separators it contains) can make two states
collide or be mistaken for a special state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from attribution.paths import PathTable

MarkovStates = Literal["merged", "raw"]
MARKOV_STATES: tuple[MarkovStates, ...] = ("merged", "raw")
"""How a journey's channels become order-k states (docs/models.md):

* ``merged`` (the default): consecutive repeats are merged first (``a>a>b`` is ``a>b``); a
  state is the last k merged channels, shorter at the start of a path;
* ``raw``: ChannelAttribution's states: every window of k consecutive channels as they came,
  repeats kept (``a>a>b`` at order 2 visits ``(a,a)``, ``(a,b)``); a path shorter than k is
  one state of all its channels. A window equal to the previous one adds no transition (a
  self-loop changes no absorption probability, and ChannelAttribution lists none).

For order 1 both give the same states.
"""

START = "(start)"
CONVERSION = "(conversion)"
NULL = "(null)"
SPECIAL_STATES = (START, CONVERSION, NULL)

# Dense lookup tables (instead of sorting) are used below this many possible ids.
_DENSE_LIMIT = 1 << 24
# Transition pairs are summed straight into a (from, to) table below this many cells.
_PAIR_TABLE_LIMIT = 1 << 22
# Below this many (from, to) cells of raw mixed-radix state ids (order 1 up to 2,894
# channels, order 2 up to 52, order 3 up to 13), a table is counted block by block. The
# cells are one zeroed float64 array of up to 64 MB (only the pages written take memory),
# instead of a dozen whole-table arrays.
_RAW_TABLE_LIMIT = 1 << 23
# Touches per block: a block's arrays stay in the CPU caches and are allocated again and again
# from the same memory, where whole-table arrays (tens of MB each) are fresh pages every time.
_BLOCK_TOUCHES = 1 << 16


def state_key(channels: Sequence[str]) -> str:
    """Key of the channel state made of ``channels`` (oldest first)."""
    return _state_key(tuple(channels))


@lru_cache(maxsize=1 << 16)
def _state_key(channels: tuple[str, ...]) -> str:
    # The stream keys every journey's states one by one; the same few recur.
    return json.dumps(list(channels), ensure_ascii=False, separators=(",", ":"))


def state_channels(key: str) -> tuple[str, ...]:
    """Channels of a state key; empty for the special states."""
    if key in SPECIAL_STATES:
        return ()
    return tuple(json.loads(key))


def _add_into(target: dict[Any, float], source: Mapping[Any, float], sign: float) -> None:
    # Exact zeros are dropped so that counts added and then retracted leave no trace.
    for key, amount in source.items():
        new = target.get(key, 0.0) + sign * amount
        if new:
            target[key] = new
        else:
            target.pop(key, None)


@dataclass
class TransitionCounts:
    """Weighted transition counts and conversion totals per final state; see module doc."""

    edges: dict[tuple[str, str], float] = field(default_factory=dict)
    conversion_value: dict[str, float] = field(default_factory=dict)
    conversion_count: dict[str, float] = field(default_factory=dict)

    @property
    def total_conversions(self) -> float:
        """Conversions of all counted journeys (exactly rounded, independent of order)."""
        return math.fsum(self.conversion_count.values())

    @property
    def total_value(self) -> float:
        """Value of all counted conversions (exactly rounded, independent of order)."""
        return math.fsum(self.conversion_value.values())

    def add(self, other: TransitionCounts, sign: int = 1) -> None:
        """Add ``other`` in place (``sign=-1`` subtracts it: a retraction)."""
        _add_into(self.edges, other.edges, sign)
        _add_into(self.conversion_value, other.conversion_value, sign)
        _add_into(self.conversion_count, other.conversion_count, sign)

    def merge(self, other: TransitionCounts) -> TransitionCounts:
        """A new counts object holding ``self + other``."""
        out = TransitionCounts(
            dict(self.edges), dict(self.conversion_value), dict(self.conversion_count)
        )
        out.add(other)
        return out

    @classmethod
    def sum(cls, parts: Iterable[TransitionCounts]) -> TransitionCounts:
        """The sum of many counts."""
        out = cls()
        for part in parts:
            out.add(part)
        return out

    @classmethod
    def from_parts(
        cls,
        edges: Mapping[tuple[str, str], float],
        conversion_value: Mapping[str, float],
        conversion_count: Mapping[str, float],
    ) -> TransitionCounts:
        """Counts from plain mappings (zeros dropped)."""
        out = cls()
        _add_into(out.edges, edges, 1)
        _add_into(out.conversion_value, conversion_value, 1)
        _add_into(out.conversion_count, conversion_count, 1)
        return out

    def states(self) -> set[str]:
        """Every state that appears in the counts."""
        found = {s for pair in self.edges for s in pair}
        found.update(self.conversion_value, self.conversion_count)
        return found

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, sorted so equal counts serialise identically."""
        return {
            "edges": [[src, dst, w] for (src, dst), w in sorted(self.edges.items())],
            "conversion_value": dict(sorted(self.conversion_value.items())),
            "conversion_count": dict(sorted(self.conversion_count.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TransitionCounts:
        """Inverse of :meth:`to_json`."""
        try:
            edges = {(str(src), str(dst)): float(w) for src, dst, w in data["edges"]}
            return cls.from_parts(
                edges,
                {str(k): float(v) for k, v in data["conversion_value"].items()},
                {str(k): float(v) for k, v in data["conversion_count"].items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                "transition counts JSON needs 'edges' as [from, to, weight] triples and "
                f"'conversion_value'/'conversion_count' objects: {exc}"
            ) from exc


def collapse_repeats(channels: Sequence[str]) -> list[str]:
    """Channels with consecutive repeats collapsed (``a>a>b>a`` -> ``a>b>a``)."""
    out: list[str] = []
    for ch in channels:
        if not out or out[-1] != ch:
            out.append(ch)
    return out


def path_states(
    channels: Sequence[str], order: int, states: MarkovStates = "merged"
) -> list[tuple[str, ...]]:
    """The channel states one journey visits, in order (see :data:`MARKOV_STATES`)."""
    _check_order(order)
    _check_states(states)
    if states == "merged":
        seq = collapse_repeats(channels)
        return [tuple(seq[max(0, j - order + 1) : j + 1]) for j in range(len(seq))]
    raw = list(channels)
    if len(raw) < order:
        return [tuple(raw)] if raw else []
    windows = [tuple(raw[j - order + 1 : j + 1]) for j in range(order - 1, len(raw))]
    return [w for i, w in enumerate(windows) if i == 0 or w != windows[i - 1]]


def path_transitions(
    channels: Sequence[str],
    conversions: float,
    value: float,
    nulls: float,
    order: int,
    states: MarkovStates = "merged",
) -> TransitionCounts:
    """Transition counts of one journey (the stream calls this per journey)."""
    visited = path_states(channels, order, states)
    counts = TransitionCounts()
    if not visited:
        return counts
    weight = conversions + nulls
    keys = [state_key(s) for s in visited]
    edges: dict[tuple[str, str], float] = {}
    for src, dst in zip([START, *keys[:-1]], keys, strict=True):
        edges[(src, dst)] = edges.get((src, dst), 0.0) + weight
    last = keys[-1]
    edges[(last, CONVERSION)] = conversions
    edges[(last, NULL)] = nulls
    _add_into(counts.edges, edges, 1)
    _add_into(counts.conversion_value, {last: value}, 1)
    _add_into(counts.conversion_count, {last: conversions}, 1)
    return counts


def _check_order(order: int) -> None:
    if order < 1:
        raise ValueError(f"Markov order must be at least 1, got {order}")


def _check_states(states: str) -> None:
    if states not in MARKOV_STATES:
        raise ValueError(f"Markov states must be one of {', '.join(MARKOV_STATES)}, got {states!r}")


def _dense(ids: NDArray[np.int64], upper: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Sorted distinct ids and each id's index among them (ids in ``[0, upper)``)."""
    if upper <= _DENSE_LIMIT:
        # A presence table beats sorting millions of ids when the id space is small.
        present = np.zeros(upper, dtype=np.bool_)
        present[ids] = True
        uniques = np.flatnonzero(present)
        rank: NDArray[np.int64] = np.cumsum(present, dtype=np.int64) - 1
        return uniques.astype(np.int64), rank[ids]
    uniques, inverse = np.unique(ids, return_inverse=True)
    return uniques.astype(np.int64), inverse.astype(np.int64).reshape(-1)


def _state_ids(
    codes: NDArray[np.int64], first: NDArray[np.bool_], base: int, order: int
) -> tuple[NDArray[np.int64], int]:
    """Mixed-radix id of every touch's order-k state; digit 0 pads short (early) states.

    ``first`` marks the first touch of each path: a state never reaches back across it.
    """
    ids = codes + 1
    reaches = ~first  # touches with at least ``back`` earlier touches in their path
    if base**order >= np.iinfo(np.int64).max:
        # Too many channels for one int64: compress the id after each digit instead.
        upper = base
        for back in range(1, order):
            if back > 1:
                reaches[back - 1 :] &= ~first[: len(first) - back + 1]
            prev = np.zeros_like(codes)
            at = np.flatnonzero(reaches)
            prev[at] = codes[at - back] + 1
            _, ids = _dense(ids * base + prev, upper * base)
            upper = int(ids.max()) + 1 if len(ids) else 1
        return ids, upper
    scale = 1
    for back in range(1, order):
        if back > 1:
            reaches[back - 1 :] &= ~first[: len(first) - back + 1]
        scale *= base
        at = np.flatnonzero(reaches)
        ids[at] += (codes[at - back] + 1) * scale
    return ids, base**order


def _sum_pairs(
    parts: list[tuple[NDArray[np.int64], NDArray[np.float64]]], cells: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Distinct pair ids (sorted) and their summed weights, over several (ids, weights) parts."""
    if cells <= _PAIR_TABLE_LIMIT:
        total = np.zeros(cells)
        for ids, weights in parts:
            total += np.bincount(ids, weights=weights, minlength=cells)
        pairs = np.flatnonzero(total)
        return pairs.astype(np.int64), total[pairs]
    pairs, index = _dense(np.concatenate([p[0] for p in parts]), cells)
    summed = np.bincount(index, weights=np.concatenate([p[1] for p in parts]), minlength=len(pairs))
    return pairs, summed.astype(np.float64)


def count_transitions(
    table: PathTable, order: int, states: MarkovStates = "merged"
) -> TransitionCounts:
    """Transition counts of every row of ``table``, vectorised (equal to summing per journey)."""
    _check_order(order)
    _check_states(states)
    if states == "raw" and order > 1:
        return _count_raw(table, order)
    upper = (len(table.channels) + 1) ** order
    if upper * (upper + 2) <= _RAW_TABLE_LIMIT:
        return _count_blocks(table, order)
    return _count_whole(table, order)


def _count_blocks(table: PathTable, order: int) -> TransitionCounts:
    """:func:`count_transitions` a block of paths at a time, into a table of raw state ids.

    A raw id is the mixed-radix id of :func:`_state_ids`, 0 being (start); the table has a
    column for (conversion) and one for (null) after them. Every cell is summed in touch order
    (``np.add.at``), as one ``np.bincount`` over the whole table would, so the counts are the
    same to the last bit as :func:`_count_whole`'s, fractional weights included.
    """
    base = len(table.channels) + 1
    upper = base**order
    width = upper + 2
    # One more cell at the end takes the repeated touches of order 1 (see _order1_pairs).
    pair_total = np.zeros(upper * width + 1)
    state_value = np.zeros(upper)
    state_conv = np.zeros(upper)
    codes = np.asarray(table.codes, dtype=np.int64)
    offsets = table.offsets
    lengths = table.lengths
    n = table.n_paths
    step = max(1, _BLOCK_TOUCHES * n // max(1, len(codes)))  # paths per block
    for p0 in range(0, n, step):
        p1 = min(n, p0 + step)
        t0 = int(offsets[p0])
        touched = np.flatnonzero(lengths[p0:p1] > 0)
        if not len(touched):
            continue
        block = codes[t0 : int(offsets[p1])]
        path_starts = offsets[p0:p1][touched] - t0
        path_ends = offsets[p0 + 1 : p1 + 1][touched] - t0
        rows = touched + p0
        conv = table.conversions[rows]
        nulls = table.nulls[rows]
        if order == 1:
            pairs, per_path, last = _order1_pairs(block, path_starts, path_ends, width)
        else:
            pairs, per_path, last = _collapsed_pairs(block, path_starts, base, order, width)
        np.add.at(pair_total, pairs, np.repeat(conv + nulls, per_path))
        np.add.at(pair_total, last * width + upper, conv)
        np.add.at(pair_total, last * width + (upper + 1), nulls)
        np.add.at(state_value, last, table.value[rows])
        np.add.at(state_conv, last, conv)
    pair_total = pair_total[:-1]

    names = table.channels
    keys: dict[int, str] = {0: START, upper: CONVERSION, upper + 1: NULL}

    def key(raw: int) -> str:
        if raw not in keys:
            digits: list[int] = []  # the newest channel first
            while raw_left := raw // base ** len(digits):
                digits.append(raw_left % base)
            keys[raw] = state_key([names[d - 1] for d in reversed(digits)])
        return keys[raw]

    pairs = np.flatnonzero(pair_total)
    edges = {
        (key(p // width), key(p % width)): float(w)
        for p, w in zip(pairs.tolist(), pair_total[pairs].tolist(), strict=True)
    }
    value = {key(int(i)): float(state_value[i]) for i in np.flatnonzero(state_value)}
    count = {key(int(i)): float(state_conv[i]) for i in np.flatnonzero(state_conv)}
    return TransitionCounts.from_parts(edges, value, count)


def _collapsed_pairs(
    block: NDArray[np.int64], path_starts: NDArray[np.int64], base: int, order: int, width: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(from, to) cell of every transition of a block's paths once repeats are collapsed,
    the number of transitions of each path, and the raw id of each path's last state."""
    first = np.zeros(len(block), dtype=np.bool_)
    first[path_starts] = True
    keep = first.copy()
    keep[1:] |= block[1:] != block[:-1]
    block, first = block[keep], first[keep]
    starts = np.flatnonzero(first)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = len(block)
    ids, _ = _state_ids(block, first, base, order)
    src = np.empty_like(ids)
    src[1:] = ids[:-1]
    src[starts] = 0
    return src * width + ids, ends - starts, ids[ends - 1]


def _order1_pairs(
    block: NDArray[np.int64],
    path_starts: NDArray[np.int64],
    path_ends: NDArray[np.int64],
    width: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Like :func:`_collapsed_pairs` for order 1, without collapsing the block first.

    A state is a channel, so collapsing repeats only drops the transitions from a channel to
    itself: they are sent to the spare cell after the table instead (the other cells receive
    the same additions in the same order, hence the same sums).
    """
    ids = block + 1
    pairs = np.empty_like(ids)
    np.multiply(ids[:-1], width, out=pairs[1:])
    pairs[1:] += ids[1:]
    pairs[1:][ids[1:] == ids[:-1]] = (width - 2) * width  # the spare cell
    pairs[path_starts] = ids[path_starts]  # from (start), whatever the previous path ended with
    return pairs, path_ends - path_starts, ids[path_ends - 1]


def _count_whole(table: PathTable, order: int) -> TransitionCounts:
    """:func:`count_transitions` over the whole table at once, with dense state ids."""
    codes = np.asarray(table.codes, dtype=np.int64)
    touched = np.flatnonzero(table.lengths > 0)
    path_starts = table.offsets[:-1][touched]
    first = np.zeros(len(codes), dtype=np.bool_)
    first[path_starts] = True
    keep = first.copy()
    keep[1:] |= codes[1:] != codes[:-1]
    codes, first = codes[keep], first[keep]
    new_len = np.add.reduceat(keep, path_starts, dtype=np.int64) if len(touched) else touched
    del keep

    base = len(table.channels) + 1
    ids, upper = _state_ids(codes, first, base, order)
    # Dense state indexes 1..S; 0 is (start). The absorbing states come after them.
    _, dense = _dense(ids, upper)
    dense += 1
    n_states = int(dense.max()) + 1 if len(dense) else 1
    conv_idx, null_idx = n_states, n_states + 1
    width = n_states + 2

    src = np.empty_like(dense)
    src[1:] = dense[:-1]
    src[first] = 0
    last = dense[np.cumsum(new_len) - 1]
    conv = table.conversions[touched]
    nulls = table.nulls[touched]
    weight = np.repeat(conv + nulls, new_len)
    pairs, pair_w = _sum_pairs(
        [
            (src * width + dense, weight),
            (last * width + conv_idx, conv),
            (last * width + null_idx, nulls),
        ],
        n_states * width,
    )
    state_value = np.bincount(last, weights=table.value[touched], minlength=n_states)
    state_conv = np.bincount(last, weights=conv, minlength=n_states)

    keys = _state_keys(table.channels, codes, first, dense, n_states, order)
    keys += [CONVERSION, NULL]
    edges = {
        (keys[p // width], keys[p % width]): float(w)
        for p, w in zip(pairs.tolist(), pair_w.tolist(), strict=True)
    }
    value = {keys[i]: float(state_value[i]) for i in np.flatnonzero(state_value)}
    count = {keys[i]: float(state_conv[i]) for i in np.flatnonzero(state_conv)}
    return TransitionCounts.from_parts(edges, value, count)


def _state_keys(
    names: Sequence[str],
    codes: NDArray[np.int64],
    first: NDArray[np.bool_],
    dense: NDArray[np.int64],
    n_states: int,
    order: int,
) -> list[str]:
    """Key of every dense state index, read off one touch that is in that state."""
    example = np.zeros(n_states, dtype=np.int64)
    example[dense] = np.arange(len(dense), dtype=np.int64)
    keys = [START]
    for touch in example[1:].tolist():
        channels = [names[int(codes[touch])]]
        # Walk back within the path: stop at its first touch or at ``order`` channels.
        j = touch
        while len(channels) < order and not first[j]:
            j -= 1
            channels.insert(0, names[int(codes[j])])
        keys.append(state_key(channels))
    return keys


@dataclass(frozen=True)
class TransitionOccurrences:
    """Every transition of every path row, before any weight is applied.

    States are dense indexes into ``keys`` (0 is ``(start)``). Per traversal (a step from one
    state to the next, ``(start)`` included): ``src``, ``dst`` and the path ``row``. Per row
    with touches (``rows``, increasing): ``last``, the state its walk ends in, which then goes
    to ``(conversion)`` and ``(null)``. A row with ``c`` conversions, ``n`` nulls and value
    ``v`` adds ``c + n`` to each of its traversals, ``c`` and ``n`` to its last state's exits
    and ``v`` to its conversion value: counts are linear in the rows' weights, which is what
    the bootstrap (attribution/bootstrap.py) reweights.
    """

    keys: list[str]
    src: NDArray[np.int64]
    dst: NDArray[np.int64]
    row: NDArray[np.int64]
    rows: NDArray[np.int64]
    last: NDArray[np.int64]

    def counts(
        self,
        conversions: NDArray[np.float64],
        value: NDArray[np.float64],
        nulls: NDArray[np.float64],
    ) -> TransitionCounts:
        """The counts of the rows with these (per row of the table) weights."""
        n_states = len(self.keys)
        width = n_states + 2
        conv, null = conversions[self.rows], nulls[self.rows]
        pairs, pair_w = _sum_pairs(
            [
                (self.src * width + self.dst, (conversions + nulls)[self.row]),
                (self.last * width + n_states, conv),
                (self.last * width + n_states + 1, null),
            ],
            n_states * width,
        )
        keys = [*self.keys, CONVERSION, NULL]
        edges = {
            (keys[p // width], keys[p % width]): float(w)
            for p, w in zip(pairs.tolist(), pair_w.tolist(), strict=True)
        }
        state_value = np.bincount(self.last, weights=value[self.rows], minlength=n_states)
        state_conv = np.bincount(self.last, weights=conv, minlength=n_states)
        return TransitionCounts.from_parts(
            edges,
            {keys[i]: float(state_value[i]) for i in np.flatnonzero(state_value)},
            {keys[i]: float(state_conv[i]) for i in np.flatnonzero(state_conv)},
        )


def transition_occurrences(
    table: PathTable, order: int, states: MarkovStates = "merged"
) -> TransitionOccurrences:
    """The transitions of every row of ``table`` (see :class:`TransitionOccurrences`)."""
    _check_order(order)
    _check_states(states)
    codes = np.asarray(table.codes, dtype=np.int64)
    lengths = table.lengths
    touched = np.flatnonzero(lengths > 0)
    path_starts = table.offsets[:-1][touched]
    first = np.zeros(len(codes), dtype=np.bool_)
    first[path_starts] = True
    path_of = np.repeat(np.arange(len(touched), dtype=np.int64), lengths[touched])
    position = np.arange(len(codes), dtype=np.int64) - np.repeat(path_starts, lengths[touched])
    base = len(table.channels) + 1
    if states == "raw" and order > 1:
        ids, upper = _state_ids(codes, first, base, order)
        length = lengths[touched][path_of]
        last = position == length - 1
        keep = (position >= order - 1) | (last & (length < order))
        kept = np.flatnonzero(keep)
        # The channels of a raw state: up to k touches as they came, ending at the kept one.
        begin = np.maximum(kept - position[kept], kept - order + 1)
        reach = kept - begin + 1
    else:
        # Merged states: consecutive repeats dropped first, then the last k of what is left.
        merged = first.copy()
        merged[1:] |= codes[1:] != codes[:-1]
        kept = np.flatnonzero(merged)
        merged_first = first[kept]
        ids, upper = _state_ids(codes[kept], merged_first, base, order)
        keep_ids = ids
        ids = np.zeros(len(codes), dtype=np.int64)
        ids[kept] = keep_ids
        # How many merged channels a state holds: up to k, not reaching before its path.
        merged_position = np.arange(len(kept)) - np.repeat(
            np.flatnonzero(merged_first), np.diff(np.r_[np.flatnonzero(merged_first), len(kept)])
        )
        reach = np.minimum(merged_position + 1, order)
        begin = np.zeros(0, dtype=np.int64)  # read from the merged touches below
    kept_ids, kept_path = ids[kept], path_of[kept]
    repeat = np.zeros(len(kept), dtype=np.bool_)
    repeat[1:] = (kept_ids[1:] == kept_ids[:-1]) & (kept_path[1:] == kept_path[:-1])
    new = ~repeat
    kept, kept_ids, kept_path, reach = kept[new], kept_ids[new], kept_path[new], reach[new]
    if states == "raw" and order > 1:
        begin = begin[new]
    new_len = np.bincount(kept_path, minlength=len(touched)).astype(np.int64)
    kept_first = np.zeros(len(kept), dtype=np.bool_)
    kept_first[np.cumsum(new_len) - new_len] = True
    _, dense = _dense(kept_ids, upper)
    dense += 1
    n_states = int(dense.max()) + 1 if len(dense) else 1
    src = np.empty_like(dense)
    src[1:] = dense[:-1]
    src[kept_first] = 0
    last = dense[np.cumsum(new_len) - 1] if len(dense) else dense
    # A state's key, read off one kept touch in it.
    example = np.zeros(n_states, dtype=np.int64)
    example[dense] = np.arange(len(dense), dtype=np.int64)
    keys = [START]
    names = table.channels
    for k in example[1:].tolist():
        touch = int(kept[k])
        if states == "raw" and order > 1:
            channels = codes[int(begin[k]) : touch + 1]
        else:
            # The last ``reach`` merged channels up to this touch: walk back over repeats.
            channels_rev = [int(codes[touch])]
            j = touch
            while len(channels_rev) < int(reach[k]):
                j -= 1
                if codes[j] != channels_rev[-1]:
                    channels_rev.append(int(codes[j]))
            channels = np.array(channels_rev[::-1], dtype=np.int64)
        keys.append(state_key([names[int(c)] for c in channels]))
    return TransitionOccurrences(keys, src, dense, touched[kept_path], touched, last)


def _count_raw(table: PathTable, order: int) -> TransitionCounts:
    """:func:`count_transitions` with ``raw`` states (order >= 2), over the whole table.

    Every touch's order-k state is computed on the channels as they came (no merging); a path
    keeps the states of its touches from the k-th on (its last touch's alone when it is
    shorter than k), less any state equal to the one before it.
    """
    occurrences = transition_occurrences(table, order, "raw")
    return occurrences.counts(table.conversions, table.value, table.nulls)
