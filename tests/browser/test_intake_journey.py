"""A clinician's whole journey through the dashboard, in a real browser.

Sign in; fill the intake form with the keyboard only (the tab order follows
the visual order, dropdowns and date pickers work from the keyboard); submit;
see the websocket URL and copy it; search for it; see live per-field
validation and an error from Corti beside the right field. Every page stays
free of console errors, uncaught exceptions and CSP violations (the `context`
fixture fails the test otherwise; each test also checks it explicitly).

After sign-in the form is driven through `page.keyboard` alone: Tab, typing,
typeahead and arrows on selects, digits typed segment by segment into the
date-time inputs and the birth date into its one box, Enter to submit. A
typical intake's key presses are counted and pinned.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import expect

from intake.models import Interaction
from tests.support.browser import field_values, sign_in
from tests.support.corti import create_requests
from tests.support.factories import make_interaction

pytestmark = pytest.mark.django_db(transaction=True)

DETAIL_URL = re.compile(r"/interactions/([0-9a-f-]{36})/$")
SUBMIT = "button:Create interaction"
ASSIGNED_USER = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
WAIT_MS = 10_000

# What the clinician types, field by field, as keystrokes. A string is typed;
# ("press", key) presses one key. Date-times (en-US: mm/dd/yyyy, hh:mm AM/PM)
# are typed segment by segment: month, day, hour and minutes advance by
# themselves once two digits are in; Tab moves on from the year.
KEYSTROKES: dict[str, list] = {
    "id_encounter_identifier": ["ENC-KB-1"],
    "id_encounter_title": ["Knee pain"],
    # Typeahead on a closed select: "In progress".
    "id_encounter_status": ["in"],
    # Arrow on a closed select: the first real choice, "First consultation".
    "id_encounter_type": [("press", "ArrowDown")],
    "id_encounter_started_at": ["01152026", ("press", "Tab"), "0200P"],
    "id_encounter_ended_at": ["01152026", ("press", "Tab"), "0245P"],
    "id_assigned_user_id": [ASSIGNED_USER],
    "id_patient_identifier": ["PAT-KB-7"],
    "id_patient_name": ["Ada Lovelace"],
    # Typeahead: "Female".
    "id_patient_gender": ["f"],
    # In the clinic's order (INTAKE_DATE_ORDER=DMY), separators and all.
    "id_patient_birth_date": ["23-04-1980"],
    "id_patient_pronouns": ["she/her"],
    # The group of rarely used fields opens with Enter on its summary.
    "more-details-summary": [("press", "Enter")],
}
# What the form holds once those keys were pressed.
EXPECTED_VALUES = {
    "id_encounter_identifier": "ENC-KB-1",
    "id_encounter_type": "first_consultation",
    "id_encounter_status": "in-progress",
    "id_encounter_started_at": "2026-01-15T14:00",
    "id_encounter_title": "Knee pain",
    "id_patient_identifier": "PAT-KB-7",
    "id_patient_name": "Ada Lovelace",
    "id_patient_birth_date": "23-04-1980",
    "id_patient_gender": "female",
    "id_patient_pronouns": "she/her",
    "id_encounter_ended_at": "2026-01-15T14:45",
    "id_assigned_user_id": ASSIGNED_USER,
}
BIRTH_DATE_PICK = "id_patient_birth_date_pick"
MORE_DETAILS = "more-details-summary"
# The form's controls in reading order: the encounter as the clinician thinks
# of it (identifier, type, status, start, title), the patient (the birth
# date's calendar button beside its box), then the group of rarely used fields.
FORM_ORDER = [
    *list(EXPECTED_VALUES)[:8],
    BIRTH_DATE_PICK,
    *list(EXPECTED_VALUES)[8:10],
    MORE_DETAILS,
    *list(EXPECTED_VALUES)[10:],
    SUBMIT,
]

_ACTIVE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "body";
  const key = el.id || el.tagName.toLowerCase() + ":" + el.textContent.trim();
  return el.closest("#intake-form") ? key : "outside:" + key;
}"""

