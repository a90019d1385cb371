"""Properties of the Markov model against independent brute-force computations."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.models.markov import (
    CONVERSION,
    START,
    TransitionCounts,
    count_transitions,
    markov,
    solve_markov,
    state_channels,
)
from attribution.models.options import ModelOptions
from attribution.paths import PathTable

CHANNELS = ["a", "b", "c", "d"]


@st.composite
def tables(draw: st.DrawFn, min_conversions: int = 1) -> PathTable:
    rows = draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=6),
                st.integers(0, 3),
                st.integers(0, 3),
                st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 2)),
            ),
            min_size=1,
            max_size=25,
        )
    )
    paths = [r[0] for r in rows]
    conv = [float(r[1]) for r in rows]
    value = [r[3] if r[1] else 0.0 for r in rows]
    nulls = [float(r[2]) if r[1] or r[2] else 1.0 for r in rows]
    if sum(conv) < min_conversions:
        conv[0] += min_conversions
    return PathTable.from_paths(paths, conv, value, nulls)


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# --- brute force: the textbook definition, one chain per removed channel --------------------


def chain_arrays(counts: TransitionCounts) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Transient states, Q and r straight from the counts (independent of the solver)."""
    states = [START] + sorted({s for e in counts.edges for s in e} - {START, CONVERSION, "(null)"})
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    q, r, out = np.zeros((n, n)), np.zeros(n), np.zeros(n)
    for (src, _), w in counts.edges.items():
        out[index[src]] += w
    for (src, dst), w in counts.edges.items():
        if dst == CONVERSION:
            r[index[src]] += w / out[index[src]]
        elif dst in index:
            q[index[src], index[dst]] += w / out[index[src]]
    return states, q, r


def removed_probability(
    states: list[str], q: np.ndarray, r: np.ndarray, channel: str | None
) -> float:
    """Conversion probability with the channel's states sending every walk to (null)."""
    keep = np.array([channel not in state_channels(s) for s in states])
    qk, rk = q[np.ix_(keep, keep)], r[keep]
    return float(np.linalg.solve(np.eye(int(keep.sum())) - qk, rk)[0])


def brute_removal_effects(counts: TransitionCounts) -> dict[str, float]:
    states, q, r = chain_arrays(counts)
    full = removed_probability(states, q, r, None)
    channels = sorted({ch for s in states for ch in state_channels(s)})
    return {ch: 1 - removed_probability(states, q, r, ch) / full for ch in channels}


def walk_probability(
    states: list[str], q: np.ndarray, r: np.ndarray, steps: int, channel: str | None
) -> float:
    """Enumerate every walk of at most ``steps`` transitions that converts (tiny chains only)."""
    banned = {i for i, s in enumerate(states) if channel in state_channels(s)}

    def from_state(i: int, left: int) -> float:
        if left == 0 or i in banned:
            return 0.0
        total = r[i]
        for j in np.flatnonzero(q[i]):
            total += q[i, j] * from_state(int(j), left - 1)
        return float(total)

    return from_state(0, steps)


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(tables(), st.integers(1, 3))
def test_credits_sum_to_conversions_and_value(t: PathTable, order: int) -> None:
    result = markov(t, ModelOptions(order=order))
    assert close(result.total_conversions(), float(t.conversions.sum()))
    assert close(result.total_value(), float(t.value.sum()))
    assert all(c.conversions >= 0 and c.value >= 0 for c in result.channels.values())


@settings(max_examples=40, deadline=None)
@given(tables(), st.integers(1, 3), st.permutations(["w", "x", "y", "z"]))
def test_renaming_channels_renames_credits(t: PathTable, order: int, names: list[str]) -> None:
    rename = dict(zip(CHANNELS, names, strict=True))
    renamed = PathTable.from_paths(
        [[rename[ch] for ch in t.path(i)] for i in range(t.n_paths)],
        t.conversions,
        t.value,
        t.nulls,
    )
    a = markov(t, ModelOptions(order=order))
    b = markov(renamed, ModelOptions(order=order))
    assert {rename[ch] for ch in a.channels} == set(b.channels)
    for ch, credit in a.channels.items():
        other = b.channels[rename[ch]]
        assert close(credit.conversions, other.conversions)
        assert close(credit.value, other.value)
        assert credit.removal_effect is not None and other.removal_effect is not None
        assert close(credit.removal_effect, other.removal_effect)


