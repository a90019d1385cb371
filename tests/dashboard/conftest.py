"""A real headless Chromium (Debian's), driven by Playwright, for the dashboard tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Per module, not per session: Playwright's sync API runs an event loop in this thread while it
# is open, and later tests that call asyncio.run() must not find one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A Chromium browser; a missing one fails the test (`make test` installs it), never skips."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"{CHROMIUM} is missing: `make browser` installs Debian's chromium", pytrace=False
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: install the test extra (make install)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Page:
    """A browser page that records console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("requestfailed", lambda req: self.errors.append(f"request failed: {req.url}"))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    def cells(self) -> dict[str, str]:
        """Every table cell of the page: ``table|row|column`` -> text."""
        cells: dict[str, str] = self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll("td[data-key]")].map(
                (td) => [td.closest("table").dataset.table + "|" + td.dataset.key,
                         td.textContent]))"""
        )
        return cells


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh page (1280 x 900) in its own context: nothing cached between tests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield Page(context.new_page())
    finally:
        context.close()
