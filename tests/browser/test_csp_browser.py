"""The Content Security Policy, as a browser enforces it, on every page.

Every page a clinician or an administrator can open is loaded in chromium and
must report no CSP violation (nor console error, nor uncaught exception): the
policy forbids inline scripts, inline styles and anything from elsewhere, so
a page that needs one is broken for real users. htmx and the copy button must
keep working under it. A self-test proves the watcher would see a violation.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from urllib.parse import urlsplit

import pytest

from intake.models import Interaction
from tests.support.browser import (
    PASSWORD,
    STATIC_PATH,
    caused_by_the_site,
    leave_field,
    sign_in,
    wait_for_htmx,
)
from tests.support.factories import make_interaction

pytestmark = pytest.mark.django_db(transaction=True)

DETAIL_URL = re.compile(r"/interactions/([0-9a-f-]{36})/$")
NEW_PASSWORD = "a-fresh-Passphrase-42"
WAIT_MS = 10_000
# A resource the browser logs as failed when a page answers 4xx on purpose.
FAILED_LOAD = r"Failed to load resource: the server responded with a status of {}"


class Walk:
    """Visits pages and remembers which one reported which violation."""

    def __init__(self, page, site: str, watch) -> None:
        self.page = page
        self.site = site
        self.watch = watch
        self.seen: list[str] = []
        self.violations: dict[str, list[dict]] = {}

    def settle(self, label: str) -> None:
        """Let the page's reports arrive, then file them under `label`."""
        self.page.wait_for_load_state("load", timeout=WAIT_MS)
        # securitypolicyviolation events reach Python through a binding: give
        # the page a moment, then a round trip that arrives after them.
        self.page.evaluate("new Promise(r => setTimeout(r, 100))")
        already = sum(len(v) for v in self.violations.values())
        new = self.watch.csp_violations[already:]
        if new:
            self.violations[label] = new
        self.seen.append(label)

    def visit(self, path: str, *, status: int = 200) -> None:
        if status >= 400:
            self.watch.expect_console_error(FAILED_LOAD.format(status))
        response = self.page.goto(f"{self.site}{path}")
        assert response is not None
        assert response.status == status, f"{path}: {response.status}"
        assert response.headers.get("content-security-policy"), path
        self.settle(path)


def numbered_record(user, number: int, **fields) -> Interaction:
    """Interaction `number` of a list, its identifiers numbered too."""
    return make_interaction(
        user,
        **{
            "encounter_identifier": f"ENC-{number:03d}",
            "encounter_started_at": dt.datetime(2026, 1, 14, 9, 0, tzinfo=dt.UTC),
            "time_zone": "UTC",
            "websocket_url": f"wss://example.invalid/{number}",
            "patient_identifier": f"PAT-{number:03d}",
            **fields,
        },
    )


def fill_required(page, identifier: str) -> None:
    page.locator("#id_encounter_identifier").fill(identifier)
    page.locator("#id_encounter_status").select_option("planned")
    page.locator("#id_encounter_type").select_option("emergency")
    # Checked live as each is left: their messages go before Create is clicked.
    leave_field(page)


# --- the watcher -----------------------------------------------------------


def test_the_watcher_catches_an_inline_style_and_an_inline_handler(
    page, site, watch, browser_clinician
):
    sign_in(page, site, "nurse")
    page.wait_for_load_state("networkidle")
    assert watch.csp_violations == []
    # Chromium also logs each refusal to the console.
    watch.expect_console_error("Content Security Policy")

    page.evaluate(
        """document.body.insertAdjacentHTML("beforeend",
            '<div id="injected" style="color: red" onclick="x()">x</div>'
            + '<img alt="" src="data:," onerror="window.__ran = true">')"""
    )
    page.locator("#injected").wait_for(state="attached", timeout=WAIT_MS)
    for _ in range(50):
        directives = {v["directive"] for v in watch.csp_violations}
        if {"style-src-attr", "script-src-attr"} <= directives:
            break
        page.wait_for_timeout(100)

    directives = {v["directive"] for v in watch.csp_violations}
    assert "style-src-attr" in directives
    assert "script-src-attr" in directives
    # Blocked, not only reported: neither the style nor the handler applied.
    assert page.evaluate("window.__ran") is None
    color = page.evaluate("getComputedStyle(document.getElementById('injected')).color")
    assert color != "rgb(255, 0, 0)"
    watch.csp_violations.clear()  # caught, as it should be; teardown stays clean


