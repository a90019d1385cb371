"""Confidence intervals on every model's channel credit: a bootstrap over customers.

A resample draws as many customers as the log has, with replacement (seeded, so the same seed
gives the same intervals), and keeps all the journeys of each customer drawn, as many times as
it was drawn: a customer's journeys are not independent of each other, the customers are.
Each model is run again on every resample and the interval of a channel's conversions (and,
apart, its value) is the percentile interval of its credit over the resamples (Efron and
Tibshirani 1993, ch. 13).

Nothing loops over resamples in Python but the Markov solve (each resample is its own chain):

* a resample is a vector of customer multiplicities; ``block`` resamples at a time are one
  matrix ``W`` (resamples x customers), drawn by one ``bincount``;
* the rule-based models and Shapley are linear in their rows: each customer's credit to each
  channel is computed once, and every resample's credits are ``W @ credits`` (one product);
* the Markov chain's transition counts are linear in the rows too
  (:class:`~attribution.models.markov_counts.TransitionOccurrences`): each customer's count of
  each transition is computed once, a resample's counts are ``W @ counts`` (sparse), and only
  its solve (:func:`~attribution.models.markov.markov_from_counts`) is per resample.

With every multiplicity 1 each model gives its point estimate again (a test holds it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from attribution.paths import PathTable

if TYPE_CHECKING:
    from scipy import sparse

    from attribution.journey_table import JourneyTable
    from attribution.journeys import Journey

DEFAULT_RESAMPLES = 200
DEFAULT_LEVEL = 0.95
# Resamples drawn and multiplied together: W is block x customers float64 (25 MB for 100,000
# customers). Fixed, so that a seed gives the same draws whatever the machine.
BLOCK = 32
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class CreditInterval:
    """The interval of one channel's credit under one model."""

    conversions: tuple[float, float]
    value: tuple[float, float]

    def to_json(self) -> dict[str, list[float]]:
        """``{"conversions": [low, high], "value": [low, high]}``."""
        return {"conversions": list(self.conversions), "value": list(self.value)}


@dataclass
class BootstrapCredits:
    """Every resample's credit per model and channel, and the intervals they give."""

    level: float
    resamples: int
    seed: int
    customers: int
    # model -> channel -> (conversions, value), one entry per resample.
    samples: dict[str, dict[str, tuple[Floats, Floats]]] = field(default_factory=dict)

    def intervals(self) -> dict[str, dict[str, CreditInterval]]:
        """model -> channel -> percentile interval at :attr:`level`."""
        tail = (1.0 - self.level) / 2.0
        out: dict[str, dict[str, CreditInterval]] = {}
        for model, channels in self.samples.items():
            out[model] = {}
            for channel, (conv, value) in channels.items():
                lo_c, hi_c = np.quantile(conv, [tail, 1.0 - tail])
                lo_v, hi_v = np.quantile(value, [tail, 1.0 - tail])
                out[model][channel] = CreditInterval(
                    (float(lo_c), float(hi_c)), (float(lo_v), float(hi_v))
                )
        return out

    def settings_json(self) -> dict[str, Any]:
        """What the intervals are: level, resamples, seed, method."""
        return {
            "level": self.level,
            "resamples": self.resamples,
            "seed": self.seed,
            "customers": self.customers,
            "method": "percentile bootstrap over customers (a customer's journeys together)",
        }


def resample_weights(
    customers: int, resamples: int, seed: int, block: int = BLOCK
) -> Iterator[Floats]:
    """Blocks of customer multiplicities (``block`` x ``customers``), ``resamples`` rows in all.

    Each row is one resample: ``customers`` draws with replacement, counted per customer.
    """
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        draws = rng.integers(0, customers, size=(b, customers), dtype=np.int64)
        draws += (np.arange(b, dtype=np.int64) * customers)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * customers).reshape(b, customers)
        yield counts.astype(np.float64)
        done += b


def _sparse(rows: Ints, cols: Ints, weights: Floats, shape: tuple[int, int]) -> sparse.csr_matrix:
    from scipy import sparse

    return sparse.coo_matrix((weights, (rows, cols)), shape=shape).tocsr()


class _LinearModel:
    """A model whose channel credit is a sum over rows: per customer and channel, once."""

    def __init__(self, channels: Sequence[str], conv: sparse.csr_matrix, value: sparse.csr_matrix):
        self.channels = list(channels)
        self.conv = conv  # customers x channels
        self.value = value

    def credits(self, weights: Floats) -> tuple[Floats, Floats]:
        """(conversions, value) per resample (rows) and channel (columns)."""
        return (
            np.asarray((self.conv.T @ weights.T).T, dtype=np.float64),
            np.asarray((self.value.T @ weights.T).T, dtype=np.float64),
        )


