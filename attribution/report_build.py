"""The analytics report of an event log, assembled from plain parameters.

The batch ``report`` command, the notebook API and the dashboard all call
:func:`build_report`: build the analytics inputs and the journeys of an event table,
attribute them and run the library's :func:`~attribution.analytics.report.analytics_report`.
The defaults are those of ``config/defaults.toml`` (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl

    from attribution.engine import AttributionReport
    from attribution.events import AnyEvent
    from attribution.journey_table import JourneyTable
    from attribution.journeys import Journey

ALL_MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "time_decay",
    "markov",
    "shapley",
)

Stage = Callable[[str], None]


def _no_stage(label: str) -> None:
    return None


@dataclass(frozen=True)
class ReportParameters:
    """Everything the report depends on besides the events (defaults: the shipped config)."""

    models: tuple[str, ...] = ALL_MODELS
    lookback_days: float = 30.0
    journey_timeout_days: float = 0.0  # 0: the lookback
    allowed_lateness_hours: float = 1.0
    markov_order: int = 1
    markov_states: Literal["merged", "raw"] = "merged"
    direct_channel: str = "direct"
    half_life_days: float = 7.0
    crm_channels: tuple[str, ...] = ("email", "push", "sms", "whatsapp")
    rfm_window_days: float = 365.0
    holdout_from_hash: bool = False
    holdout_salt: str = "crm-attribution"
    holdout_control_share: float = 0.05
    compare_days: float = 30.0
    clv_horizon_weeks: float = 52.0
    time_zone: str = "UTC"  # of the day and month buckets

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        models: Sequence[str],
        lookback_days: float | None = None,
        compare_days: float = 30.0,
    ) -> ReportParameters:
        """Parameters from :class:`crm_attribution.settings.typed.Settings` (or alike)."""
        s, a = settings.attribution, settings.analytics
        return cls(
            models=tuple(models),
            lookback_days=lookback_days or s.lookback_days,
            journey_timeout_days=s.journey_timeout_days,
            allowed_lateness_hours=s.allowed_lateness_hours,
            markov_order=s.markov_order,
            markov_states=s.markov_states,
            direct_channel=s.direct_channel,
            half_life_days=s.half_life_days,
            crm_channels=tuple(s.crm_channels),
            rfm_window_days=a.rfm_window_days,
            holdout_from_hash=a.holdout_from_hash,
            holdout_salt=a.holdout_salt,
            holdout_control_share=a.holdout_control_share,
            compare_days=compare_days,
            clv_horizon_weeks=a.clv_horizon_weeks,
            time_zone=getattr(getattr(settings, "business", None), "time_zone", "UTC"),
        )


@dataclass
class BuiltReport:
    """The report JSON, and the attribution and journeys it was made from."""

    report: dict[str, Any]
    attribution: AttributionReport
    journeys: JourneyTable

    def journey_objects(self) -> list[Journey]:
        """The journeys as objects (per-order records, small logs)."""
        return self.journeys.journeys()


def build_report(
    events: pl.DataFrame | Sequence[AnyEvent],
    params: ReportParameters,
    as_of_ms: int | None = None,
    customer_scores: bool = False,
    stage: Stage = _no_stage,
) -> BuiltReport:
    """Attribute an event table (or events) and assemble the analytics report.

    Columnar from end to end: the analytics inputs by group-bys, the journeys by the kernel;
    the lifetime-value fits run on a second thread while the journeys are built.
    """
    import polars as pl

    from attribution.analytics.holdout import HashMembership
    from attribution.analytics.inputs import inputs_from_events
    from attribution.analytics.report import (
        ReportOptions,
        analytics_report,
        clv_section,
        previous_snapshot,
    )
    from attribution.engine import attribute_journeys
    from attribution.io.event_table import from_events
    from attribution.journey_table import build_journey_table
    from attribution.journeys import JourneyRules
    from attribution.models.options import ModelOptions

    table = events if isinstance(events, pl.DataFrame) else from_events(events)
    if table.height == 0:
        raise ValueError("no event to report on")
    stage("reading customers' purchases, holdout and campaigns")
    hashing = HashMembership(params.holdout_salt, params.holdout_control_share)
    inputs = inputs_from_events(
        table, hashing if params.holdout_from_hash else None, time_zone=params.time_zone
    )
    when = inputs.newest_ms if as_of_ms is None else as_of_ms
    assert when is not None  # the table is not empty
    rules = JourneyRules.from_days(
        params.lookback_days,
        params.journey_timeout_days or params.lookback_days,
        params.allowed_lateness_hours,
    )
    model_options = ModelOptions(
        order=params.markov_order,
        direct_channel=params.direct_channel,
        half_life_days=params.half_life_days,
        markov_states=params.markov_states,
    )
    options = ReportOptions(
        crm_channels=params.crm_channels,
        rfm_window_days=params.rfm_window_days,
        model_options=model_options,
        clv_horizon_weeks=params.clv_horizon_weeks,
    )
    # The lifetime-value fits need no journeys: a second thread (numpy and Polars release the
    # interpreter lock) runs them while the journeys are built and attributed.
    with ThreadPoolExecutor(max_workers=1) as pool:
        clv = pool.submit(clv_section, inputs, options, when, customer_scores)
        # Journeys expire on the customer-event clock (as in `attribute` and the stream): a
        # later cost or assignment event does not age anyone's journey.
        stage("building journeys")
        journeys = build_journey_table(table, rules, as_of_ms)
        stage("attributing")
        attribution = attribute_journeys(journeys, list(params.models), model_options)
        stage("scoring RFM, holdout and campaigns; fitting lifetime value")
        before = previous_snapshot(inputs, when, params.compare_days, params.rfm_window_days)
        report = analytics_report(
            inputs, attribution, journeys, options, when, customer_scores,
            previous_snapshot=before, clv=clv,
        )  # fmt: skip
    report["attribution"] = attribution.to_json()["totals"]
    return BuiltReport(report, attribution, journeys)
