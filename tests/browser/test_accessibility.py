"""Accessibility in a real browser, at desktop and phone widths.

axe-core (from the npm registry, injected by the test) checks sign-in, the
intake form (empty, with errors, after a Corti failure, refused because another
tab had sent it, and read-only once sent), the list, the detail page with its
calls to Corti and while it checks with Corti, the idle warning, the "Sign-in
paused" page and the administrators' history (the admin changelist, one
interaction's admin page and its /history/ page): no serious or critical
violation. Beyond axe:
errors are linked to their fields and focus moves to the first one, every page
names the clinic's time zone, and targets are at least 24 by 24 CSS pixels.

A case the dashboard does not meet yet is marked xfail(strict=True) with the
reason "BUG: ..."; it turns into a failure as soon as the bug is fixed, so the
marker is removed with the fix.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from pprint import pformat
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import (
    Env,
    PageWatch,
    axe_violations,
    open_more_details,
    settled_at_once,
    signed_in,
    wait_for_htmx,
)
from tests.support.clock import CLINIC_ZONE
from tests.support.factories import build_interaction

ZONE = CLINIC_ZONE
VIEWPORTS = ("desktop", "phone")
ALL_IMPACTS = ("minor", "moderate", "serious", "critical")
BLOCKING_IMPACTS = ("serious", "critical")
MIN_TARGET = 24  # CSS pixels, WCAG 2.2 SC 2.5.8 (AA)
FOCUS_TIMEOUT = 2_000  # ms; focus moves on load or on the htmx swap

WRONG_CREDENTIALS = (
    "Please enter a correct username and password. "
    "Note that both fields may be case-sensitive."
)


pytestmark = pytest.mark.usefixtures("clinic_zone")


# --- what the tests drive -------------------------------------------------


def submit(env: Env, *, fault: dict | None = None, **fields: Any):
    """One submission through the service, as the form would make it."""
    from intake.fields import InteractionDetails
    from intake.services.interactions import interaction_submit

    if fault:
        env.corti.set_faults(fault)
    values = {
        "encounter_identifier": "ENC-3001",
        "encounter_status": "in-progress",
        "encounter_type": "consultation",
        "encounter_started_at": dt.datetime(2026, 3, 2, 9, 15, tzinfo=dt.UTC),
        "encounter_title": "Follow-up: knee pain",
        "patient_identifier": "PAT-1042",
        "patient_name": "Jane Example",
        **fields,
    }
    record = interaction_submit(
        submission_key=uuid.uuid4(),
        submitted_by=env.nurse,
        details=InteractionDetails(**values),
    ).record
    if fault:
        env.corti.set_faults()
    return record


def seed_history(env: Env):
    """Two created submissions and a failed one; returns the failed one."""
    settled_at_once(env)
    submit(env, encounter_identifier="ENC-2998", patient_identifier="PAT-0917")
    submit(
        env,
        encounter_identifier="ENC-2999",
        encounter_type="first_consultation",
        patient_identifier="",
        patient_name="",
    )
    return submit(
        env,
        encounter_identifier="ENC-3000",
        fault={"kind": "503", "endpoint": "create", "count": 1},
    )


def seed_older(env: Env, count: int) -> None:
    """`count` created submissions from the day before, straight into the log."""
    from django.utils import timezone

    from intake.models import Interaction

    yesterday = timezone.now() - dt.timedelta(days=1)
    records = Interaction.objects.bulk_create(
        build_interaction(
            env.nurse,
            encounter_identifier=f"ENC-{2900 + i}",
            encounter_status="completed",
            encounter_type="outpatient",
            encounter_started_at=yesterday,
            time_zone=ZONE,
        )
        for i in range(count)
    )
    Interaction.objects.filter(pk__in=[r.pk for r in records]).update(
        created_at=yesterday
    )


def fill_valid(page: Page) -> None:
    page.get_by_label("Encounter identifier").fill("ENC-3001")
    page.get_by_label("Encounter status").select_option("in-progress")
    page.get_by_label("Encounter type").select_option("consultation")
    page.get_by_label("Started at").fill("2026-03-02T10:15")
    page.get_by_label("Patient identifier").fill("PAT-1042")
    page.get_by_label("Patient name").fill("Jane Example")


# Three fields in error; the first of them (the patient identifier) is not the
# first empty field (the title is), so focus on it is no accident. The end
# time is in the "More details" group, which the errors open.
INVALID_FIELDS = {
    "id_patient_identifier": [
        "Enter the patient identifier: Corti needs it when other patient "
        "details are given."
    ],
    "id_patient_birth_date": [
        "Enter the birth date as day-month-year, for example 23-04-1980."
    ],
    "id_encounter_ended_at": [
        "The end must not be before the start (2026-03-02 10:15 CET)."
    ],
}


def fill_invalid(page: Page) -> None:
    page.get_by_label("Encounter identifier").fill("ENC-3001")
    page.get_by_label("Encounter type").select_option("consultation")
    page.get_by_label("Encounter status").select_option("in-progress")
    page.get_by_label("Started at").fill("2026-03-02T10:15")
    page.get_by_label("Patient name").fill("Jane Example")
    page.get_by_label("Birth date").fill("31-02-1980")  # no such day
    open_more_details(page)
    page.get_by_label("Ended at").fill("2026-03-02T09:30")
    wait_for_htmx(page)  # live validation of each field has answered


def press_create(page: Page) -> None:
    page.get_by_role("button", name="Create interaction").click()
    page.locator("#intake-form .alert").wait_for()
    wait_for_htmx(page)


# --- the page states every check runs on ----------------------------------


def sign_in_page(page: Page, env: Env) -> None:
    page.goto(f"{env.site}/accounts/login/")


def sign_in_wrong_password(page: Page, env: Env) -> None:
    page.goto(f"{env.site}/accounts/login/")
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill("not-the-password")
    with page.expect_navigation():
        page.get_by_label("Password").press("Enter")
    expect(page.locator("#login-errors")).to_be_visible()


def sign_in_paused(page: Page, env: Env) -> None:
    env.settings.AXES_FAILURE_LIMIT = 2
    # The paused page is answered with 429 Too Many Requests.
    env.watch.expect_console_error(r"status of 429")
    page.goto(f"{env.site}/accounts/login/")
    for _ in range(3):
        page.get_by_label("Username").fill("nurse")
        page.get_by_label("Password").fill("not-the-password")
        with page.expect_navigation():
            page.get_by_label("Password").press("Enter")
        if page.get_by_role("heading", name="Sign-in paused").count():
            break
    expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()


def empty_form(page: Page, env: Env) -> None:
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/new/")
    expect(page.get_by_role("heading", name="New interaction")).to_be_visible()
    wait_for_htmx(page)


def form_with_errors(page: Page, env: Env) -> None:
    empty_form(page, env)
    fill_invalid(page)
    press_create(page)
    expect(page.locator("#intake-form .alert-error")).to_contain_text("Nothing has")


def form_repeated_hour(page: Page, env: Env) -> None:
    """A start the clocks show twice: the form asks which, beside the field."""
    empty_form(page, env)
    page.locator("#id_encounter_started_at").fill("2026-10-25T02:30")
    page.locator("#id_encounter_started_at").blur()
    expect(page.get_by_role("group", name="Started at: which 02:30?")).to_be_visible()
    wait_for_htmx(page)


def form_after_corti_failure(page: Page, env: Env) -> None:
    empty_form(page, env)
    fill_valid(page)
    wait_for_htmx(page)
    settled_at_once(env)
    env.corti.set_faults({"kind": "503", "endpoint": "create", "count": 1})
    press_create(page)
    expect(page.get_by_role("heading", name="Not created in Corti")).to_be_visible()


def interaction_list(page: Page, env: Env) -> None:
    """The first of two pages: a Retry button, and the links between pages."""
    seed_history(env)
    seed_older(env, 25)
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/")
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_be_visible()
    expect(page.get_by_role("navigation", name="Pages")).to_contain_text("Older")


def form_already_sent(page: Page, env: Env) -> None:
    """A sent form's address opened again: read-only, and a new intake link."""
    empty_form(page, env)
    form_url = page.url
    fill_valid(page)
    wait_for_htmx(page)
    page.get_by_role("button", name="Create interaction").click()
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"))
    page.goto(form_url)
    expect(
        page.get_by_role("heading", name="This form was already sent")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Start a new intake")).to_be_visible()


def form_reused(page: Page, env: Env) -> None:
    """The form, sent meanwhile from another tab, posted with other details."""
    from intake.fields import InteractionDetails
    from intake.services.interactions import interaction_submit

    empty_form(page, env)
    key = page.locator("input[name=submission_key]").input_value()
    interaction_submit(
        submission_key=uuid.UUID(key),
        submitted_by=env.nurse,
        details=InteractionDetails(
            encounter_identifier="ENC-3002",
            encounter_status="planned",
            encounter_type="outpatient",
            encounter_started_at=dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC),
            patient_identifier="PAT-2087",
        ),
    )
    fill_valid(page)
    press_create(page)
    expect(page.locator("#reused-notice")).to_contain_text(
        "This form was already used for ENC-3002 (PAT-2087)."
    )


