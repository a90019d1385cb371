"""Screenshots of every dashboard view for the docs: `make screenshots`.

Generates a synthetic log, writes `report --format html`, opens it in Debian's chromium
(headless, through Playwright) and saves one PNG per view beside this file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from crm_attribution.cli import main
from crm_attribution.dashboard.page import VIEWS
from crm_attribution.generator import GeneratorConfig, generate

HERE = Path(__file__).resolve().parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def shoot() -> int:
    """Write docs/dashboard/<view>.png for every view; 0 on success."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "events.jsonl"
        config = GeneratorConfig(customers=2000, days=90)
        log.write_text("".join(line + "\n" for line in generate(config)), encoding="utf-8")
        page_file = Path(tmp) / "report.html"
        if main(["report", str(log), "--format", "html", "-o", str(page_file)]) != 0:
            return 1
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_file.as_uri())
            page.wait_for_selector("body[data-generated]", state="attached")
            page.screenshot(path=str(HERE / "overview.png"))
            for view, _ in VIEWS:
                page.locator(f"#{view}").screenshot(
                    path=str(HERE / f"{view.removeprefix('view-')}.png")
                )
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(shoot())
