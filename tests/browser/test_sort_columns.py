"""Sorting the history by its column headers, with the keyboard only.

Each header is a link: Enter sorts (htmx swaps the results and pushes the
address), focus stays on the header pressed, the sorted column says so to a
screen reader (aria-sort), a search typed afterwards keeps the order, the
pages follow it, the back button returns to the previous order, and the
address opened anew (a bookmark) shows the same list.
"""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import Page, expect

from tests.support.browser import Env, axe_violations, signed_in
from tests.support.factories import make_interaction

PATIENTS = [f"PAT-{n:03d}" for n in range(30)]


def seed(env: Env) -> None:
    from django.utils import timezone

    now = timezone.now()
    # Newest first is the reverse of patient order: a sort shows at once.
    for n, patient in enumerate(PATIENTS):
        make_interaction(
            env.nurse,
            created_at=now - dt.timedelta(minutes=n),
            patient_identifier=patient,
            encounter_identifier=f"ENC-{n:03d}",
            patient_name="Søren Ødegård" if n % 2 else "Ada Lovelace",
        )


def patients_shown(page: Page) -> list[str]:
    return page.locator("#results tbody tr td:nth-child(6) .clamp-1").all_inner_texts()


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_sort_by_patient_with_the_keyboard_then_search_page_and_go_back(context, env):
    seed(env)
    page = context.new_page()
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/")
    expect(page.locator("#results tbody tr")).to_have_count(25)
    assert patients_shown(page)[0] == "PAT-000"

    tab_to(page, "#sort-patient_identifier")
    page.keyboard.press("Enter")
    page.wait_for_url("**/interactions/?sort=patient*")
    expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("th[aria-sort] a")).to_have_id("sort-patient_identifier")
    assert page.evaluate("document.activeElement.id") == "sort-patient_identifier"
    assert patients_shown(page)[:2] == ["PAT-000", "PAT-001"]

    # Again: Z to A.
    page.keyboard.press("Enter")
    page.wait_for_url("**/interactions/?sort=-patient*")
    expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    assert patients_shown(page)[0] == "PAT-029"
    assert page.evaluate("document.activeElement.id") == "sort-patient_identifier"

    # A search typed now keeps the order.
    page.locator("#id_q").fill("soren")
    page.wait_for_url("**q=soren*")
    assert "sort=-patient" in page.url
    expect(page.locator("#results tbody tr")).to_have_count(15)
    assert patients_shown(page)[0] == "PAT-029"

    # Pages follow the order; the address never holds a patient identifier.
    page.locator("#id_q").fill("")
    page.wait_for_url(lambda url: "q=soren" not in url)
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url("**older=*")
    assert "PAT" not in page.url
    assert patients_shown(page) == [f"PAT-{n:03d}" for n in range(4, -1, -1)]
    assert not axe_violations(page)

    # The back button: the first page again, in the same order.
    page.go_back()
    expect(page.locator("#results tbody tr")).to_have_count(25)
    assert patients_shown(page)[0] == "PAT-029"

    # The address opened anew, as a bookmark: the same list.
    fresh = context.new_page()
    fresh.goto(page.url)
    expect(fresh.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    assert patients_shown(fresh) == patients_shown(page)
    env.watch.assert_clean()
