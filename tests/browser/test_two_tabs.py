"""One intake form open in two tabs: the second patient is never dropped silently.

A clinician opens the form, then the same address in a second tab (a
duplicated tab, a bookmark). Tab 1 sends Anna Berg's encounter; tab 2, sent
next with Bo Carlsen's, must neither overwrite Anna's record nor vanish: the
answer says the form was already used and for whom, and gives back everything
typed in a new form (new key, in the address bar too), which then creates
Bo's interaction on its own. The used address shows, read-only, what was sent
and leads to a fresh form.

Both tabs are pages of one browser context (one signed-in session). Every page
stays free of CSP violations, console errors and uncaught exceptions, and the
two new pages pass axe-core with no serious or critical issue.
"""

from __future__ import annotations

import re
import uuid
from pprint import pformat

import pytest
from playwright.sync_api import Page, expect

from intake.models import Interaction
from tests.support.browser import axe_violations, field_values, sign_in, wait_for_htmx

pytestmark = pytest.mark.django_db(transaction=True)

DETAIL_URL = re.compile(r"/interactions/([0-9a-f-]{36})/$")
FORM_KEY = re.compile(r"/interactions/new/\?key=([0-9a-f-]{36})$")
WAIT_MS = 10_000

# What each clinician types, by field id.
ANNA = {
    "id_encounter_identifier": "ENC-6001",
    "id_encounter_title": "Knee pain",
    "id_encounter_status": "in-progress",
    "id_encounter_type": "first_consultation",
    "id_encounter_started_at": "2026-03-02T09:00",
    "id_encounter_ended_at": "",
    "id_assigned_user_id": "",
    "id_patient_identifier": "PAT-6001",
    "id_patient_name": "Anna Berg",
    "id_patient_gender": "female",
    "id_patient_birth_date": "1961-02-14",
    "id_patient_pronouns": "",
}
BO = {
    "id_encounter_identifier": "ENC-6002",
    "id_encounter_title": "Shoulder pain, follow-up",
    "id_encounter_status": "completed",
    "id_encounter_type": "consultation",
    "id_encounter_started_at": "2026-03-02T10:15",
    "id_encounter_ended_at": "2026-03-02T10:40",
    "id_assigned_user_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "id_patient_identifier": "PAT-6002",
    "id_patient_name": "Bo Carlsen",
    "id_patient_gender": "male",
    "id_patient_birth_date": "1975-08-19",
    "id_patient_pronouns": "he/him",
}
REUSED_TEXT = (
    "This form was already used for ENC-6001 (PAT-6001).",
    "Your entry for ENC-6002 was not sent.",
    "Everything you typed is in the new form below, ready to send.",
)


# --- helpers ---------------------------------------------------------------


def type_form(page: Page, values: dict[str, str]) -> None:
    """Type each text field, choose each option; leave empty ones alone."""
    for field_id, value in values.items():
        if not value:
            continue
        field = page.locator(f"#{field_id}")
        kind = field.evaluate("el => el.tagName === 'SELECT' ? 'select' : el.type")
        if kind == "select":
            field.select_option(value)
        elif kind in ("date", "datetime-local"):
            field.fill(value)
        else:
            field.focus()
            page.keyboard.press("Control+A")
            page.keyboard.type(value)
    # Live validation of the last field has answered.
    wait_for_htmx(page)


def press_enter_in(page: Page, field_id: str) -> None:
    """Submit as a keyboard user does: Enter in a text field of the form."""
    page.locator(f"#{field_id}").focus()
    page.keyboard.press("Enter")


def form_key(page: Page) -> str:
    """The key in the address bar; the form's hidden key must be the same."""
    match = FORM_KEY.search(page.url)
    assert match, page.url
    assert page.locator("input[name=submission_key]").input_value() == match[1]
    return match[1]


def sent_details(page: Page, heading_id: str) -> dict[str, str]:
    """The "what was sent" list of the section labelled by `heading_id`."""
    details = page.locator(f"section[aria-labelledby={heading_id}] dl.details").last
    return dict(
        zip(
            details.locator("dt").all_inner_texts(),
            details.locator("dd").all_inner_texts(),
            strict=True,
        )
    )


def held_by_corti(corti) -> list[tuple[str, str, str]]:
    """(encounter, patient identifier, patient name) of each created, sorted."""
    state = corti.state()
    assert state["counts"].get("created", 0) == len(state["interactions"])
    return sorted(
        (
            item["encounter"]["identifier"],
            (item["patient"] or {}).get("identifier", ""),
            (item["patient"] or {}).get("name", ""),
        )
        for item in state["interactions"]
    )


def serious_axe_issues(page: Page, watch) -> list[dict]:
    """axe's serious and critical findings; its own blocked <style> forgiven."""
    csp_before, console_before = len(watch.csp_violations), len(watch.console_errors)
    found = axe_violations(page)
    page.evaluate("() => new Promise(done => setTimeout(done, 50))")
    watch.forgive_injected_styles(csp_since=csp_before, console_since=console_before)
    return found


# --- the test ----------------------------------------------------------------


