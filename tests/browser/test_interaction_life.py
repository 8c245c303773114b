"""Ending an encounter from its page with the keyboard alone (issue 15)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import submit
from tests.support.browser import axe_violations, signed_in, tab_to_named

pytestmark = pytest.mark.usefixtures("clinic_zone")


def test_end_the_encounter_with_the_keyboard_only(context, env):
    record = submit(env)
    page = context.new_page()
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/{record.pk}/")
    assert not axe_violations(page)

    tab_to_named(page, "End the encounter")
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(rf"/interactions/{record.pk}/$"))
    expect(page.get_by_text(re.compile("Encounter ended in Corti at"))).to_be_visible()
    expect(page.get_by_role("button", name="End the encounter")).to_have_count(0)
    expect(page.get_by_role("heading", name="Changes")).to_be_visible()
    held = [
        i
        for i in env.corti.state()["interactions"]
        if i["id"] == str(record.interaction_id)
    ]
    assert held[0]["encounter"]["status"] == "completed"
    assert held[0]["encounter"]["period"]["endedAt"]
    assert not axe_violations(page)
    env.watch.assert_clean()


def test_end_at_a_typed_time_with_the_keyboard(context, env):
    record = submit(env)
    page = context.new_page()
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/{record.pk}/")

    field = page.locator("#id_ended_at")
    field.fill("2026-03-02T10:40")
    field.focus()
    tab_to_named(page, "End the encounter")
    page.keyboard.press("Enter")

    expect(page.get_by_text(re.compile("Encounter ended in Corti at"))).to_be_visible()
    record.refresh_from_db()
    assert record.encounter_ended_at.isoformat() == "2026-03-02T09:40:00+00:00"
    env.watch.assert_clean()