def _per_customer(
    table: PathTable,
    customer: Ints,
    n_customers: int,
    rows_of_touch: Ints,
    codes: Ints,
    conv: Floats,
    value: Floats,
) -> _LinearModel:
    shape = (n_customers, len(table.channels))
    who = customer[rows_of_touch]
    return _LinearModel(
        table.channels, _sparse(who, codes, conv, shape), _sparse(who, codes, value, shape)
    )


def _rule_model(
    name: str, table: PathTable, customer: Ints, n_customers: int, options: ModelOptions
) -> _LinearModel:
    """First/last/last non-direct/linear/position-based/time-decay: per-touch weights."""
    if name == "time_decay":
        check_time_decay(table, options)
    keep = credited_mask(table)
    credited = select_rows(table, keep)
    rows = np.flatnonzero(keep)
    touch_row = rows[np.repeat(np.arange(credited.n_paths, dtype=np.int64), credited.lengths)]
    if name in POSITION_RULES:
        weights = np.zeros(len(credited.codes))
        if credited.n_paths:
            weights[POSITION_RULES[name](credited, options)] = 1.0
    else:
        weights = np.asarray(WEIGHT_RULES[name](credited, options), dtype=np.float64)
    return _per_customer(
        table, customer, n_customers, touch_row, credited.codes,
        weights * table.conversions[touch_row], weights * table.value[touch_row],
    )  # fmt: skip


def _shapley_model(table: PathTable, customer: Ints, n_customers: int) -> _LinearModel:
    """Shapley's closed form: each journey split equally over its distinct channels."""
    rows = np.repeat(np.arange(table.n_paths, dtype=np.int64), table.lengths)
    n = max(len(table.channels), 1)
    pairs = np.unique(rows * n + table.codes)
    pair_rows, pair_codes = pairs // n, pairs % n
    set_size = np.bincount(pair_rows, minlength=table.n_paths)[pair_rows]
    return _per_customer(
        table, customer, n_customers, pair_rows, pair_codes,
        table.conversions[pair_rows] / set_size, table.value[pair_rows] / set_size,
    )  # fmt: skip


