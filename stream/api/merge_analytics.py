"""The customer analytics report of the whole stream: the batch ``report`` command's JSON.

Each worker hands over, for the partitions it owns, its customers' analytics parts as columns
with their funnel counts summed, the cost events and the converted journeys
(:mod:`stream.api.shares`); the worker that was asked concatenates them into the report's
input tables (:mod:`stream.processing.analytics_columns`) and runs the library's own report
on them with the stream's channel credits, so the answer equals ``crm-attribution report``
on the same log.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attribution.analytics.holdout import HashMembership
from attribution.analytics.report import (
    ReportOptions,
    analytics_report,
    clv_section,
    previous_snapshot,
)
from attribution.models.options import ModelOptions
from crm_attribution.settings.typed import Settings
from stream.api.merge_attribution import model_results, totals_object
from stream.processing.aggregates import Merged, converted_table
from stream.processing.analytics_columns import inputs_from_shares


class EmptyStream(LookupError):
    """No event has reached the tables yet."""


def report_from_shares(
    shares: dict[str, dict[str, Any]],
    merged: Merged,
    settings: Settings,
    models: list[str],
    options: ModelOptions,
    customer_scores: bool = False,
    compare_days: float = 30.0,
) -> dict[str, Any]:
    """The report from every partition's share and the merged attribution aggregates."""
    a = settings.analytics
    hashing = HashMembership(a.holdout_salt, a.holdout_control_share)
    costs = [share["costs"] for share in shares.values() if share["costs"]]
    inputs = inputs_from_shares(
        list(shares.values()),
        costs,
        hashing if a.holdout_from_hash else None,
        time_zone=settings.business.time_zone,
    )
    if inputs.newest_ms is None:
        raise EmptyStream("the stream holds no event yet: nothing to report")
    report_options = ReportOptions.from_settings(settings, options)
    when = inputs.newest_ms
    # As in the batch `report`: the lifetime-value fits need only the purchases, so a second
    # thread runs them (NumPy and Polars release the interpreter lock) while the journeys,
    # the credits and every other section are computed.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clv") as pool:
        clv = pool.submit(clv_section, inputs, report_options, when, customer_scores)
        journeys = converted_table(row for s in shares.values() for row in s["journeys"])
        results = model_results(merged, models, options)
        credits = {model: result.channels for model, result in results.items()}
        before = previous_snapshot(inputs, when, compare_days, a.rfm_window_days)
        report = analytics_report(
            inputs, credits, journeys, report_options, when, customer_scores,
            previous_snapshot=before, clv=clv,
        )  # fmt: skip
    report["attribution"] = totals_object(merged)
    report["invalid_records"] = merged.invalid
    return report
