"""Browser tests: Playwright driving Debian's chromium against a live server.

`make test` installs chromium (apt-get) and axe-core (npm) when missing. Where
that was impossible these tests skip and say why; they never download a
browser of their own.

Every page a test opens is watched: a console error, an uncaught exception or
a Content Security Policy violation fails the test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PASSWORD,
    PHONE,
    Env,
    PageWatch,
    new_context,
)
from tests.support.factories import make_user

# Playwright's sync API runs an event loop in this thread; Django's ORM then
# refuses to run in it unless told that tests know what they do.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def playwright_browser():
    """One headless chromium for the run; skips when it cannot be had."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        hint = f" (found {found})" if found else ""
        pytest.skip(
            f"Browser tests skipped: Debian's chromium is not at {CHROMIUM}{hint}. "
            "`make test` installs it with apt-get; that was not possible here."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def context(playwright_browser, watch):
    """A desktop-sized browser context; its pages must stay free of errors."""
    ctx = new_context(playwright_browser, viewport=DESKTOP, watch=watch)
    yield ctx
    ctx.close()
    watch.assert_clean()


@pytest.fixture
def phone_context(playwright_browser, watch):
    ctx = new_context(playwright_browser, viewport=PHONE, watch=watch, phone=True)
    yield ctx
    ctx.close()
    watch.assert_clean()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def site(live_server, corti) -> str:
    """The live dashboard's address, talking to the test simulator."""
    return live_server.url


@pytest.fixture
def browser_clinician(db):
    return make_user("nurse", role="clinician", password=PASSWORD)


@pytest.fixture
def browser_admin(db):
    return make_user("chief", role="administrator", password=PASSWORD)


@pytest.fixture
def env(site, corti, settings, watch, browser_clinician, browser_admin) -> Env:
    return Env(site, corti, settings, watch, browser_clinician, browser_admin)


@pytest.fixture
def open_page(request) -> Callable[[str], Any]:
    """A new page at "desktop" or "phone" width (both contexts watched)."""

    def make(width: str):
        fixture = "context" if width == "desktop" else "phone_context"
        return request.getfixturevalue(fixture).new_page()

    return make
