"""The stream under the business settings of issue 14: time zone and Markov states."""

from __future__ import annotations

from crm_attribution.generator import GeneratorConfig, generate
from stream.testing import TestingLog, run_main
from tests.compare import assert_same
from tests.stream.batch_answers import batch_attribution, batch_report, stream_settings


def test_a_business_time_zone_and_raw_markov_states_give_the_batch_answer() -> None:
    # +14:00: many purchases change day, and those of 31 January change month.
    settings = stream_settings(
        partitions=3,
        CRM_BUSINESS__TIME_ZONE="Pacific/Kiritimati",
        CRM_ATTRIBUTION__MARKOV_ORDER="2",
        CRM_ATTRIBUTION__MARKOV_STATES="raw",
    )
    lines = list(generate(GeneratorConfig(customers=200, days=30, seed=5)))
    log = TestingLog(settings)
    log.produce_lines(lines, settings)
    run = run_main(log, settings)

    batch = batch_report(lines, settings)
    assert_same(run.attribution(), batch_attribution(lines, settings))
    assert_same(run.analytics(), batch)
    utc = stream_settings(
        partitions=3,
        CRM_ATTRIBUTION__MARKOV_ORDER="2",
    )
    merged = batch_attribution(lines, utc)
    # The settings matter for these logs (else the test could not fail).
    assert batch["revenue_share"] != batch_report(lines, utc)["revenue_share"]
    assert merged["models"]["markov"] != batch_attribution(lines, settings)["models"]["markov"]
