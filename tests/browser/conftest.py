"""Browser tests: Playwright driving Debian's chromium against a live server.

`make test` installs chromium (apt-get) and axe-core (npm) when missing. Where
that was impossible these tests skip and say why; they never download a
browser of their own.

Every page a test opens is watched: a console error, an uncaught exception or
a Content Security Policy violation fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM then
# refuses to run in it unless told that tests know what they do.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
BASE_DIR = Path(__file__).resolve().parent.parent.parent
AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = BASE_DIR / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# axe-core rule tags checked: WCAG 2.0-2.2 A and AA, and best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
PASSWORD = "browser-pass-1"
# A clinic zone whose name cannot appear on a page by accident (unlike "UTC").
CLINIC_ZONE = "Europe/Copenhagen"


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


@dataclass
class PageWatch:
    """What went wrong on the pages of one browser context."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict] = field(default_factory=list)
    # Console errors a test provokes on purpose (a 4xx page, say).
    expected: list[re.Pattern] = field(default_factory=list)

    def expect_console_error(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def unexpected_console_errors(self) -> list[str]:
        return [
            text
            for text in self.console_errors
            if not any(p.search(text) for p in self.expected)
        ]

    def forgive_injected_styles(self, *, csp_since: int, console_since: int) -> None:
        """Drop the inline-style reports a test tool caused since these counts.

        axe-core adds a <style> element while it runs, which the policy rightly
        blocks. A report whose source file is one of the site's own static
        files always stays: then the site broke its own policy.
        """

        def forgiven(violation: dict) -> bool:
            return (
                violation["directive"].startswith("style-src")
                and violation["blocked"] == "inline"
                and not caused_by_the_site(violation)
            )

        self.csp_violations[csp_since:] = [
            v for v in self.csp_violations[csp_since:] if not forgiven(v)
        ]
        self.console_errors[console_since:] = [
            text
            for text in self.console_errors[console_since:]
            if not (
                text.startswith("Applying inline style violates")
                and STATIC_PATH not in text
            )
        ]

    def assert_clean(self) -> None:
        # Each report names its source file: the script that broke the policy.
        assert self.csp_violations == [], "CSP violations"
        assert self.page_errors == [], "uncaught JavaScript errors"
        assert self.unexpected_console_errors() == [], "console errors"


#: Where the site's own scripts and styles are served from.
STATIC_PATH = "/static/"


def caused_by_the_site(violation: dict) -> bool:
    """True when one of the site's own static files caused the CSP report."""
    return urlsplit(violation.get("source") or "").path.startswith(STATIC_PATH)


# `source` is the file whose code broke the policy (event.sourceFile): a site
# script under /static/, or empty/the page for code a test tool injected.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCspViolation({
    directive: e.violatedDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample,
    page: document.location.href,
  });
});
"""


def new_context(browser, *, viewport: dict, watch: PageWatch, phone: bool = False):
    context = browser.new_context(
        viewport=viewport,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=1,
        locale="en-US",
        reduced_motion="reduce",
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.expose_binding(
        "__reportCspViolation",
        lambda source, violation: watch.csp_violations.append(violation),
    )
    context.add_init_script(script=_CSP_LISTENER)
    context.set_default_timeout(15_000)

    def on_console(message):
        if message.type == "error":
            location = message.location or {}
            watch.console_errors.append(f"{message.text} ({location.get('url', '')})")

    context.on("console", on_console)
    context.on("weberror", lambda error: watch.page_errors.append(str(error.error)))
    return context


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
def browser_clinician(db, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("nurse", password=PASSWORD)
    user.groups.add(Group.objects.get(name="Clinicians"))
    return user


@pytest.fixture
def browser_admin(db, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(
        "chief", password=PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get(name="Administrators"))
    return user


def sign_in(page, site: str, username: str, *, next_path: str = "") -> None:
    """Sign in through the real form, with the keyboard."""
    url = f"{site}/accounts/login/"
    if next_path:
        url += f"?next={next_path}"
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state("load")
    assert "/accounts/login/" not in page.url, "sign-in failed"


def axe_violations(page, *, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of the given impact on the current page.

    axe is evaluated through the DevTools protocol, so the page's CSP (which
    rightly forbids injected scripts) does not have to be loosened for it.
    """
    if not AXE_JS.is_file():
        pytest.skip(
            f"Accessibility checks skipped: axe-core is not at {AXE_JS}. "
            "`make test` installs it with npm; that was not possible here."
        )
    page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        AXE_TAGS,
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def screenshot(page, name: str) -> Path:
    """Save the page to docs/screenshots/<name>.png (the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


@pytest.fixture
def clinic_zone(settings) -> str:
    """The clinic in CLINIC_ZONE, so tests can look for its name on pages."""
    settings.TIME_ZONE = CLINIC_ZONE
    return CLINIC_ZONE


@dataclass
class Env:
    """What a browser test drives: the site, the simulator, settings, users."""

    site: str
    corti: Any
    settings: Any
    watch: PageWatch
    nurse: Any
    chief: Any


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


def wait_for_htmx(page) -> None:
    """Until no htmx request, swap or settle is under way and the spinner is gone."""
    page.wait_for_function(
        """() => !document.querySelector(
              '.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')
            && (!document.getElementById('submit-progress')
                || getComputedStyle(document.getElementById('submit-progress'))
                     .opacity === '0')"""
    )