class _MarkovModel:
    """The Markov chain's transition counts per customer, solved once per resample."""

    def __init__(
        self, table: PathTable, customer: Ints, n_customers: int, options: ModelOptions
    ) -> None:
        from attribution.models.markov_counts import transition_occurrences

        occurrences = transition_occurrences(table, options.order, options.markov_states)
        self.options = options
        self.keys = occurrences.keys
        n_states = len(self.keys)
        pair = occurrences.src * n_states + occurrences.dst
        self.pairs, inverse = np.unique(pair, return_inverse=True)
        traversal = (table.conversions + table.nulls)[occurrences.row]
        self.traversals = _sparse(
            customer[occurrences.row], inverse.reshape(-1), traversal,
            (n_customers, len(self.pairs)),
        )  # fmt: skip
        last_of = customer[occurrences.rows]
        shape = (n_customers, n_states)
        last = occurrences.last
        self.conv = _sparse(last_of, last, table.conversions[occurrences.rows], shape)
        self.nulls = _sparse(last_of, last, table.nulls[occurrences.rows], shape)
        self.value = _sparse(last_of, last, table.value[occurrences.rows], shape)

    def credits(self, weights: Floats) -> list[dict[str, tuple[float, float]]]:
        """Per resample: channel -> (conversions, value)."""
        from attribution.models.markov import markov_from_counts
        from attribution.models.markov_counts import CONVERSION, NULL, TransitionCounts

        n_states = len(self.keys)
        traversals = np.asarray(self.traversals.T @ weights.T)
        conv = np.asarray(self.conv.T @ weights.T)
        nulls = np.asarray(self.nulls.T @ weights.T)
        value = np.asarray(self.value.T @ weights.T)
        src = [self.keys[p // n_states] for p in self.pairs.tolist()]
        dst = [self.keys[p % n_states] for p in self.pairs.tolist()]
        out = []
        for j in range(weights.shape[0]):
            edges: dict[tuple[str, str], float] = {}
            for a, b, w in zip(src, dst, traversals[:, j].tolist(), strict=True):
                if w:
                    edges[(a, b)] = w
            for s, (c, n) in enumerate(zip(conv[:, j].tolist(), nulls[:, j].tolist(),
                                           strict=True)):  # fmt: skip
                if c:
                    edges[(self.keys[s], CONVERSION)] = c
                if n:
                    edges[(self.keys[s], NULL)] = n
            counts = TransitionCounts.from_parts(
                edges,
                {self.keys[s]: v for s, v in enumerate(value[:, j].tolist()) if v},
                {self.keys[s]: c for s, c in enumerate(conv[:, j].tolist()) if c},
            )
            result = markov_from_counts(counts, self.options)
            out.append({ch: (c.conversions, c.value) for ch, c in result.channels.items()})
        return out


def bootstrap_credits(
    table: PathTable,
    customer: Sequence[int] | Ints,
    models: Sequence[str],
    options: ModelOptions,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    multiplicities: Iterable[Floats] | None = None,
) -> BootstrapCredits:
    """Resample the customers of a path table (``customer``: any id code per row) and run the
    models on every resample (see the module doc).

    ``multiplicities``: blocks of customer weights to use instead of drawing them (each row a
    resample, customers in the order of their sorted codes): with all ones, every model gives
    its point estimate.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level {level} must be between 0 and 1 (e.g. 0.95)")
    if resamples < 2:
        raise ValueError(f"the bootstrap needs at least 2 resamples, got {resamples}")
    codes = np.asarray(customer, dtype=np.int64)
    if len(codes) != table.n_paths:
        raise ValueError(f"{len(codes)} customer codes for {table.n_paths} path rows")
    touched = table.lengths > 0
    if not touched.all():
        table = select_rows(table, touched)
        codes = codes[touched]
    ids, dense = np.unique(codes, return_inverse=True)
    dense = dense.reshape(-1).astype(np.int64)
    n_customers = len(ids)
    out = BootstrapCredits(level, resamples, seed, n_customers)
    linear: dict[str, _LinearModel] = {}
    markov: _MarkovModel | None = None
    for name in models:
        if name in POSITION_RULES or name in WEIGHT_RULES:
            linear[name] = _rule_model(name, table, dense, n_customers, options)
        elif name == "shapley":
            linear[name] = _shapley_model(table, dense, n_customers)
        elif name == "markov":
            markov = _MarkovModel(table, dense, n_customers, options)
        else:
            raise ValueError(f"no bootstrap for model {name!r}")
    conv_parts: dict[str, list[Floats]] = {name: [] for name in linear}
    value_parts: dict[str, list[Floats]] = {name: [] for name in linear}
    markov_rows: list[dict[str, tuple[float, float]]] = []
    if multiplicities is None and n_customers:
        multiplicities = resample_weights(n_customers, resamples, seed)
    if n_customers:
        for weights in multiplicities or ():
            for name, model in linear.items():
                conv, value = model.credits(weights)
                conv_parts[name].append(conv)
                value_parts[name].append(value)
            if markov is not None:
                markov_rows.extend(markov.credits(weights))
    for name in models:
        if name in linear:
            model = linear[name]
            conv = np.vstack(conv_parts[name]) if conv_parts[name] else np.zeros((0, 0))
            value = np.vstack(value_parts[name]) if value_parts[name] else np.zeros((0, 0))
            out.samples[name] = {
                ch: (conv[:, k], value[:, k])
                for k, ch in enumerate(model.channels)
                if conv.size and (conv[:, k].any() or value[:, k].any())
            }
        elif name == "markov":
            channels = sorted({ch for row in markov_rows for ch in row})
            out.samples[name] = {
                ch: (
                    np.array([row.get(ch, (0.0, 0.0))[0] for row in markov_rows]),
                    np.array([row.get(ch, (0.0, 0.0))[1] for row in markov_rows]),
                )
                for ch in channels
            }
    return out


def path_customers(journeys: JourneyTable) -> Ints:
    """The customer (code) of each row of ``journeys.path_table()``, in the same order."""
    from attribution.journey_kernel import CONVERTED, NULL

    arrays = journeys.arrays
    keep = (arrays.kind == CONVERTED) | (arrays.kind == NULL)
    return np.asarray(journeys.events.customer[arrays.first[keep]], dtype=np.int64)


def journey_credit_intervals(
    journeys: JourneyTable,
    models: Sequence[str],
    options: ModelOptions,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> BootstrapCredits:
    """:func:`bootstrap_credits` of the journeys of an event log."""
    return bootstrap_credits(
        journeys.path_table(), path_customers(journeys), models, options, resamples, level, seed
    )


def credit_intervals_of_journeys(
    journeys: Sequence[Journey],
    models: Sequence[str],
    options: ModelOptions,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> BootstrapCredits:
    """:func:`bootstrap_credits` of journey objects (what a stream's merged journeys are).

    The rows and customers are those of :func:`attribution.journeys.journeys_to_table`, so
    the same journeys give the intervals the batch engine gives.
    """
    from attribution.journeys import ConvertedJourney, journeys_to_table

    kept = [j for j in journeys if not (isinstance(j, ConvertedJourney) and j.unattributed)]
    ids = sorted({j.customer_id for j in kept})
    code = {customer: i for i, customer in enumerate(ids)}
    customers = np.array([code[j.customer_id] for j in kept], dtype=np.int64)
    return bootstrap_credits(
        journeys_to_table(kept), customers, models, options, resamples, level, seed
    )
