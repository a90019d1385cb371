"""Dashboard pages of the batch commands: the data of one log, no polling."""

from __future__ import annotations

from typing import Any

from crm_attribution.dashboard.data import dashboard_data, markov_from_result
from crm_attribution.dashboard.page import render_dashboard


def _markov(attribution: Any) -> dict[str, Any] | None:
    result = attribution.results.get("markov")
    return None if result is None else markov_from_result(result)


def report_data(built: Any, rfm_window_days: float) -> dict[str, Any]:
    """Dashboard data of a :class:`~attribution.report_build.BuiltReport`."""
    from attribution.paths_summary import paths_summary

    table = built.journeys.path_table()
    return dashboard_data(
        built.attribution.to_json(),
        built.report,
        _markov(built.attribution),
        paths_summary(table),
        rfm_window_days,
    )


def report_dashboard(built: Any, rfm_window_days: float) -> str:
    """The dashboard page of ``report --format html``."""
    return render_dashboard(report_data(built, rfm_window_days), title="crm-attribution report")


def attribute_dashboard(attribution: Any, table: Any) -> str:
    """The dashboard page of ``attribute --format html``: models, paths and Markov views."""
    from attribution.paths_summary import paths_summary

    data = dashboard_data(attribution.to_json(), None, _markov(attribution), paths_summary(table))
    return render_dashboard(data, title="crm-attribution attribution")