#: Styles set through the CSSOM, as a browser extension or a resized field sets
#: them (allowed by the policy): htmx must never copy them back as attributes.
STYLE_FROM_OUTSIDE = """() => {
  for (const id of ["intake-form", "id_encounter_identifier",
                    "id_encounter_identifier-errors", "id_assigned_user_id-errors"]) {
    document.getElementById(id).style.outline = "1px dotted rgb(1, 2, 3)";
  }
}"""
HTMX_SCRIPT = re.compile(r"^/static/vendor/htmx-[\d.]+\.min\.js$")


def submit_with_errors(page) -> None:
    """Send the empty form through htmx and wait until its errors are in."""
    page.get_by_role("button", name="Create interaction").click()
    page.locator("#intake-form [role=alert]").wait_for(timeout=WAIT_MS)
    wait_for_htmx(page)


def test_the_watcher_names_the_site_s_own_script_even_past_axe_s_exclusion(
    page, site, watch, browser_clinician
):
    sign_in(page, site, "nurse")
    watch.expect_console_error("Content Security Policy")
    # htmx as it was: settling the style attribute back after a swap.
    page.evaluate("htmx.config.attributesToSettle.push('style')")
    page.evaluate(STYLE_FROM_OUTSIDE)

    submit_with_errors(page)
    # And what axe does while it runs: a <style> element of its own.
    page.evaluate(
        "document.head.appendChild(document.createElement('style'))"
        ".textContent = 'p { color: red }'"
    )
    page.evaluate("new Promise(r => setTimeout(r, 200))")

    by_site = [v for v in watch.csp_violations if caused_by_the_site(v)]
    assert by_site, watch.csp_violations
    assert {v["directive"] for v in by_site} == {"style-src-attr"}
    assert all(HTMX_SCRIPT.match(urlsplit(v["source"]).path) for v in by_site)
    injected = [v for v in watch.csp_violations if not caused_by_the_site(v)]
    assert {v["directive"] for v in injected} == {"style-src-elem"}
    # Forgiving the test tool's styles (as axe_audit does) keeps the site's.
    watch.forgive_injected_styles(csp_since=0, console_since=0)
    assert watch.csp_violations == by_site
    assert any(STATIC_PATH in text for text in watch.console_errors)
    watch.csp_violations.clear()  # caught, as it should be; teardown stays clean


def test_an_htmx_swap_never_sets_a_style_attribute(
    page, site, watch, browser_clinician
):
    sign_in(page, site, "nurse")
    page.evaluate(STYLE_FROM_OUTSIDE)

    # The whole form swapped with its errors, then one field's errors live.
    submit_with_errors(page)
    assert page.locator("#id_encounter_identifier-errors .error").count() == 1
    page.evaluate(STYLE_FROM_OUTSIDE)
    # The assigned user sits in the closed "More details" group.
    page.locator("#more-details-summary").click()
    page.locator("#id_assigned_user_id").fill("nope")
    page.locator("#id_assigned_user_id").press("Tab")
    page.locator("#id_assigned_user_id-errors .error").wait_for(timeout=WAIT_MS)
    wait_for_htmx(page)
    page.evaluate("new Promise(r => setTimeout(r, 200))")

    assert watch.csp_violations == []
    watch.assert_clean()
    # Set once, for every page, by the htmx-config meta tag of base.html.
    assert "style" not in page.evaluate("htmx.config.attributesToSettle")


# --- htmx and the copy button under the policy -----------------------------


