"""A start time the clocks show twice, asked about in the browser: by keyboard,
kept once chosen, and the chosen instant sent to Corti."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Env, signed_in, wait_for_htmx

pytestmark = pytest.mark.usefixtures("clinic_zone")

QUESTION = (
    "02:30 on 2026-10-25 happens twice in Europe/Copenhagen (the clocks go back). "
    "Choose which:"
)


def test_the_form_asks_which_repeated_time_and_sends_the_chosen_one(
    page: Page, env: Env
):
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/new/")
    page.get_by_label("Encounter identifier").fill("ENC-DST-1")
    page.get_by_label("Encounter status").select_option("in-progress")
    page.get_by_label("Encounter type").select_option("consultation")
    started = page.locator("#id_encounter_started_at")
    started.fill("2026-10-25T02:30")
    started.blur()

    errors = page.locator("#id_encounter_started_at-errors")
    expect(errors.locator("p.error")).to_have_text(QUESTION)
    group = page.get_by_role("group", name="Started at: which 02:30?")
    first = group.get_by_role("radio", name="02:30 CEST (first)")
    second = group.get_by_role("radio", name="02:30 CET (second)")
    expect(first).not_to_be_checked()
    expect(second).not_to_be_checked()

    # By keyboard: focus the first choice, arrow to the second.
    first.focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    wait_for_htmx(page)
    expect(second).to_be_checked()
    expect(second).to_be_focused()  # the live check swaps nothing under it
    expect(errors.locator("p.error")).to_have_count(0)

    page.get_by_role("button", name="Create interaction").click()
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"))
    expect(page.locator("dl.details")).to_contain_text("2026-10-25 02:30 CET")
    [created] = env.corti.state()["interactions"]
    assert created["encounter"]["period"]["startedAt"] == "2026-10-25T01:30:00Z"