_FORM_CONTROLS = """() => Array.from(document.querySelectorAll(
    "#intake-form input, #intake-form select, #intake-form textarea, "
    + "#intake-form button, #intake-form a[href], #intake-form [tabindex], "
    + "#intake-form summary"))
  .filter(el => el.type !== "hidden" && !el.disabled && el.tabIndex >= 0
                && el.getClientRects().length > 0)
  .map(el => {
    const r = el.getBoundingClientRect();
    return {
      key: el.id || el.tagName.toLowerCase() + ":" + el.textContent.trim(),
      top: r.top + window.scrollY, left: r.left + window.scrollX,
    };
  })"""


# --- helpers ---------------------------------------------------------------


def active(page) -> str:
    """The focused element: its id, or tag and text; "outside:" off the form."""
    return page.evaluate(_ACTIVE)


def tab_out(page, *, max_presses: int = 8) -> str:
    """Press Tab until focus leaves the current control (date inputs have
    several stops inside); the newly focused control."""
    start = active(page)
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        now = active(page)
        if now != start:
            return now
    raise AssertionError(f"Tab never left {start}")


def tab_to(page, target: str, *, max_controls: int = 24) -> None:
    """Tab, control by control, until `target` has the focus."""
    for _ in range(max_controls):
        if active(page) == target:
            return
        tab_out(page)
    raise AssertionError(f"Tab never reached {target}")


def press_keys(page, strokes: list) -> None:
    for stroke in strokes:
        if isinstance(stroke, tuple):
            page.keyboard.press(stroke[1])
        else:
            page.keyboard.type(stroke)


def fill_by_keyboard(page, keystrokes: dict[str, list] = KEYSTROKES) -> list[str]:
    """Type into every control, Tab to the next; the controls focused in turn.

    Starts where the form puts the cursor (its first empty field) and stops on
    the submit button.
    """
    order = [active(page)]
    while order[-1] != SUBMIT:
        press_keys(page, keystrokes.get(order[-1], []))
        order.append(tab_out(page))
        assert len(order) <= 2 * len(FORM_ORDER), f"lost in the tab order: {order}"
    return order


def visual_order(controls: list[dict], *, tolerance: float = 8.0) -> list[str]:
    """Controls read row by row (tops within `tolerance` px share a row), each
    row from left to right."""
    rows: list[list[dict]] = []
    for control in sorted(controls, key=lambda c: c["top"]):
        if rows and abs(control["top"] - rows[-1][0]["top"]) <= tolerance:
            rows[-1].append(control)
        else:
            rows.append([control])
    return [c["key"] for row in rows for c in sorted(row, key=lambda c: c["left"])]


def open_form(page, site: str) -> None:
    """Sign in; the dashboard opens on a fresh intake form."""
    sign_in(page, site, "nurse")
    page.wait_for_selector("#intake-form")
    expect(page.locator("#id_encounter_identifier")).to_be_focused(timeout=WAIT_MS)


def other_record(user, **fields) -> Interaction:
    """An interaction created earlier for another encounter."""
    return make_interaction(
        user,
        **{
            "encounter_identifier": "ENC-OTHER",
            "encounter_started_at": dt.datetime(2026, 1, 14, 9, 0, tzinfo=dt.UTC),
            "time_zone": "UTC",
            "websocket_url": "ws://example.invalid/other",
            **fields,
        },
    )


# --- the journey -----------------------------------------------------------


