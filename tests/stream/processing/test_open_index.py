"""The open-journey index in sorted arrays answers as the dict it replaced."""

from __future__ import annotations

import random
from typing import Any

import orjson

from attribution.journeys import JourneyRules, NullJourney
from crm_attribution.generator import GeneratorConfig, generate
from crm_attribution.settings.typed import load_settings
from stream.processing import open_index
from stream.processing.aggregates import stored_journeys
from stream.processing.customer_state import expiry_due
from stream.processing.open_index import OpenIndex
from stream.testing import TestingLog, run_main

RULES = JourneyRules(timeout_ms=1_000, allowed_lateness_ms=100)


def test_the_index_answers_as_a_dict_through_merges() -> None:
    """Random opens, moves and closes (ids of every length, non-ASCII and a trailing NUL too):
    the same customers due and the same count as a dict, before and after each merge."""
    rng = random.Random(7)
    names = [f"c{i}" for i in range(3_000)] + ["é-ü", "x\x00", "", "c1\x00"]
    start = [(c, rng.randrange(10_000)) for c in names[:1_500]]
    model = dict(start)
    index = OpenIndex(start)
    for step in range(12_000):
        customer = rng.choice(names)
        since = None if rng.random() < 0.3 else rng.randrange(10_000)
        index.set(customer, since)
        if since is None:
            model.pop(customer, None)
        else:
            model[customer] = since
        if step % 997 == 0 or step == 11_999:
            as_of = rng.randrange(12_000)
            want = sorted(c for c, s in model.items() if expiry_due(s, as_of, RULES))
            assert sorted(index.due(as_of, RULES)) == want
            assert len(index) == len(model)
    index.merge()
    assert len(index) == len(model)
    assert sorted(index.due(20_000, RULES)) == sorted(model)
    assert index.due(0, RULES) == []
    assert len(OpenIndex()) == 0 and OpenIndex().due(5, RULES) == []


def test_a_stream_answers_the_same_with_its_index_in_arrays(monkeypatch: Any) -> None:
    """Merged into the arrays after every change (the default merges only past 1,024
    changes, which small logs never reach), expiries and answers stay the same."""
    settings = load_settings(environ={"CRM_ATTRIBUTION__CREDIT_INTERVALS": "true"})
    lines = list(generate(GeneratorConfig(customers=200, days=60, seed=3)))
    answers = []
    for least in (1024, 1):
        monkeypatch.setattr(open_index, "_MIN_CHANGES", least)
        log = TestingLog(settings)
        log.produce_lines(lines, settings)
        run = run_main(log, settings)
        records = sorted(
            orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in run.attribution_records()
        )
        answers.append((run.attribution(), stored_journeys(run.aggregates.items()), records))
    assert answers[0] == answers[1]
    assert any(isinstance(j, NullJourney) for j in answers[0][1])  # expiries happened