def detail_unknown(page: Page, env: Env) -> None:
    """Corti's answer lost and Corti not searchable: the page checks by itself."""
    empty_form(page, env)
    fill_valid(page)
    wait_for_htmx(page)
    env.corti.set_faults(
        {"kind": "created-504", "endpoint": "create", "count": 1},
        {"kind": "503", "endpoint": "list"},
    )
    page.get_by_role("button", name="Create interaction").click()
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"))
    env.corti.set_faults()
    expect(page.get_by_role("heading", name="Checking with Corti…")).to_be_visible()
    expect(page.get_by_role("button", name="Check Corti now")).to_be_visible()


def detail_after_create(page: Page, env: Env) -> None:
    empty_form(page, env)
    fill_valid(page)
    wait_for_htmx(page)
    page.get_by_role("button", name="Create interaction").click()
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", name="Created in Corti")).to_be_visible()
    expect(page.get_by_role("heading", name="Calls to Corti")).to_be_visible()


def detail_with_calls(page: Page, env: Env) -> None:
    failed = seed_history(env)
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/{failed.pk}/")
    expect(page.get_by_role("heading", name="Calls to Corti")).to_be_visible()
    expect(page.locator("table tbody tr")).to_have_count(2)


def idle_warning(page: Page, env: Env) -> None:
    env.settings.INTAKE_SESSION_IDLE_TIMEOUT = 10
    env.settings.INTAKE_SESSION_WARNING = 9
    empty_form(page, env)
    warning = page.locator("#idle-warning")
    expect(warning).to_be_visible(timeout=5_000)
    expect(warning).to_contain_text("Still there?")