def test_htmx_and_the_copy_button_work_under_the_policy(
    page, site, corti, watch, browser_clinician
):
    sign_in(page, site, "nurse")
    assert page.evaluate("typeof window.htmx") == "object"

    # Live validation: an htmx request and swap.
    # The assigned user sits in the closed "More details" group.
    page.locator("#more-details-summary").click()
    page.locator("#id_assigned_user_id").fill("nope")
    page.locator("#id_assigned_user_id").press("Tab")
    page.locator("#id_assigned_user_id-errors .error").wait_for(timeout=WAIT_MS)
    assert "valid UUID" in page.locator("#id_assigned_user_id-errors").inner_text()

    # Submitting through htmx, then the copy button on the result.
    page.locator("#id_assigned_user_id").fill("")
    fill_required(page, "ENC-CSP")
    page.get_by_role("button", name="Create interaction").click()
    page.wait_for_url(DETAIL_URL, timeout=WAIT_MS)
    shown = page.locator("#interaction-id").inner_text().strip()
    page.get_by_role("button", name="Copy ID").click()
    page.locator(".copy-status").filter(has_text="Copied to the clipboard.").wait_for(
        timeout=WAIT_MS
    )
    assert page.evaluate("navigator.clipboard.readText()") == shown
    assert shown == str(Interaction.objects.get().interaction_id)
    page.wait_for_load_state("networkidle")
    assert watch.csp_violations == []
    watch.assert_clean()


# --- every page ------------------------------------------------------------


