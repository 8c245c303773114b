"""Issue 11 in a real browser: the duplicate question, and the address bar.

- A second interaction for ENC-4001 is asked about first; the focus is on
  "Create another one", so one press (Enter) creates it, through htmx.
- An EHR deep link's patient details never stay in the address bar, signed
  in or not, and a failed submit does not put them back.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from intake.models import Interaction
from tests.support.browser import PASSWORD, sign_in, wait_for_htmx
from tests.support.corti import fault, set_faults

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_MS = 10_000
ONLY_KEY = re.compile(r"/interactions/new/\?key=[0-9a-f-]{36}$")


def fill_encounter(page, identifier: str) -> None:
    page.locator("#id_encounter_identifier").fill(identifier)
    page.locator("#id_encounter_type").select_option("consultation")
    page.locator("#id_encounter_status").select_option("in-progress")
    wait_for_htmx(page)


def test_a_likely_duplicate_is_asked_about_and_one_press_goes_on(
    page, site, corti, browser_clinician, watch
):
    sign_in(page, site, "nurse")
    page.goto(f"{site}/interactions/new/")
    fill_encounter(page, "ENC-4001")
    page.locator("#id_encounter_identifier").press("Enter")
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"), timeout=WAIT_MS)

    page.goto(f"{site}/interactions/new/")
    fill_encounter(page, "ENC-4001")
    page.locator("#id_encounter_identifier").press("Enter")

    notice = page.locator("#duplicate-notice")
    expect(notice).to_contain_text(
        "An interaction for ENC-4001 already exists", timeout=WAIT_MS
    )
    expect(notice).to_contain_text("by nurse")
    expect(notice.get_by_role("link", name="open it")).to_be_visible()
    assert corti.state()["counts"].get("created") == 1
    button = page.get_by_role("button", name="Create another one")
    expect(button).to_be_focused()

    page.keyboard.press("Enter")  # one press

    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"), timeout=WAIT_MS)
    assert corti.state()["counts"].get("created") == 2
    assert Interaction.objects.filter(encounter_identifier="ENC-4001").count() == 2
    watch.assert_clean()


def test_a_deep_link_leaves_only_the_key_in_the_address_bar(
    page, site, corti, browser_clinician, watch
):
    link = (
        f"{site}/interactions/new/?encounter_identifier=ENC-8001"
        "&patient_identifier=PAT-8001&patient_name=S%C3%B8ren%20%C3%98deg%C3%A5rd"
    )
    # Not signed in yet: the sign-in page's address must not show them either.
    page.goto(link)
    assert "/accounts/login/" in page.url
    for value in ("PAT-8001", "ENC-8001", "S%C3%B8ren", "Søren"):
        assert value not in page.url
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(ONLY_KEY, timeout=WAIT_MS)

    expect(page.locator("#id_patient_name")).to_have_value("Søren Ødegård")
    expect(page.locator("#id_patient_identifier")).to_have_value("PAT-8001")
    history = page.evaluate("() => window.history.length")

    # A failed submit (Corti refuses) keeps the address as it is.
    set_faults(corti, fault("403", count=1))
    page.locator("#id_encounter_type").select_option("consultation")
    page.locator("#id_encounter_status").select_option("in-progress")
    wait_for_htmx(page)
    page.locator("#id_patient_name").press("Enter")
    expect(page.get_by_text("Not created in Corti")).to_be_visible(timeout=WAIT_MS)
    assert ONLY_KEY.search(page.url), page.url
    assert page.evaluate("() => window.history.length") == history

    # Signed in, a link opened straight away: the same.
    page.goto(link)
    page.wait_for_url(ONLY_KEY, timeout=WAIT_MS)
    expect(page.locator("#id_patient_name")).to_have_value("Søren Ødegård")
    watch.assert_clean()
