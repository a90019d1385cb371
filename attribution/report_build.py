"""The analytics report of an event log, assembled from plain parameters.

The batch ``report`` command, the notebook API and the dashboard all call
:func:`build_report`: fold the events, attribute them, build the journeys and run the
library's :func:`~attribution.analytics.report.analytics_report`. The defaults are those of
``config/defaults.toml`` (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attribution.engine import AttributionReport
    from attribution.events import AnyEvent
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
    direct_channel: str = "direct"
    half_life_days: float = 7.0
    crm_channels: tuple[str, ...] = ("email", "push", "sms", "whatsapp")
    rfm_window_days: float = 365.0
    holdout_from_hash: bool = False
    holdout_salt: str = "crm-attribution"
    holdout_control_share: float = 0.05
    compare_days: float = 30.0

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        models: Sequence[str],
        lookback_days: float | None = None,
        compare_days: float = 30.0,
    ) -> ReportParameters:
        """Parameters from :class:`config.settings.Settings` (or anything shaped like it)."""
        s, a = settings.attribution, settings.analytics
        return cls(
            models=tuple(models),
            lookback_days=lookback_days or s.lookback_days,
            journey_timeout_days=s.journey_timeout_days,
            allowed_lateness_hours=s.allowed_lateness_hours,
            markov_order=s.markov_order,
            direct_channel=s.direct_channel,
            half_life_days=s.half_life_days,
            crm_channels=tuple(s.crm_channels),
            rfm_window_days=a.rfm_window_days,
            holdout_from_hash=a.holdout_from_hash,
            holdout_salt=a.holdout_salt,
            holdout_control_share=a.holdout_control_share,
            compare_days=compare_days,
        )


@dataclass
class BuiltReport:
    """The report JSON, and the attribution and journeys it was made from."""

    report: dict[str, Any]
    attribution: AttributionReport
    journeys: list[Journey] = field(default_factory=list)


def build_report(
    events: Sequence[AnyEvent],
    params: ReportParameters,
    as_of_ms: int | None = None,
    customer_scores: bool = False,
    stage: Stage = _no_stage,
) -> BuiltReport:
    """Fold the events, attribute them and assemble the analytics report."""
    from attribution.analytics.holdout import HashMembership
    from attribution.analytics.report import (
        ReportOptions,
        analytics_report,
        fold_events,
        previous_snapshot,
    )
    from attribution.engine import attribute_events
    from attribution.events import Purchase, Touchpoint
    from attribution.journeys import JourneyRules, build_journeys
    from attribution.models.options import ModelOptions

    if not events:
        raise ValueError("no event to report on")
    stage("folding events")
    hashing = HashMembership(params.holdout_salt, params.holdout_control_share)
    state = fold_events(events, hashing if params.holdout_from_hash else None)
    when = state.newest_ms if as_of_ms is None else as_of_ms
    assert when is not None  # events is not empty
    rules = JourneyRules.from_days(
        params.lookback_days,
        params.journey_timeout_days or params.lookback_days,
        params.allowed_lateness_hours,
    )
    model_options = ModelOptions(
        order=params.markov_order,
        direct_channel=params.direct_channel,
        half_life_days=params.half_life_days,
    )
    # Journeys expire on the customer-event clock (as in `attribute` and the stream): a later
    # cost or assignment event does not age anyone's journey.
    stage("attributing")
    attribution = attribute_events(events, rules, list(params.models), model_options, as_of_ms)
    stage("building journeys")
    journeys, _ = build_journeys(
        [e for e in events if isinstance(e, Touchpoint | Purchase)], rules, as_of_ms
    )
    options = ReportOptions(
        crm_channels=params.crm_channels,
        rfm_window_days=params.rfm_window_days,
        model_options=model_options,
    )
    stage("scoring RFM, fitting lifetime value, holdout and campaigns")
    before = previous_snapshot(state, when, params.compare_days, params.rfm_window_days)
    report = analytics_report(
        state, attribution, journeys, options, when, customer_scores, previous_snapshot=before
    )
    report["attribution"] = attribution.to_json()["totals"]
    return BuiltReport(report, attribution, list(journeys))