def test_every_page_a_clinician_opens_reports_no_violation(
    page, site, corti, watch, browser_clinician
):
    walk = Walk(page, site, watch)
    for number in range(30):
        numbered_record(browser_clinician, number)

    # Signed out: the sign-in page, then a refused sign-in.
    walk.visit("/accounts/login/")
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_label("Password").press("Enter")
    page.locator("#login-errors").wait_for(timeout=WAIT_MS)
    walk.settle("sign-in with an error")
    # Too many refusals for one name: the paused sign-in page (429).
    watch.expect_console_error(FAILED_LOAD.format(429))
    for _ in range(6):
        if page.get_by_role("heading", name="Sign-in paused").is_visible():
            break
        page.get_by_label("Username").fill("ghost")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_label("Password").press("Enter")
        page.wait_for_load_state("load")
    assert page.get_by_role("heading", name="Sign-in paused").is_visible()
    walk.settle("sign-in paused")

    sign_in(page, site, "nurse")
    walk.settle("the intake form")

    # The form with errors (htmx) and after a Corti failure.
    page.get_by_role("button", name="Create interaction").click()
    page.locator("#intake-form [role=alert]").wait_for(timeout=WAIT_MS)
    assert page.locator("#id_encounter_identifier-errors .error").count() == 1
    walk.settle("the form with errors")

    corti.set_faults(
        {
            "kind": "400",
            "endpoint": "create",
            "count": 1,
            "validation_errors": [{"encounter.title": "is not allowed"}],
        }
    )
    fill_required(page, "ENC-FAIL")
    page.get_by_role("button", name="Create interaction").click()
    page.locator("#id_encounter_title-errors .error").wait_for(timeout=WAIT_MS)
    walk.settle("the form after a Corti failure")

    # The failed submission's page, and the form to correct it from there.
    page.get_by_role("link", name="See this submission in the log").click()
    page.wait_for_url(DETAIL_URL)
    walk.settle("a failed submission")
    page.get_by_role("link", name="Correct and send again").click()
    page.locator("#id_encounter_title-errors .error").wait_for(timeout=WAIT_MS)
    walk.settle("the form to correct a failed submission")

    # A created one: its page, and the form that was sent.
    page.locator("#id_encounter_identifier").fill("ENC-OK")
    page.get_by_role("button", name="Create interaction").click()
    page.wait_for_url(DETAIL_URL, timeout=WAIT_MS)
    walk.settle("a created interaction")
    record = Interaction.objects.get(encounter_identifier="ENC-OK")
    walk.visit(f"/interactions/new/?key={record.submission_key}")
    assert page.get_by_text("This form was already sent").is_visible()

    # The list: pages (htmx), search (htmx), a filter (htmx).
    walk.visit("/interactions/")
    assert not page.get_by_role("link", name="Newer").is_visible()
    page.get_by_role("link", name="Older").click()
    page.get_by_role("link", name="Newer").wait_for(timeout=WAIT_MS)
    assert "older=" in page.url
    walk.settle("the list, older page")
    page.locator("#id_q").fill("PAT-007")
    page.get_by_text("1 submission matches.").wait_for(timeout=WAIT_MS)
    walk.settle("the list, searched")
    page.locator("#id_outcome").select_option("failed")
    page.get_by_text("No submissions match these filters.").wait_for(timeout=WAIT_MS)
    walk.settle("the list, filtered to nothing")
    walk.visit("/interactions/?older=not-a-cursor&status=planned")

    # Refused and missing pages.
    walk.visit("/interactions/export.csv", status=403)
    walk.visit(f"/interactions/{uuid.uuid4()}/", status=404)
    walk.visit("/no-such-page/", status=404)

    # The password: the form, its errors, done.
    walk.visit("/accounts/password_change/")
    page.get_by_role("button", name="Change password").click()
    page.locator("main .error").first.wait_for(timeout=WAIT_MS)
    walk.settle("password change with errors")
    page.get_by_label("Old password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(re.compile(r"/accounts/password_change/done/$"))
    walk.settle("password changed")

    assert len(walk.seen) >= 20
    assert walk.violations == {}
    watch.assert_clean()


def test_every_page_an_administrator_opens_reports_no_violation(
    page, site, corti, watch, browser_admin, browser_clinician
):
    from axes.models import AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group

    walk = Walk(page, site, watch)
    record = numbered_record(browser_clinician, 1, encounter_title="Review me")
    numbered_record(
        browser_clinician,
        2,
        outcome=Interaction.Outcome.FAILED,
        interaction_id=None,
        websocket_url="",
        error_status=400,
        error_message="Rejected",
        error_problem={"validationErrors": [{"encounter.title": "is bad"}]},
    )

    # The admin signs in on the dashboard's page; a refused attempt on record.
    walk.visit("/admin/login/?next=/admin/")
    assert "/accounts/login/?next=/admin/" in page.url
    page.get_by_label("Username").fill("chief")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_label("Password").press("Enter")
    page.locator("#login-errors").wait_for(timeout=WAIT_MS)
    walk.settle("sign-in to the admin with an error")

    sign_in(page, site, "chief", next_path="/admin/")
    walk.settle("admin index")
    user_pk = browser_clinician.pk
    group_pk = Group.objects.get(name="Clinicians").pk
    failure_pk = AccessFailureLog.objects.get().pk
    access_pk = AccessLog.objects.latest("attempt_time").pk

    for path in [
        "/admin/intake/",
        "/admin/intake/interaction/",
        "/admin/intake/interaction/?q=ENC-001",
        "/admin/intake/interaction/?outcome__exact=failed",
        f"/admin/intake/interaction/{record.pk}/change/",
        f"/admin/intake/interaction/{record.pk}/history/",
        "/admin/auth/",
        "/admin/auth/user/",
        f"/admin/auth/user/{user_pk}/change/",
        f"/admin/auth/user/{user_pk}/history/",
        "/admin/auth/group/",
        f"/admin/auth/group/{group_pk}/change/",
        "/admin/axes/",
        "/admin/axes/accessattempt/",
        "/admin/axes/accessfailurelog/",
        f"/admin/axes/accessfailurelog/{failure_pk}/change/",
        "/admin/axes/accesslog/",
        f"/admin/axes/accesslog/{access_pk}/change/",
        "/admin/password_change/",
    ]:
        walk.visit(path)
    # The changelist's own htmx-free search box.
    walk.visit("/admin/intake/interaction/")
    page.locator("#searchbar").fill("ENC-002")
    page.locator("#searchbar").press("Enter")
    page.wait_for_url(re.compile(r"\?q=ENC-002"))
    walk.settle("admin search")
    # A deleted record's address: back to the index, with a message.
    walk.visit(f"/admin/intake/interaction/{uuid.uuid4()}/change/")
    walk.visit("/admin/no-such-page/", status=404)

    # The dashboard as an administrator sees it (export link and all).
    walk.visit("/interactions/")
    assert page.get_by_role("link", name="Export these as CSV").is_visible()
    walk.visit(f"/interactions/{record.pk}/")
    walk.visit("/interactions/new/", status=200)

    assert len(walk.seen) >= 25
    assert walk.violations == {}
    watch.assert_clean()
