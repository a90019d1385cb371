"""The analytics package stays free of the streaming stack."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "assists", "bgnbd", "campaigns", "clv", "clv_summary", "funnel", "gamma_gamma", "holdout",
    "holdout_stats", "ledger", "movement", "revenue_share", "rfm", "rfm_segments", "touch_credit",
]  # fmt: skip


def test_analytics_does_not_import_faust_or_kafka() -> None:
    code = (
        "import sys\n"
        + "".join(f"import attribution.analytics.{m}\n" for m in MODULES)
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('faust', 'aiokafka', 'kafka')]\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