def test_a_form_sent_from_two_tabs_never_drops_the_second_patient(
    context, site, corti, watch, browser_clinician
):
    tab1 = context.new_page()
    sign_in(tab1, site, "nurse")
    tab1.wait_for_selector("#intake-form")
    key = form_key(tab1)
    form_url = tab1.url
    tab2 = context.new_page()
    tab2.goto(form_url)
    assert form_key(tab2) == key

    # Tab 1 sends Anna's encounter.
    type_form(tab1, ANNA)
    press_enter_in(tab1, "id_patient_name")
    tab1.wait_for_url(DETAIL_URL, timeout=WAIT_MS)
    expect(tab1.get_by_role("heading", name="Created in Corti")).to_be_visible()
    anna = Interaction.objects.get()
    assert (anna.submission_key, anna.outcome) == (
        uuid.UUID(key),
        Interaction.Outcome.CREATED,
    )

    # Tab 2, opened on the same form before that, sends Bo's.
    type_form(tab2, BO)
    tab2.evaluate("window.__samePage = true")
    press_enter_in(tab2, "id_patient_name")

    notice = tab2.locator("#reused-notice")
    expect(notice).to_be_visible(timeout=WAIT_MS)
    for sentence in REUSED_TEXT:
        expect(notice).to_contain_text(sentence)
    expect(notice).to_be_focused()
    wait_for_htmx(tab2)
    # Nothing of Bo's reached Corti or Anna's record; all of it is in the form.
    assert held_by_corti(corti) == [("ENC-6001", "PAT-6001", "Anna Berg")]
    assert corti.state()["counts"].get("create_requests", 0) == 1
    anna.refresh_from_db()
    assert (anna.encounter_identifier, anna.patient_name) == ("ENC-6001", "Anna Berg")
    assert Interaction.objects.count() == 1
    assert field_values(tab2, BO) == BO
    assert tab2.evaluate("window.__samePage === true"), "the page was reloaded"
    # A new key, in the form and in the address bar (a reload keeps the form).
    new_key = form_key(tab2)
    assert new_key != key
    assert serious_axe_issues(tab2, watch) == [], pformat(tab2.url)

    # Create, pressed there, creates Bo's interaction as its own.
    tab2.get_by_role("button", name="Create interaction").focus()
    tab2.keyboard.press("Enter")
    tab2.wait_for_url(DETAIL_URL, timeout=WAIT_MS)
    expect(tab2.get_by_role("heading", name="Created in Corti")).to_be_visible()

    assert held_by_corti(corti) == [
        ("ENC-6001", "PAT-6001", "Anna Berg"),
        ("ENC-6002", "PAT-6002", "Bo Carlsen"),
    ]
    assert corti.state()["counts"].get("create_requests", 0) == 2
    bo = Interaction.objects.get(submission_key=new_key)
    assert bo.outcome == Interaction.Outcome.CREATED
    assert bo.pk != anna.pk
    assert bo.interaction_id != anna.interaction_id
    # Each record's page shows its own patient and its own Corti interaction.
    for tab, record, values in ((tab1, anna, ANNA), (tab2, bo, BO)):
        tab.goto(f"{site}/interactions/{record.pk}/")
        shown = sent_details(tab, "sent-heading")
        assert shown["Encounter identifier"] == values["id_encounter_identifier"]
        assert shown["Patient identifier"] == values["id_patient_identifier"]
        assert shown["Patient name"] == values["id_patient_name"]
        assert tab.locator("#interaction-id").inner_text() == str(record.interaction_id)

    # The used address, reloaded: what was sent, read-only, and a way on.
    tab1.goto(form_url)
    expect(
        tab1.get_by_role("heading", name="This form was already sent")
    ).to_be_visible()
    assert tab1.locator("#intake-form").count() == 0
    assert tab1.locator("main input, main select, main textarea").count() == 0
    expect(tab1.locator("main")).to_contain_text(
        f"It created interaction {anna.interaction_id} for ENC-6001 (PAT-6001)."
    )
    shown = sent_details(tab1, "sent-heading")
    assert shown["Encounter identifier"] == "ENC-6001"
    assert shown["Patient name"] == "Anna Berg"
    assert "Bo Carlsen" not in tab1.locator("main").inner_text()
    link = tab1.get_by_role("link", name=f"interaction {anna.interaction_id}")
    assert link.get_attribute("href") == f"/interactions/{anna.pk}/"
    assert serious_axe_issues(tab1, watch) == [], pformat(tab1.url)

    start_new = tab1.locator("#start-new")
    expect(start_new).to_have_text("Start a new intake")
    start_new.focus()
    tab1.keyboard.press("Enter")
    tab1.wait_for_url(
        lambda url: bool(FORM_KEY.search(url)) and url != form_url, timeout=WAIT_MS
    )

    fresh = form_key(tab1)
    assert fresh not in (key, new_key)
    expect(tab1.locator("#intake-form")).to_be_visible()
    assert tab1.locator("#intake-form .alert").count() == 0
    for field_id in BO:
        field = tab1.locator(f"#{field_id}")
        expect(field).to_be_editable()
        if field_id != "id_encounter_started_at":  # defaults to now
            assert field.input_value() == "", field_id
    assert Interaction.objects.count() == 2
    watch.assert_clean()
