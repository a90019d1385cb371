"""The bootstrap over customers: exact at multiplicity 1, reproducible, customers kept whole,
and a 95% interval that covers the truth of a known chain about 95% of the time."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from attribution.bootstrap import (
    BootstrapCredits,
    bootstrap_credits,
    journey_credit_intervals,
    path_customers,
    resample_weights,
)
from attribution.engine import attribute_journeys
from attribution.io.events_reader import read_event_table
from attribution.journey_table import JourneyTable, build_journey_table
from attribution.journeys import JourneyRules
from attribution.models.markov_counts import CONVERSION, NULL, START, TransitionCounts
from attribution.models.markov_solve import solve_markov
from attribution.models.options import ModelOptions
from attribution.models.registry import MODELS
from attribution.paths import PathTable
from crm_attribution.generator import GeneratorConfig, generate

ALL = list(MODELS)


@cache
def generated_journeys() -> JourneyTable:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "events.jsonl"
        lines = generate(GeneratorConfig(customers=800, days=45, seed=5))
        log.write_text("".join(line + "\n" for line in lines))
        table = read_event_table(log).table
    return build_journey_table(table, JourneyRules.from_days(30, 30, 1))


@pytest.mark.parametrize(
    "options",
    [ModelOptions(), ModelOptions(order=2, markov_states="raw"), ModelOptions(order=2)],
)
def test_every_customer_once_gives_every_models_point_estimate(options: ModelOptions) -> None:
    journeys = generated_journeys()
    report = attribute_journeys(journeys, ALL, options)
    customers = len(np.unique(path_customers(journeys)))
    once = bootstrap_credits(
        journeys.path_table(), path_customers(journeys), ALL, options,
        resamples=2, multiplicities=[np.ones((2, customers))],
    )  # fmt: skip
    for model in ALL:
        point = report.results[model].channels
        assert set(once.samples[model]) == set(point), model
        for channel, credit in point.items():
            conv, value = once.samples[model][channel]
            assert conv == pytest.approx([credit.conversions] * 2, rel=1e-9, abs=1e-9)
            assert value == pytest.approx([credit.value] * 2, rel=1e-9, abs=1e-9)


def test_the_same_seed_gives_the_same_intervals() -> None:
    journeys = generated_journeys()
    models = ["last_touch", "markov", "shapley"]
    first = journey_credit_intervals(journeys, models, ModelOptions(), 40, 0.9, seed=3)
    again = journey_credit_intervals(journeys, models, ModelOptions(), 40, 0.9, seed=3)
    other = journey_credit_intervals(journeys, models, ModelOptions(), 40, 0.9, seed=4)
    assert first.intervals() == again.intervals()
    assert first.intervals() != other.intervals()
    for channels in first.intervals().values():
        for interval in channels.values():
            assert interval.conversions[0] <= interval.conversions[1]
            assert interval.value[0] <= interval.value[1]


def test_resample_weights_draw_as_many_customers_as_there_are() -> None:
    blocks = list(resample_weights(50, 70, seed=1, block=32))
    assert [b.shape for b in blocks] == [(32, 50), (32, 50), (6, 50)]
    assert all((b.sum(axis=1) == 50).all() for b in blocks)
    assert all(np.array_equal(b, c) for b, c in zip(blocks, resample_weights(50, 70, 1),
                                                     strict=True))  # fmt: skip


def test_a_customers_journeys_are_resampled_together() -> None:
    # Customers 0-14 have two journeys ending in a, customers 15-29 two ending in b. Drawn
    # whole, a's last-touch conversions are even in every resample; journeys drawn one by one
    # would make them odd about half the time.
    paths = [["b", "a"], ["a"]] * 15 + [["a", "b"], ["b"]] * 15
    customer = np.repeat(np.arange(30), 2)
    table = PathTable.from_paths(paths, [1] * 60, [10.0] * 60, [0] * 60)
    result = bootstrap_credits(table, customer, ["last_touch"], ModelOptions(), resamples=200)
    a, a_value = result.samples["last_touch"]["a"]
    b, _ = result.samples["last_touch"]["b"]
    assert np.all(a % 2 == 0) and a.std() > 0
    assert np.all(a + b == 60) and np.array_equal(a_value, a * 10)


def test_bad_arguments_are_refused() -> None:
    table = PathTable.from_paths([["a"]], [1], [1.0], [0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        bootstrap_credits(table, [0], ["linear"], ModelOptions(), level=95)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_credits(table, [0], ["linear"], ModelOptions(), resamples=1)
    with pytest.raises(ValueError, match="customer codes"):
        bootstrap_credits(table, [0, 1], ["linear"], ModelOptions())


# ----------------------------------------------------------------------------- coverage

CHANNELS = ("a", "b", "c")
START_P = np.array([0.5, 0.3, 0.2])
# Rows: from a, b, c; columns: to a, b, c, (conversion), (null).
STEP_P = np.array(
    [
        [0.10, 0.30, 0.10, 0.15, 0.35],
        [0.20, 0.10, 0.20, 0.25, 0.25],
        [0.20, 0.20, 0.00, 0.10, 0.50],
    ]
)
MEAN_VALUE = 50.0
MEAN_JOURNEYS = 2.0  # 1, 2 or 3 per customer


def simulate(rng: np.random.Generator, n: int) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """``n`` journeys walked on the chain: paths, conversions (0/1), values."""
    state = rng.choice(3, size=n, p=START_P)
    paths: list[list[str]] = [[CHANNELS[s]] for s in state]
    alive = np.arange(n)
    converted = np.zeros(n)
    while alive.size:
        u = rng.random(alive.size)
        step = (u[:, None] < np.cumsum(STEP_P[state[alive]], axis=1)).argmax(axis=1)
        converted[alive[step == 3]] = 1
        moving = step < 3
        for j, s in zip(alive[moving].tolist(), step[moving].tolist(), strict=True):
            paths[j].append(CHANNELS[s])
        state[alive[moving]] = step[moving]
        alive = alive[moving]
    values = converted * rng.exponential(MEAN_VALUE, n)
    return paths, converted, values


@cache
def truths(customers: int) -> dict[str, dict[str, float]]:
    """The expected credit of each channel over ``customers`` customers, per model.

    Markov: the chain's exact removal effects share out the expected conversions. Linear and
    last touch: the mean credit per journey from a million simulated journeys.
    """
    edges = {(START, json.dumps([ch])): float(p) for ch, p in zip(CHANNELS, START_P, strict=True)}
    for i, ch in enumerate(CHANNELS):
        key = json.dumps([ch])
        for j, to in enumerate([*(json.dumps([c]) for c in CHANNELS), CONVERSION, NULL]):
            if STEP_P[i, j] and to != key:  # self-loops change no absorption probability
                edges[(key, to)] = float(STEP_P[i, j])
    exact = solve_markov(TransitionCounts.from_parts(edges, {}, {}))
    journeys = customers * MEAN_JOURNEYS
    effects = {ch: exact.removal_effects[ch] for ch in CHANNELS}
    total = sum(effects.values())
    out = {
        "markov": {
            ch: journeys * exact.conversion_probability * effects[ch] / total for ch in CHANNELS
        }
    }
    rng = np.random.default_rng(2026)
    paths, converted, _ = simulate(rng, 1_000_000)
    linear = dict.fromkeys(CHANNELS, 0.0)
    last = dict.fromkeys(CHANNELS, 0.0)
    for path, c in zip(paths, converted.tolist(), strict=True):
        if c:
            for ch in path:
                linear[ch] += 1 / len(path)
            last[path[-1]] += 1
    out["linear"] = {ch: journeys * linear[ch] / 1_000_000 for ch in CHANNELS}
    out["last_touch"] = {ch: journeys * last[ch] / 1_000_000 for ch in CHANNELS}
    return out


@pytest.mark.slow
def test_the_95_percent_interval_covers_the_truth_of_a_known_chain() -> None:
    customers, logs, resamples = 1000, 150, 200
    truth = truths(customers)
    rng = np.random.default_rng(14)
    covered = {model: 0 for model in truth}
    checks = {model: 0 for model in truth}
    for _ in range(logs):
        per_customer = rng.integers(1, 4, size=customers)
        customer = np.repeat(np.arange(customers), per_customer)
        paths, converted, values = simulate(rng, len(customer))
        table = PathTable.from_paths(paths, converted, values, 1 - converted, channels=CHANNELS)
        seed = int(rng.integers(1 << 31))
        result = bootstrap_credits(table, customer, list(truth), ModelOptions(), resamples,
                                   0.95, seed)  # fmt: skip
        intervals = result.intervals()
        for model, expected in truth.items():
            for ch, want in expected.items():
                interval = intervals[model][ch]
                for (low, high), target in (
                    (interval.conversions, want),
                    (interval.value, want * MEAN_VALUE),
                ):
                    checks[model] += 1
                    covered[model] += low <= target <= high
    for model in truth:
        coverage = covered[model] / checks[model]
        print(f"{model}: {coverage:.3f} of {checks[model]}")
        assert 0.90 <= coverage <= 0.99, f"{model}: {coverage:.3f} of {checks[model]}"


def test_intervals_json_names_how_they_were_made() -> None:
    empty = BootstrapCredits(0.9, 10, 7, 3)
    assert empty.settings_json()["level"] == 0.9 and empty.intervals() == {}


def test_journey_objects_give_the_batch_intervals() -> None:
    # What a stream would call on its merged journeys: the same intervals as the batch's.
    from attribution.bootstrap import credit_intervals_of_journeys

    journeys = generated_journeys()
    models = ["linear", "time_decay", "markov", "shapley"]
    batch = journey_credit_intervals(journeys, models, ModelOptions(), 30, 0.9, seed=9)
    objects = credit_intervals_of_journeys(
        journeys.journeys(), models, ModelOptions(), 30, 0.9, seed=9
    )
    assert objects.customers == batch.customers
    for model, channels in batch.intervals().items():
        mine = objects.intervals()[model]
        assert set(mine) == set(channels)
        for ch, interval in channels.items():
            assert mine[ch].conversions == pytest.approx(interval.conversions, rel=1e-9)
            assert mine[ch].value == pytest.approx(interval.value, rel=1e-9)
