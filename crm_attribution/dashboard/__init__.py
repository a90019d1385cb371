"""The analysts' dashboard: one self-contained HTML page drawn from the report JSON."""

from crm_attribution.dashboard.data import dashboard_data
from crm_attribution.dashboard.page import render_dashboard

__all__ = ["dashboard_data", "render_dashboard"]
