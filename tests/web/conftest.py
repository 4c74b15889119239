"""Browser fixtures: Debian's Chromium driven by Playwright (``executable_path``; never a
browser download). Without Chromium the browser tests skip, saying why -- and fail under
``CI=true``, where ``.ci/chromium.sh`` must have installed it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_support import CHROMIUM_FLAGS, require_chromium
from support.cli import REPO


@pytest.fixture(scope="module")
def browser():
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Playwright starts Chromium on a fresh temporary user-data-dir of its own
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """A page in a fresh context (its own cookies), recording dialogs and page errors."""

    def __init__(self, context):
        self.context = context
        self.page = context.new_page()
        self.page.set_default_timeout(15_000)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def sign_in(self, url: str, token: str) -> None:
        self.page.goto(url + "/app/sign-in")
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/app/projects")

    def screenshot(self, name: str) -> None:
        """Into $HLOPS_SCREENSHOTS (e.g. docs/img) when set."""
        target = os.environ.get("HLOPS_SCREENSHOTS")
        if target:
            folder = Path(target) if Path(target).is_absolute() else REPO / target
            folder.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture
def tab_factory(browser):
    contexts = []

    def make() -> Tab:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        contexts.append(context)
        return Tab(context)

    yield make
    for context in contexts:
        context.close()
