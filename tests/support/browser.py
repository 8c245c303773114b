"""Driving Debian's chromium with Playwright: contexts whose pages are
watched for errors, signing in, axe-core, screenshots, waiting for htmx.

The fixtures that hand these out are in tests/browser/conftest.py.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.processes import BASE_DIR

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    # Chromium's stand-in microphone (a steady beep) for the recording pages;
    # no prompt of its own: a context's granted permission decides.
    "--use-fake-device-for-media-stream",
]
AXE_JS = BASE_DIR / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = BASE_DIR / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# axe-core rule tags checked: WCAG 2.0-2.2 A and AA, and best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
PASSWORD = "browser-pass-1"


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


@dataclass
class Env:
    """What a browser test drives: the site, the simulator, settings, users."""

    site: str
    corti: Any
    settings: Any
    watch: PageWatch
    nurse: Any
    chief: Any


def wait_for_htmx(page) -> None:
    """Until no htmx request, swap or settle is under way and the spinner is gone."""
    page.wait_for_function(
        """() => !document.querySelector(
              '.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')
            && (!document.getElementById('submit-progress')
                || getComputedStyle(document.getElementById('submit-progress'))
                     .opacity === '0')"""
    )


def signed_in(page, env: Env, user) -> None:
    """Give the browser a session of `user` (the sign-in form has its own tests)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": env.site}]
    )


def settled_at_once(env: Env) -> None:
    """No settle window: a 503 loses the answer, and the search made at once
    proves Corti did not create it, so the submission fails (Retry offered)
    instead of staying unknown."""
    env.settings.INTAKE_SETTLE_SECONDS = 0


def leave_field(page) -> None:
    """Leave the focused field and wait for its live validation's answer.

    A field is checked when it loses focus, and the answer may add or remove a
    message above whatever is clicked next. Left by the click itself, the
    field's answer can land between mousedown and mouseup and move the target
    away (Playwright checks the hit target at mousedown only): let the page
    move first."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    wait_for_htmx(page)


def open_more_details(page) -> None:
    """Open the "More details" group (end time, assigned user), once the
    field typed into last has been checked (see `leave_field`)."""
    from playwright.sync_api import expect

    leave_field(page)
    page.get_by_text("More details").click()
    expect(page.get_by_label("Ended at")).to_be_visible()


def field_values(page, names) -> dict[str, str]:
    """The values of the form controls with these ids, as the page holds them."""
    return {name: page.locator(f"#{name}").input_value() for name in names}


def tab_to_named(page, name: str, limit: int = 120) -> None:
    """Press Tab until the focused control's visible name (its label, its
    text or its value) starts with `name`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        text = page.evaluate(
            """() => {
              const el = document.activeElement;
              const label = el.labels && el.labels[0];
              return (label ? label.innerText : el.innerText || el.value || '').trim();
            }"""
        )
        if text.startswith(name):
            return
    raise AssertionError(f"Tab never reached {name!r}")