@settings(max_examples=60, deadline=None)
@given(tables(), st.integers(1, 3))
def test_single_factorisation_equals_removal_and_resolve(t: PathTable, order: int) -> None:
    counts = count_transitions(t, order)
    solution = solve_markov(counts)
    brute = brute_removal_effects(counts)
    assert solution.removal_effects.keys() == brute.keys()
    for ch, effect in brute.items():
        assert close(solution.removal_effects[ch], max(0.0, effect)), ch


@settings(max_examples=30, deadline=None)
@given(tables(), st.integers(1, 2))
def test_large_max_steps_equals_exact(t: PathTable, order: int) -> None:
    counts = count_transitions(t, order)
    exact = solve_markov(counts)
    capped = solve_markov(counts, max_steps=10_000)
    assert close(exact.conversion_probability, capped.conversion_probability)
    for ch, effect in exact.removal_effects.items():
        assert close(effect, capped.removal_effects[ch]), ch
        assert close(exact.removal_effects_value[ch], capped.removal_effects_value[ch]), ch


@settings(max_examples=40, deadline=None)
@given(tables(), st.integers(1, 2), st.integers(1, 6))
def test_truncated_max_steps_equals_walk_enumeration(t: PathTable, order: int, steps: int) -> None:
    counts = count_transitions(t, order)
    solution = solve_markov(counts, max_steps=steps)
    states, q, r = chain_arrays(counts)
    full = walk_probability(states, q, r, steps, None)
    assert close(solution.conversion_probability, full)
    for ch, effect in solution.removal_effects.items():
        expected = 1 - walk_probability(states, q, r, steps, ch) / full if full > 0 else 0.0
        assert close(effect, max(0.0, expected)), ch


# --- recovery of a known chain from simulated journeys --------------------------------------

# Rows: start, a, b, c; columns: a, b, c, conversion, null. No self-loops: repeats collapse.
KNOWN = np.array(
    [
        [0.5, 0.3, 0.2, 0.0, 0.0],
        [0.0, 0.3, 0.2, 0.1, 0.4],
        [0.25, 0.0, 0.25, 0.3, 0.2],
        [0.2, 0.3, 0.0, 0.2, 0.3],
    ]
)


def known_removal_effects() -> dict[str, float]:
    q = np.zeros((4, 4))
    q[:, 1:] = KNOWN[:, :3]
    r = KNOWN[:, 3]
    states = [START, '["a"]', '["b"]', '["c"]']
    full = removed_probability(states, q, r, None)
    return {ch: 1 - removed_probability(states, q, r, ch) / full for ch in "abc"}


def simulate(n: int, seed: int) -> PathTable:
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(KNOWN, axis=1)
    state = np.zeros(n, dtype=np.int64)
    paths: list[list[str]] = [[] for _ in range(n)]
    converted = np.zeros(n, dtype=bool)
    alive = np.arange(n)
    while len(alive):
        draws = rng.random(len(alive))
        nxt = (draws[:, None] > cumulative[state[alive]]).sum(axis=1)
        for journey, step in zip(alive.tolist(), nxt.tolist(), strict=True):
            if step < 3:
                paths[journey].append("abc"[step])
        converted[alive[nxt == 3]] = True
        moving = nxt < 3
        state[alive[moving]] = nxt[moving] + 1
        alive = alive[moving]
    conv = converted.astype(float)
    return PathTable.from_paths(paths, conv, conv * 10.0, 1.0 - conv)


def test_simulated_journeys_recover_known_chain() -> None:
    t = simulate(200_000, seed=20240601)
    result = markov(t, ModelOptions(order=1))
    truth = known_removal_effects()
    for ch, effect in truth.items():
        got = result.channels[ch].removal_effect
        assert got is not None and abs(got - effect) < 0.01, (ch, got, effect)
        # Every conversion is worth 10: the value model sees the same chain.
        value_effect = result.channels[ch].removal_effect_value
        assert value_effect is not None and abs(value_effect - got) < 1e-9
