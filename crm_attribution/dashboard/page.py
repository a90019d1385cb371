"""One self-contained HTML page: the chart library, the drawing code and the data inline.

The chart library is plotly.js as the ``plotly`` Python package ships it (MIT licence, in
its package data): nothing is fetched when the page opens, so it works offline. With
``poll_url`` the page fetches fresh dashboard data from that URL every ``poll_seconds``
and redraws (the worker's ``/dashboard``).
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import Any

VIEWS = (
    ("view-models", "Model comparison"),
    ("view-paths", "Conversion paths"),
    ("view-markov", "Markov chain"),
    ("view-rfm", "RFM"),
    ("view-clv", "Lifetime value"),
    ("view-holdout", "Holdout"),
    ("view-campaigns", "Campaigns"),
    ("view-share", "CRM share over time"),
)


@cache
def _asset(name: str) -> str:
    return resources.files("crm_attribution.dashboard").joinpath(name).read_text("utf-8")


@cache
def chart_library() -> str:
    """plotly.js, minified, from the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _script_json(data: Any) -> str:
    # Inside <script>, "</" would end the element: JSON allows "<\/" for it.
    return json.dumps(data, allow_nan=False).replace("</", "<\\/")


def render_dashboard(
    data: dict[str, Any],
    poll_url: str | None = None,
    poll_seconds: float = 5.0,
    title: str = "crm-attribution",
) -> str:
    """The dashboard page for ``data`` (from :func:`dashboard_data`), as one HTML string."""
    if poll_seconds <= 0:
        raise ValueError(f"poll_seconds must be positive, got {poll_seconds}")
    config = {"poll_url": poll_url, "poll_seconds": poll_seconds}
    nav = "".join(f'<a href="#{vid}">{html.escape(name)}</a>' for vid, name in VIEWS)
    sections = "".join(
        f'<section class="view" id="{vid}"><h2>{html.escape(name)}</h2></section>'
        for vid, name in VIEWS
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)} dashboard</title>
<style>{_asset("dashboard.css")}</style>
</head>
<body>
<header><h1>{html.escape(title)} dashboard<span id="live" class="live"></span>\
<span id="generated"></span></h1><nav>{nav}</nav></header>
<main>{sections}</main>
<script type="application/json" id="dashboard-config">{_script_json(config)}</script>
<script type="application/json" id="dashboard-data">{_script_json(data)}</script>
<script>{chart_library()}</script>
<script>{_asset("dashboard.js")}</script>
</body>
</html>
"""
