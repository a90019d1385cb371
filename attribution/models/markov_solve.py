"""Exact solution of the Markov model from transition counts: removal effects, probabilities.

One LU factorisation of ``I - Q`` gives the fundamental matrix ``N``; the removal effect of a
channel, whose states form the set ``A``, is ``N[s,A] N_AA^-1 h_A / h[s]`` (docs/models.md
derives it). With ``max_steps`` the walks are cut off by an exact dynamic programme instead.
States are sorted canonically, so equal counts give bit-identical results whatever the order in
which they were accumulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from attribution.models.markov_counts import (
    CONVERSION,
    NULL,
    START,
    TransitionCounts,
    state_channels,
)

# Dense fundamental matrix above this many transient states would need gigabytes.
MAX_DENSE_STATES = 12_000


@dataclass
class MarkovSolution:
    """Everything the Markov model derives from one set of transition counts."""

    states: list[str]
    channels: list[str]
    conversion_probability: float
    removal_effects: dict[str, float]
    removal_effects_value: dict[str, float]
    # (from, to, probability, count) of every counted transition, in canonical order.
    transitions: list[tuple[str, str, float, float]] = field(default_factory=list)
    total_conversions: float = 0.0
    total_value: float = 0.0


@dataclass
class _Chain:
    states: list[str]
    channels: list[str]
    # Transitions among transient states as coordinates: dense for the exact solve, sparse
    # (scipy, imported only then) for the step-limited one.
    q_rows: NDArray[np.int64]
    q_cols: NDArray[np.int64]
    q_probs: NDArray[np.float64]
    r: NDArray[np.float64]
    r_value: NDArray[np.float64]
    members: list[NDArray[np.int64]]
    transitions: list[tuple[str, str, float, float]]


def _canonical_states(counts: TransitionCounts) -> list[str]:
    channel_states = counts.states().difference((START, CONVERSION, NULL))
    return [START, *sorted(channel_states, key=state_channels)]


def _chain(counts: TransitionCounts) -> _Chain:
    """Transition probabilities among transient states and into (conversion), canonically."""
    states = _canonical_states(counts)
    n = len(states)
    index = {s: i for i, s in enumerate(states)}
    index[CONVERSION], index[NULL] = n, n + 1
    for a, b in counts.edges:
        if a in (CONVERSION, NULL) or b == START:
            raise ValueError(f"transition {a} -> {b} is impossible in a Markov journey chain")
    triples = sorted((index[s], index[d], w) for (s, d), w in counts.edges.items())
    src = np.array([t[0] for t in triples], dtype=np.int64)
    dst = np.array([t[1] for t in triples], dtype=np.int64)
    weight = np.array([t[2] for t in triples], dtype=np.float64)
    out = np.bincount(src, weights=weight, minlength=n)
    # A state without outgoing weight ends its walks: they neither convert nor continue.
    prob = np.divide(weight, out[src], out=np.zeros_like(weight), where=out[src] > 0)
    inner = dst < n
    r = np.zeros(n)
    into_conv = dst == n
    r[src[into_conv]] = prob[into_conv]
    value = np.zeros(n)
    for state, amount in counts.conversion_value.items():
        value[index[state]] = amount
    # P(state -> conversion) * mean value of the conversions ending there == value / out weight.
    r_value = np.divide(value, out, out=np.zeros(n), where=out > 0)
    channels = sorted({ch for s in states for ch in state_channels(s)})
    where: dict[str, list[int]] = {ch: [] for ch in channels}
    for i, s in enumerate(states):
        for ch in set(state_channels(s)):
            where[ch].append(i)
    members = [np.array(where[ch], dtype=np.int64) for ch in channels]
    names = [*states, CONVERSION, NULL]
    transitions = [
        (names[s], names[d], float(p), float(w))
        for s, d, p, w in zip(
            src.tolist(), dst.tolist(), prob.tolist(), weight.tolist(), strict=True
        )
    ]
    return _Chain(
        states, channels, src[inner], dst[inner], prob[inner], r, r_value, members, transitions
    )


def _dense_q(chain: _Chain) -> NDArray[np.float64]:
    n = len(chain.states)
    q = np.zeros((n, n))
    np.add.at(q, (chain.q_rows, chain.q_cols), chain.q_probs)
    return q


def _exact_losses(chain: _Chain) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(h[s], hv[s]) and, per channel, the conversion (value) probability lost by removal."""
    n = len(chain.states)
    if n > MAX_DENSE_STATES:
        raise ValueError(
            f"the Markov chain has {n} states, more than the {MAX_DENSE_STATES} the exact "
            "solver handles densely; lower the order (attribution.markov_order / --order)"
        )
    # One factorisation: N = (I - Q)^-1 (numpy's LU-based inverse; scipy is not needed here and
    # costs a quarter of a second to import), then h = N r.
    fundamental = np.linalg.inv(np.eye(n) - _dense_q(chain))
    h = fundamental @ np.column_stack([chain.r, chain.r_value])
    losses = np.zeros((len(chain.channels), 2))
    for c, members in enumerate(chain.members):
        # First-entry probabilities into A are N[s,A] N_AA^-1; each then converts with h_A.
        block = fundamental[np.ix_(members, members)]
        entry_then_convert = np.linalg.solve(block, h[members])
        losses[c] = fundamental[0, members] @ entry_then_convert
    return h[0], losses


def _truncated_losses(
    chain: _Chain, max_steps: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Like :func:`_exact_losses` for walks that convert within ``max_steps`` transitions."""
    import scipy.sparse

    n, k = len(chain.states), len(chain.channels)
    q = scipy.sparse.csr_matrix((chain.q_probs, (chain.q_rows, chain.q_cols)), shape=(n, n))
    keep = np.ones((n, k + 1))
    for c, members in enumerate(chain.members):
        keep[members, c + 1] = 0.0
    keep = np.hstack([keep, keep])
    reward = np.hstack(
        [np.repeat(chain.r[:, None], k + 1, 1), np.repeat(chain.r_value[:, None], k + 1, 1)]
    )
    reward *= keep
    h = np.zeros_like(reward)
    for _ in range(max_steps):
        nxt = keep * (reward + q @ h)
        if np.array_equal(nxt, h):
            break  # a fixed point: every later step gives the same numbers
        h = nxt
    start = h[0]
    full = np.array([start[0], start[k + 1]])
    losses = np.column_stack([full[0] - start[1 : k + 1], full[1] - start[k + 2 :]])
    return full, losses


def solve_markov(counts: TransitionCounts, max_steps: int | None = None) -> MarkovSolution:
    """Removal effects (conversions and value) and conversion probability of the counts."""
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1 (or unset), got {max_steps}")
    chain = _chain(counts)
    if max_steps is None:
        full, losses = _exact_losses(chain)
    else:
        full, losses = _truncated_losses(chain, max_steps)
    effects = np.zeros_like(losses)
    for col in range(2):
        if full[col] > 0:
            # Removal can only lose conversions; clip round-off below zero.
            effects[:, col] = np.clip(losses[:, col] / full[col], 0.0, None)
    return MarkovSolution(
        states=chain.states,
        channels=chain.channels,
        conversion_probability=float(full[0]),
        removal_effects={ch: float(e) for ch, e in zip(chain.channels, effects[:, 0], strict=True)},
        removal_effects_value={
            ch: float(e) for ch, e in zip(chain.channels, effects[:, 1], strict=True)
        },
        transitions=chain.transitions,
        total_conversions=counts.total_conversions,
        total_value=counts.total_value,
    )