def as_admin(page: Page, env: Env, path: str) -> None:
    signed_in(page, env, env.chief)
    page.goto(f"{env.site}{path}")


def admin_changelist(page: Page, env: Env) -> None:
    seed_history(env)
    as_admin(page, env, "/admin/intake/interaction/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)


def admin_change(page: Page, env: Env) -> None:
    failed = seed_history(env)
    as_admin(page, env, f"/admin/intake/interaction/{failed.pk}/change/")
    expect(page.get_by_role("heading", name="View interaction")).to_be_visible()


def admin_change_with_its_life(page: Page, env: Env) -> None:
    """A created interaction changed elsewhere and recorded once: the admin's
    page with its changes and its recordings."""
    from django.utils import timezone

    from intake.models import Recording

    record = changed_elsewhere(env)
    now = timezone.now()
    Recording.objects.create(
        interaction=record,
        started_by=env.nurse,
        consent_at=now,
        consent_wording="The patient agreed to this consultation being recorded.",
        language="en",
        mode="facts",
        state=Recording.State.ENDED,
        accepted_at=now,
        finished_at=now,
        last_seen_at=now,
        seconds_recorded=65.0,
        tokens_issued=1,
    )
    as_admin(page, env, f"/admin/intake/interaction/{record.pk}/change/")
    expect(page.get_by_role("heading", name="Recordings")).to_be_visible()
    expect(page.get_by_role("heading", name="Changes")).to_be_visible()


def admin_history(page: Page, env: Env) -> None:
    failed = seed_history(env)
    as_admin(page, env, f"/admin/intake/interaction/{failed.pk}/history/")
    expect(
        page.get_by_role("heading", name=re.compile("^Change history"))
    ).to_be_visible()


def changed_elsewhere(env: Env):
    """A created interaction whose title another tool changed in Corti, read
    back: the page shows what was sent beside what Corti holds, and a change."""
    from intake.services.lifecycle import interaction_refresh
    from tests.support.corti import corti_item

    record = submit(env)
    corti_item(
        env.corti,
        "PATCH",
        record.interaction_id,
        {"encounter": {"title": "Follow-up: knee pain, right"}},
    )
    interaction_refresh(record=record)
    return record


def detail_in_corti_now(page: Page, env: Env) -> None:
    record = changed_elsewhere(env)
    signed_in(page, env, env.chief)
    page.goto(f"{env.site}/interactions/{record.pk}/")
    expect(page.get_by_role("heading", name="Changes")).to_be_visible()
    expect(page.get_by_role("button", name="End the encounter")).to_be_visible()
    expect(page.get_by_role("link", name="Delete in Corti…")).to_be_visible()


def end_with_errors(page: Page, env: Env) -> None:
    # The page with the time's error beside it comes back as a 400.
    env.watch.expect_console_error(r"status of 400 .*/end/")
    record = submit(env)
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/{record.pk}/")
    page.locator("#id_ended_at").fill("2026-03-01T08:00")
    page.get_by_role("button", name="End the encounter").click()
    expect(page.locator("#id_ended_at-errors")).to_contain_text("before the start")


def correction_form(page: Page, env: Env) -> None:
    record = changed_elsewhere(env)
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/{record.pk}/edit/")
    expect(
        page.get_by_role("button", name="Save the correction in Corti")
    ).to_be_visible()


def delete_confirmation(page: Page, env: Env) -> None:
    record = submit(env)
    signed_in(page, env, env.chief)
    page.goto(f"{env.site}/interactions/{record.pk}/delete/")
    expect(page.get_by_role("button", name="Delete it in Corti")).to_be_visible()


def my_day_page(page: Page, env: Env) -> None:
    submit(env)
    submit(env, encounter_identifier="ENC-3002", encounter_status="planned")
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/my-day/")
    expect(page.get_by_role("heading", name="My day")).to_be_visible()


def profile_errors(page: Page, env: Env) -> None:
    env.watch.expect_console_error(r"status of 400 .*/profile/")
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/profile/")
    page.get_by_label("Corti user ID").fill("me")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#id_corti_user_id-errors")).to_contain_text("valid UUID")


def people_page(page: Page, env: Env) -> None:
    signed_in(page, env, env.chief)
    page.goto(f"{env.site}/profiles/")
    expect(page.get_by_role("heading", name="People")).to_be_visible()


STATES: dict[str, Callable[[Page, Env], None]] = {
    "sign-in": sign_in_page,
    "sign-in-wrong-password": sign_in_wrong_password,
    "sign-in-paused": sign_in_paused,
    "form-empty": empty_form,
    "form-errors": form_with_errors,
    "form-repeated-hour": form_repeated_hour,
    "form-corti-failure": form_after_corti_failure,
    "list": interaction_list,
    "detail-after-create": detail_after_create,
    "detail-calls": detail_with_calls,
    "form-already-sent": form_already_sent,
    "form-reused": form_reused,
    "detail-unknown": detail_unknown,
    "idle-warning": idle_warning,
    "detail-in-corti-now": detail_in_corti_now,
    "my-day": my_day_page,
    "profile-errors": profile_errors,
    "people": people_page,
    "end-errors": end_with_errors,
    "correction-form": correction_form,
    "delete-confirmation": delete_confirmation,
    "admin-changelist": admin_changelist,
    "admin-change": admin_change,
    "admin-change-recorded": admin_change_with_its_life,
    "admin-history": admin_history,
}


def bug(reason: str) -> pytest.MarkDecorator:
    """A known failure of the dashboard: strict, and only for the assertion.

    A page state that cannot be reached raises RuntimeError, which is never
    taken for the known bug.
    """
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


def cases(bugs: dict[tuple[str, str], str]) -> list:
    """Every state at every width; the known bugs marked strict xfail."""
    params = []
    for state in STATES:
        for viewport in VIEWPORTS:
            reason = bugs.get((state, viewport))
            marks = [bug(reason)] if reason else []
            params.append(
                pytest.param(state, viewport, id=f"{state}-{viewport}", marks=marks)
            )
    return params


def at_both_widths(*states: str) -> list[tuple[str, str]]:
    return [(state, viewport) for state in states for viewport in VIEWPORTS]


def both(*states: str, reason: str) -> dict[tuple[str, str], str]:
    return dict.fromkeys(at_both_widths(*states), reason)


# --- axe-core -------------------------------------------------------------


def axe_audit(page: Page, watch: PageWatch) -> list[dict]:
    """axe-core's violations of every impact on the page as it is now.

    While it runs, axe tries to add a <style> element, which the page's CSP
    rightly blocks: those reports are axe's own doing and are dropped, nothing
    else is (never one whose source is the site's own script).
    """
    csp_before, console_before = len(watch.csp_violations), len(watch.console_errors)
    found = axe_violations(page, impacts=ALL_IMPACTS)
    page.evaluate("() => new Promise(done => setTimeout(done, 50))")
    watch.forgive_injected_styles(csp_since=csp_before, console_since=console_before)
    return found


# Every visible interactive element smaller than MIN_TARGET in either
# direction, unless it is a link inside a sentence (the inline exception of
# SC 2.5.8). Not rendered, visually hidden (1 px clip) and off-screen elements
# (the skip link before it takes focus) are no targets.
SMALL_TARGETS_JS = """
(min) => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, '
    + 'summary, [tabindex]';
  const interactive = 'a[href], button, input, select, textarea, summary';
  const blockOf = (el) => {
    let node = el.parentElement;
    while (node && getComputedStyle(node).display.startsWith('inline')) {
      node = node.parentElement;
    }
    return node;
  };
  const inSentence = (el) => {
    if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
    const block = blockOf(el);
    if (!block) return false;
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    let text = '';
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest(interactive)) text += node.textContent;
    }
    return /\\p{L}{2,}\\P{L}+\\p{L}{2,}/u.test(text);
  };
  const offenders = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.getClientRects().length) continue;
    if (getComputedStyle(el).visibility !== 'visible') continue;
    if (el.closest('[inert], [aria-hidden=true]')) continue;
    const r = el.getBoundingClientRect();
    if (r.width <= 1 && r.height <= 1) continue;
    if (r.right + scrollX <= 0 || r.bottom + scrollY <= 0) continue;
    if (r.width >= min && r.height >= min) continue;
    if (inSentence(el)) continue;
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + [...el.classList].map((c) => '.' + c).join('');
    const label = (el.getAttribute('aria-label') || el.textContent || el.value || '')
      .replace(/\\s+/g, ' ').trim().slice(0, 40);
    offenders.push(`${name} "${label}" ${+r.width.toFixed(1)}x${+r.height.toFixed(1)}`);
  }
  return offenders;
}
"""

# Every check of one page at one width measures the same page: each state is
# reached and measured once per run, and each test asserts its own part.
_AUDITS: dict[tuple[str, str], dict[str, Any]] = {}


@pytest.fixture
def audit(open_page, env) -> Callable[[str, str], dict[str, Any]]:
    def measure(state: str, viewport: str) -> dict[str, Any]:
        key = (state, viewport)
        if key not in _AUDITS:
            page = open_page(viewport)
            try:
                STATES[state](page, env)
            except Exception as exc:
                raise RuntimeError(
                    f"could not open {state} at {viewport} width"
                ) from exc
            _AUDITS[key] = {
                "axe": axe_audit(page, env.watch),
                "zone_shown": page.get_by_text(ZONE).filter(visible=True).count() > 0,
                "small_targets": page.evaluate(SMALL_TARGETS_JS, MIN_TARGET),
            }
        return _AUDITS[key]

    return measure


AXE_BUGS: dict = {}


@pytest.mark.parametrize(("state", "viewport"), cases(AXE_BUGS))
def test_page_has_no_serious_or_critical_axe_violations(state, viewport, audit):
    found = audit(state, viewport)["axe"]

    counts = {
        impact: sum(1 for v in found if v["impact"] == impact) for impact in ALL_IMPACTS
    }
    print(f"axe {state} {viewport}: {counts} {[v['id'] for v in found]}")
    blocking = [v for v in found if v["impact"] in BLOCKING_IMPACTS]
    assert blocking == [], pformat(blocking)


# The rules each known bug breaks: a page with a known bug must not break more.
KNOWN_AXE_RULES: dict = {}


@pytest.mark.parametrize(("state", "viewport"), cases({}))
def test_page_breaks_no_axe_rule_beyond_its_known_bugs(state, viewport, audit):
    found = audit(state, viewport)["axe"]

    blocking = [v for v in found if v["impact"] in BLOCKING_IMPACTS]
    known = KNOWN_AXE_RULES.get((state, viewport), set())
    new = [v for v in blocking if v["id"] not in known]
    assert new == [], pformat(new)


# --- the clinic's time zone -------------------------------------------------


TIME_ZONE_BUGS: dict = {}


@pytest.mark.parametrize(("state", "viewport"), cases(TIME_ZONE_BUGS))
def test_page_names_the_clinic_time_zone(state, viewport, audit):
    zone_shown = audit(state, viewport)["zone_shown"]

    assert zone_shown, f"{ZONE} is not in the page's visible text"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_form_names_the_time_zone_beside_each_time_field(viewport, open_page, env):
    page = open_page(viewport)
    empty_form(page, env)
    open_more_details(page)

    for label in ("Started at", "Ended at"):
        field = page.get_by_label(label)
        help_text = page.locator(".field", has=field).locator(".help")
        expect(help_text).to_be_visible()
        expect(help_text).to_contain_text(ZONE)
        expect(field).to_have_accessible_description(re.compile(re.escape(ZONE)))


# --- target size ------------------------------------------------------------

PASSWORD_LINK = (
    'the header\'s "Password" link (.account a) is 74.7x23.2: a flex item with '
    "no min-height"
)
DETAIL_LINKS = (
    'the "All interactions" and "New interaction" links at the foot are 19 px '
    'high and not in a sentence (" · " between them); each <summary> ("The JSON '
    'sent to Corti", "Problem details as Corti sent them") is 23.2 px high'
)
ADMIN_TARGETS = (
    'Django admin\'s own targets: "Log out" button 53x14, "View site" and '
    '"Change password" 16 px high at phone width, breadcrumb links 16 px, the '
    "navigation sidebar's links 14-15 px, its filter input #nav-filter 21 px "
    "and its toggle #toggle-nav-sidebar 23 px wide (desktop)"
)
TARGET_BUGS: dict = {}


@pytest.mark.parametrize(("state", "viewport"), cases(TARGET_BUGS))
def test_interactive_targets_are_at_least_24_by_24_pixels(state, viewport, audit):
    offenders = audit(state, viewport)["small_targets"]
    print(f"targets {state} {viewport}: {offenders}")

    assert offenders == [], pformat(offenders)


# The small targets each known bug stands for (patterns on the offenders'
# descriptions).
KNOWN_SMALL_TARGETS: dict = {}


@pytest.mark.parametrize(("state", "viewport"), cases({}))
def test_no_target_is_small_beyond_the_known_bugs(state, viewport, audit):
    offenders = audit(state, viewport)["small_targets"]

    known = KNOWN_SMALL_TARGETS.get((state, viewport), [])
    new = [o for o in offenders if not any(re.match(p, o) for p in known)]
    assert new == [], pformat(new)


# --- errors linked to their fields, focus on the first ----------------------

LINKED_ERRORS_JS = """
(scope) => [...document.querySelectorAll(`${scope} [aria-invalid=true]`)].map((el) => {
  const ids = (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
  const described = ids.map((id) => document.getElementById(id))
    .filter(Boolean).map((node) => node.textContent).join(' ');
  const field = el.closest('.field');
  const errors = field ? [...field.querySelectorAll('.error')] : [];
  return {
    id: el.id,
    errors: errors.map((e) => e.textContent.replace(/\\s+/g, ' ').trim()),
    described: described.replace(/\\s+/g, ' ').trim(),
  };
})
"""


def assert_errors_linked(page: Page, scope: str, expected: dict[str, list[str]]):
    """Exactly the expected fields are invalid, each described by its errors."""
    invalid = page.evaluate(LINKED_ERRORS_JS, scope)
    assert {item["id"]: item["errors"] for item in invalid} == expected
    for item in invalid:
        for error in item["errors"]:
            assert error in item["described"], (
                f"#{item['id']} is not described by its error {error!r}: "
                f"aria-describedby reads {item['described']!r}"
            )
            expect(page.locator(f"#{item['id']}")).to_have_accessible_description(
                re.compile(re.escape(error))
            )


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_errors_after_a_full_page_submit_are_linked_and_the_first_has_focus(
    viewport, open_page, env
):
    page = open_page(viewport)
    empty_form(page, env)
    fill_invalid(page)
    page.get_by_label("Pronouns").focus()

    # A plain form submission (as without htmx): the whole page comes back.
    with page.expect_navigation():
        page.evaluate("document.getElementById('intake-form').submit()")

    expect(page.locator("#intake-form .alert-error")).to_be_visible()
    assert_errors_linked(page, "#intake-form", INVALID_FIELDS)
    expect(page.locator("#id_patient_identifier")).to_be_focused(timeout=FOCUS_TIMEOUT)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_errors_after_an_htmx_submit_are_linked_and_the_first_has_focus(
    viewport, open_page, env
):
    page = open_page(viewport)
    empty_form(page, env)
    fill_invalid(page)
    page.evaluate("window.__samePage = true")

    press_create(page)

    assert page.evaluate("window.__samePage === true"), "the page was reloaded"
    assert_errors_linked(page, "#intake-form", INVALID_FIELDS)
    expect(page.locator("#id_patient_identifier")).to_be_focused(timeout=FOCUS_TIMEOUT)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_cortis_field_messages_are_linked_and_the_first_has_focus(
    viewport, open_page, env
):
    page = open_page(viewport)
    empty_form(page, env)
    fill_valid(page)
    wait_for_htmx(page)
    env.corti.set_faults(
        {
            "kind": "400",
            "endpoint": "create",
            "count": 1,
            "validation_errors": [
                {"patient.birthDate": "is implausible"},
                {"encounter.period.endedAt": "is too late"},
            ],
        }
    )

    press_create(page)

    expect(page.get_by_role("heading", name="Not created in Corti")).to_be_visible()
    assert_errors_linked(
        page,
        "#intake-form",
        {
            "id_encounter_ended_at": ["Corti: is too late"],
            "id_patient_birth_date": ["Corti: is implausible"],
        },
    )
    # The birth date comes before the end time (in "More details"), which
    # the error opened.
    expect(page.locator("#id_patient_birth_date")).to_be_focused(timeout=FOCUS_TIMEOUT)
    expect(page.locator("#more-details")).to_have_attribute("open", "")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_wrong_password_error_is_linked_to_both_fields_and_has_focus(
    viewport, open_page, env
):
    page = open_page(viewport)

    sign_in_wrong_password(page, env)

    errors = page.locator("#login-errors")
    expect(errors).to_have_text(WRONG_CREDENTIALS)
    expect(errors).to_have_attribute("role", "alert")
    for label in ("Username", "Password"):
        field = page.get_by_label(label)
        ids = (field.get_attribute("aria-describedby") or "").split()
        assert "login-errors" in ids, f"{label}: aria-describedby={ids}"
        expect(field).to_have_accessible_description(
            re.compile(re.escape(WRONG_CREDENTIALS))
        )
    expect(errors).to_be_focused(timeout=FOCUS_TIMEOUT)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_missing_password_is_linked_to_its_field_which_has_focus(
    viewport, open_page, env
):
    page = open_page(viewport)
    page.goto(f"{env.site}/accounts/login/")
    page.get_by_label("Username").fill("nurse")

    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()

    assert_errors_linked(
        page, "main form", {"id_password": ["This field is required."]}
    )
    expect(page.get_by_label("Password")).to_be_focused(timeout=FOCUS_TIMEOUT)