def test_clinician_fills_the_form_by_keyboard_in_visual_order_and_creates_it(
    page, site, corti, watch, browser_clinician
):
    open_form(page, site)

    order = fill_by_keyboard(page)

    # Each control is met once, in the DOM's order and in the visual order.
    tab_order = [key for i, key in enumerate(order) if i == 0 or key != order[i - 1]]
    controls = page.evaluate(_FORM_CONTROLS)
    assert tab_order == FORM_ORDER
    assert tab_order == [c["key"] for c in controls]
    assert tab_order == visual_order(controls)
    assert field_values(page, EXPECTED_VALUES) == EXPECTED_VALUES

    page.keyboard.press("Enter")
    page.wait_for_url(DETAIL_URL, timeout=WAIT_MS)

    record = Interaction.objects.get()
    assert record.outcome == Interaction.Outcome.CREATED
    assert create_requests(corti) == 1
    details = page.locator("section[aria-labelledby=sent-heading] dl")
    sent = dict(
        zip(
            details.locator("dt").all_inner_texts(),
            details.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert sent["Encounter identifier"] == "ENC-KB-1"
    assert sent["Title"] == "Knee pain"
    assert sent["Encounter status"].startswith("In progress")
    assert sent["Encounter type"].startswith("First consultation")
    assert sent["Started at"].startswith("2026-01-15 14:00")
    assert sent["Ended at"].startswith("2026-01-15 14:45")
    assert sent["Assigned user ID"] == ASSIGNED_USER
    assert sent["Patient identifier"] == "PAT-KB-7"
    assert sent["Patient name"] == "Ada Lovelace"
    assert sent["Gender"] == "Female"
    assert sent["Birth date"] == "1980-04-23"
    assert sent["Pronouns"] == "she/her"

    # The websocket URL Corti gave is shown, and the copy button copies it.
    websocket_url = page.locator("#websocket-url").inner_text().strip()
    assert websocket_url == record.websocket_url
    assert websocket_url == corti.state()["interactions"][0]["websocketUrl"]
    assert websocket_url.startswith("ws")
    page.get_by_role("button", name="Copy URL").focus()
    page.keyboard.press("Enter")
    page.locator(".copy-status").filter(has_text="Copied to the clipboard.").wait_for(
        timeout=WAIT_MS
    )
    assert page.evaluate("navigator.clipboard.readText()") == websocket_url

    # The list finds it as the clinician types, without reloading the page.
    other_record(browser_clinician, patient_identifier="PAT-OTHER-1")
    other_record(browser_clinician, patient_identifier="PAT-OTHER-2")
    page.get_by_role("link", name="Interactions", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/interactions/$"))
    assert page.locator(".result-count").inner_text() == "3 submissions."
    page.evaluate("window.__samePage = true")
    page.locator("#id_q").focus()
    page.keyboard.type("PAT-KB-7")
    page.locator(".result-count").filter(has_text="1 submission matches.").wait_for(
        timeout=WAIT_MS
    )
    # Each keystroke may have started a search: let the last answer land before
    # using the row, or a late swap replaces the link that has the focus.
    page.wait_for_load_state("networkidle")
    expect(page.locator("#id_q")).to_have_value("PAT-KB-7")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1
    assert str(record.interaction_id) in rows.first.inner_text()
    assert "PAT-KB-7" in rows.first.inner_text()
    assert page.evaluate("window.__samePage === true"), "the page was reloaded"
    assert "q=PAT-KB-7" in page.url

    # And the row leads back to the interaction and its websocket URL.
    link = rows.first.get_by_role("link")
    link.focus()
    expect(link).to_be_focused()
    with page.expect_navigation(url=DETAIL_URL, timeout=WAIT_MS):
        page.keyboard.press("Enter")
    assert page.locator("#websocket-url").inner_text().strip() == websocket_url
    watch.assert_clean()


@pytest.mark.parametrize("how", ["double Enter", "double click"])
def test_submitting_twice_in_a_row_creates_exactly_one_interaction(
    page, site, corti, watch, browser_clinician, how
):
    open_form(page, site)
    strokes = {
        "id_encounter_identifier": ["ENC-TWICE"],
        "id_encounter_status": ["p"],
        "id_encounter_type": ["e"],
    }
    for name in ("id_encounter_identifier", "id_encounter_status", "id_encounter_type"):
        tab_to(page, name)
        press_keys(page, strokes[name])

    if how == "double Enter":
        tab_to(page, "id_patient_pronouns")
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")
    else:
        page.get_by_role("button", name="Create interaction").dblclick()
    page.wait_for_url(DETAIL_URL, timeout=WAIT_MS)

    assert create_requests(corti) == 1
    assert len(corti.state()["interactions"]) == 1
    assert Interaction.objects.count() == 1
    assert Interaction.objects.get().outcome == Interaction.Outcome.CREATED
    watch.assert_clean()


# --- validation ------------------------------------------------------------


def described_texts(page, field_id: str) -> str:
    """The text of every element the field's aria-describedby names."""
    return page.evaluate(
        """id => (document.getElementById(id).getAttribute("aria-describedby") || "")
            .split(/\\s+/).filter(Boolean)
            .map(ref => (document.getElementById(ref) || {}).textContent || "")
            .join("\\n")""",
        field_id,
    )


def type_invalid_assigned_user(page) -> None:
    tab_to(page, MORE_DETAILS)
    page.keyboard.press("Enter")
    tab_to(page, "id_assigned_user_id")
    page.keyboard.type("not-a-uuid")
    page.keyboard.press("Tab")
    page.locator("#id_assigned_user_id-errors .error").wait_for(timeout=WAIT_MS)


def test_a_field_is_checked_live_and_its_error_shown_beside_it(
    page, site, corti, watch, browser_clinician
):
    open_form(page, site)
    form_url = page.url

    type_invalid_assigned_user(page)

    message = "Enter a valid UUID, like f47ac10b-58cc-4372-a567-0e02b2c3d479."
    errors = page.locator("#id_assigned_user_id-errors")
    assert errors.inner_text().strip() == message
    # Beside the field: in its own block, and named by its aria-describedby.
    field = page.locator(".field", has=page.locator("#id_assigned_user_id"))
    assert field.locator("#id_assigned_user_id-errors").count() == 1
    assert message in described_texts(page, "id_assigned_user_id")
    # Only that field is marked, nothing was submitted and focus moved on.
    assert page.locator("#intake-form .field-errors .error").count() == 1
    assert active(page) == SUBMIT
    assert page.url == form_url
    assert page.locator("#intake-form [role=alert]").count() == 0
    assert create_requests(corti) == 0
    assert Interaction.objects.count() == 0

    # Corrected, the message goes away as live.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type(ASSIGNED_USER)
    page.keyboard.press("Tab")
    page.locator("#id_assigned_user_id-errors .error").wait_for(
        state="detached", timeout=WAIT_MS
    )
    assert message not in described_texts(page, "id_assigned_user_id")
    watch.assert_clean()


def test_a_field_found_invalid_live_is_marked_aria_invalid(
    page, site, corti, watch, browser_clinician
):
    open_form(page, site)

    type_invalid_assigned_user(page)

    field = page.locator("#id_assigned_user_id")
    expect(field).to_have_attribute("aria-invalid", "true")

    # Corrected, it is marked valid again.
    field.fill("f47ac10b-58cc-4372-a567-0e02b2c3d479")
    field.press("Tab")
    expect(field).not_to_have_attribute("aria-invalid", "true")
    watch.assert_clean()


def test_corti_rejecting_a_field_shows_its_message_beside_that_field(
    page, site, corti, watch, browser_clinician
):
    corti.set_faults(
        {
            "kind": "400",
            "endpoint": "create",
            "count": 1,
            "validation_errors": [{"encounter.title": "is too long for this tenant"}],
        }
    )
    open_form(page, site)
    fill_by_keyboard(page)

    page.keyboard.press("Enter")
    errors = page.locator("#id_encounter_title-errors")
    errors.locator(".error").wait_for(timeout=WAIT_MS)

    assert errors.inner_text().strip() == "Corti: is too long for this tenant"
    assert "Corti: is too long for this tenant" in described_texts(
        page, "id_encounter_title"
    )
    # The only field marked; the others carry no message.
    assert page.locator("#intake-form .field-errors .error").count() == 1
    assert page.locator("#id_encounter_title").get_attribute("aria-invalid") == "true"
    assert (
        page.locator("#intake-form [role=alert]")
        .inner_text()
        .startswith("Not created in Corti")
    )
    # What was typed is all still there, and the cursor is on the field in error.
    assert field_values(page, EXPECTED_VALUES) == EXPECTED_VALUES
    expect(page.locator("#id_encounter_title")).to_be_focused(timeout=WAIT_MS)
    assert "/interactions/new/" in page.url
    assert create_requests(corti) == 1
    assert corti.state()["interactions"] == []
    assert Interaction.objects.get().outcome == Interaction.Outcome.FAILED
    watch.assert_clean()


def test_leaving_the_search_field_does_not_search_again(
    page, site, corti, watch, browser_clinician
):
    # Leaving the field fires "change"; a second search then would swap the
    # results under a keyboard user on the way to them, losing their focus.
    other_record(browser_clinician, patient_identifier="PAT-TAB-1")
    other_record(browser_clinician, patient_identifier="PAT-TAB-2")
    sign_in(page, site, "nurse", next_path="/interactions/")
    page.locator("#id_q").focus()
    page.keyboard.type("PAT-TAB-1")
    page.locator(".result-count").filter(has_text="1 submission matches.").wait_for(
        timeout=WAIT_MS
    )
    page.wait_for_load_state("networkidle")
    searches: list[str] = []
    page.on(
        "request",
        lambda request: (
            searches.append(request.url) if "/interactions/?" in request.url else None
        ),
    )

    page.keyboard.press("Tab")
    page.wait_for_timeout(800)  # longer than the search's 300 ms delay

    assert searches == []
    expect(page.locator("#id_status")).to_be_focused()

    # A filter still searches at once.
    page.keyboard.press("ArrowDown")
    expect(page).to_have_url(re.compile(r"[?&]status=[a-z]"), timeout=WAIT_MS)
    page.wait_for_load_state("networkidle")
    assert len(searches) == 1
    watch.assert_clean()


# --- the typical intake, counted ---------------------------------------------

# A typical intake: the encounter's identifier, type and status, the patient's
# identifier, name and birth date; the start time keeps its default (now).
TYPICAL_KEYSTROKES: dict[str, list] = {
    "id_encounter_identifier": ["ENC-FAST-1"],
    # Typeahead: "First consultation", "In progress".
    "id_encounter_type": ["f"],
    "id_encounter_status": ["in"],
    "id_patient_identifier": ["PAT-FAST-7"],
    "id_patient_name": ["Ada Lovelace"],
    "id_patient_birth_date": ["23041980"],
}


@dataclass
class KeyCount:
    """Key presses: every one (a typed character is one), and the Tabs."""

    keys: int = 0
    tabs: int = 0
    tabs_from_type: int = 0
    path: list[str] = field(default_factory=list)


def typical_intake_by_keyboard(page, strokes: dict[str, list]) -> KeyCount:
    """Fill `strokes` from where the form puts the cursor, Tab onwards (never
    back), reach the button and press Enter; every key press counted."""
    count = KeyCount()
    left = dict(strokes)
    since_type: int | None = None
    while True:
        here = active(page)
        count.path.append(here)
        if here == SUBMIT and not left:
            page.keyboard.press("Enter")
            count.keys += 1
            return count
        for stroke in left.pop(here, []):
            if isinstance(stroke, tuple):
                page.keyboard.press(stroke[1])
                count.keys += 1
            else:
                page.keyboard.type(stroke)
                count.keys += len(stroke)
        if here == "id_encounter_type":
            since_type = count.tabs
        page.keyboard.press("Tab")
        count.keys += 1
        count.tabs += 1
        if since_type is not None and active(page) == SUBMIT:
            count.tabs_from_type = count.tabs - since_type
        assert count.tabs <= 60, f"lost in the tab order: {count.path}"


# Measured with this helper in headless Debian chromium, en-US. Before the
# reordering (title between identifier and status, end time and assigned
# user among the encounter fields, a native date input for the birth date):
# 69 keys, 25 of them Tabs, 22 from the encounter type to the button.
# Of today's Tabs, 7 cross the start time (a date-time input stops at each
# part) and 5 lead from the birth date past its calendar button, gender,
# pronouns and the closed "More details" to the button.
TYPICAL_KEYS = 62
TYPICAL_TABS = 18
TYPICAL_TABS_FROM_TYPE = 17
TYPICAL_PATH = [
    "id_encounter_identifier",
    "id_encounter_type",
    "id_encounter_status",
    "id_encounter_started_at",
    "id_encounter_title",
    "id_patient_identifier",
    "id_patient_name",
    "id_patient_birth_date",
    BIRTH_DATE_PICK,
    "id_patient_gender",
    "id_patient_pronouns",
    MORE_DETAILS,
    SUBMIT,
]


def test_a_typical_intake_by_keyboard_takes_the_counted_presses(
    page, site, corti, watch, browser_clinician
):
    open_form(page, site)

    count = typical_intake_by_keyboard(page, TYPICAL_KEYSTROKES)
    page.wait_for_url(DETAIL_URL, timeout=WAIT_MS)

    print(f"typical intake: {count}")
    typed = sum(len(s) for strokes in TYPICAL_KEYSTROKES.values() for s in strokes)
    assert count.keys == typed + count.tabs + 1  # and one Enter on the button
    assert (count.keys, count.tabs, count.tabs_from_type) == (
        TYPICAL_KEYS,
        TYPICAL_TABS,
        TYPICAL_TABS_FROM_TYPE,
    )
    # Nothing a typical intake leaves alone is met on the way.
    met = [key for i, key in enumerate(count.path) if key not in count.path[:i]]
    assert met == TYPICAL_PATH
    record = Interaction.objects.get()
    assert record.outcome == Interaction.Outcome.CREATED
    assert record.patient_birth_date == dt.date(1980, 4, 23)
    assert (record.encounter_type, record.encounter_status) == (
        "first_consultation",
        "in-progress",
    )
    watch.assert_clean()


def test_the_birth_date_calendar_opens_near_a_plausible_year_and_writes_back(
    page, site, corti, watch, browser_clinician
):
    open_form(page, site)
    text = page.locator("#id_patient_birth_date")
    picker = page.locator("#id_patient_birth_date_picker")
    button = page.locator(f"#{BIRTH_DATE_PICK}")
    expect(button).to_be_visible()
    expect(button).to_have_accessible_name("Pick a date from a calendar")

    # Nothing typed: the calendar opens about 40 years back, not at today.
    button.focus()
    page.keyboard.press("Enter")
    start = picker.get_attribute("data-start")
    assert picker.input_value() == start
    assert dt.date.fromisoformat(start).year == dt.date.today().year - 40
    page.keyboard.press("Escape")
    assert text.input_value() == ""

    # A typed date: it opens there.
    text.fill("05.06.1990")
    button.focus()
    page.keyboard.press("Enter")
    assert picker.input_value() == "1990-06-05"
    page.keyboard.press("Escape")

    # A pick is written the clinic's way and checked live like typing (one
    # check, of the box: the calendar's own change goes no further).
    checks: list[str] = []
    page.on(
        "request",
        lambda r: checks.append(r.post_data or "") if "/validate/" in r.url else None,
    )
    picker.evaluate(
        """el => { el.value = "1975-12-01";
                   el.dispatchEvent(new Event("change", {bubbles: true})); }"""
    )
    expect(text).to_have_value("01-12-1975")
    expect(text).to_be_focused()
    page.wait_for_load_state("networkidle")
    assert len(checks) == 1
    assert "patient_birth_date=01-12-1975" in checks[0]
    assert page.locator("#id_patient_birth_date-errors .error").count() == 0
    watch.assert_clean()


def test_choosing_an_ended_status_opens_the_group_with_the_end_time(
    page, site, corti, watch, browser_clinician
):
    open_form(page, site)
    more = page.locator("#more-details")
    expect(more).not_to_have_attribute("open", "")
    expect(page.locator("#id_encounter_ended_at")).to_be_hidden()

    tab_to(page, "id_encounter_status")
    page.keyboard.type("co")  # "Completed"

    expect(more).to_have_attribute("open", "")
    expect(page.locator("#id_encounter_ended_at")).to_be_visible()
    assert active(page) == "id_encounter_status"
    watch.assert_clean()
