"""Debian's Chromium driven by Playwright (no `playwright install`: no downloads), and a page
logged in to the web process the way a person does it: the URL with the token, once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web_harness import WebProcess

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """The browser; in CI (CI=true) a missing chromium fails the test instead of skipping."""
    if not CHROMIUM.exists():
        message = f"no {CHROMIUM}: `apt-get install -y chromium`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def open_dashboard(chromium: Any, web: WebProcess) -> Any:
    """A new browser context (its own cookies) on the dashboard, logged in with the URL."""
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(f"{web.origin}/?token={web.token}")
    expect(page).to_have_url(f"{web.origin}/")
    return page
