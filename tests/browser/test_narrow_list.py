"""The list with long titles and identifiers, on a phone and on a desktop.

At 390 px the page never scrolls sideways and every row shows its encounter,
patient, time and outcome inside the viewport; the secondary columns give way
(the detail page shows them). Long titles and identifiers wrap or are clamped,
so no row grows past a few lines, at 390 px nor at 1280 px. The Retry button
and the links stay reachable with the Tab key.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Env, sign_in
from tests.support.clock import CLINIC_ZONE
from tests.support.factories import make_interaction

pytestmark = pytest.mark.usefixtures("clinic_zone")

# 200 characters of words, as a hurried clinician might type a title.
LONG_TITLE = (
    "Follow-up after emergency admission for chest pain with suspected unstable "
    "angina, medication review, blood pressure diary, lifestyle advice and referral "
    "to the outpatient cardiology clinic for stress"
)[:200]
# Identifiers from another system: long and without a space to break at.
LONG_ENCOUNTER = "ENC-" + "-".join(f"{n:04d}" for n in range(2020, 2044))
LONG_PATIENT = "urn:oid:1.2.208.176.1.2:" + "9" * 60
LONG_NAME = "Søren Ødegård-Christensen-Kristiansen-Johannessen-Frederiksberg"

#: The most a row may be high (CSS pixels): about five lines on a phone,
#: about three (with its padding) on a desktop.
MAX_ROW_HEIGHT = {"phone": 150, "desktop": 90}
WIDTHS = {"phone": 390, "desktop": 1280}


def seed(env: Env) -> None:
    """Long and short rows, straight into the log; one failed (Retry)."""
    from django.utils import timezone

    from intake.models import Interaction

    now = timezone.now()
    rows = [
        {
            "encounter_identifier": LONG_ENCOUNTER,
            "encounter_title": LONG_TITLE,
            "patient_identifier": LONG_PATIENT,
            "patient_name": LONG_NAME,
        },
        {
            "encounter_identifier": "ENC-2026-0411",
            "encounter_title": LONG_TITLE,
            "patient_identifier": "PAT-1042",
            "patient_name": "Jane Example",
            "outcome": Interaction.Outcome.FAILED,
            "interaction_id": None,
        },
        {
            "encounter_identifier": "ENC-2026-0412",
            "encounter_title": "Knee pain",
            "patient_identifier": "PAT-2087",
            "patient_name": "Sam Placeholder",
        },
    ]
    for i, fields in enumerate(rows):
        make_interaction(
            env.nurse,
            created_at=now - dt.timedelta(minutes=i),
            encounter_status="in-progress",
            encounter_type="first_consultation",
            encounter_started_at=now,
            time_zone=CLINIC_ZONE,
            **fields,
        )


def open_list(page: Page, env: Env) -> None:
    seed(env)
    sign_in(page, env.site, "nurse", next_path="/interactions/")
    expect(page.locator("#results tbody tr")).to_have_count(3)


# Per row: its height and the boxes of its time, outcome, encounter and
# patient cells (by their column headers, so a reordered table still counts).
ROWS_JS = """
() => {
  // A sortable header's label is its link's first text (the rest is for
  // screen readers and the order's mark).
  const heads = [...document.querySelectorAll('#results thead th')]
    .map((th) => (th.querySelector('a.sort')?.firstChild ?? th).textContent.trim());
  const box = (el) => {
    const r = el.getBoundingClientRect();
    const visible = getComputedStyle(el).visibility === 'visible'
      && el.getClientRects().length > 0;
    return {left: r.left, right: r.right, width: r.width, height: r.height, visible};
  };
  return [...document.querySelectorAll('#results tbody tr')].map((tr) => {
    const cells = {};
    [...tr.children].forEach((td, i) => { cells[heads[i]] = box(td); });
    return {height: tr.getBoundingClientRect().height, cells};
  });
}
"""
PRIMARY = ("Submitted", "Outcome", "Encounter", "Patient")


def measure(page: Page) -> dict:
    found = page.evaluate(
        """() => {
          const wrap = document.querySelector('.table-wrap');
          return {
            width: window.innerWidth,
            scrollWidth: document.documentElement.scrollWidth,
            wrap: {scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth},
          };
        }"""
    )
    return {**found, "rows": page.evaluate(ROWS_JS)}


def test_at_390_px_the_list_never_scrolls_sideways(open_page, env):
    page = open_page("phone")
    open_list(page, env)

    found = measure(page)

    print(f"390 px: scrollWidth {found['scrollWidth']}, table {found['wrap']}")
    assert found["width"] == WIDTHS["phone"]
    assert found["scrollWidth"] <= found["width"]
    assert found["wrap"]["scrollWidth"] <= found["wrap"]["clientWidth"]


@pytest.mark.parametrize("viewport", list(WIDTHS))
def test_each_row_shows_encounter_patient_time_and_outcome_in_view(
    viewport, open_page, env
):
    page = open_page(viewport)
    open_list(page, env)

    found = measure(page)

    for row in found["rows"]:
        for name in PRIMARY:
            cell = row["cells"][name]
            assert cell["visible"], (name, cell)
            assert cell["width"] > 0, (name, cell)
            assert cell["left"] >= 0 and cell["right"] <= found["width"], (name, cell)


@pytest.mark.parametrize("viewport", list(WIDTHS))
def test_long_titles_and_identifiers_keep_rows_compact(viewport, open_page, env):
    page = open_page(viewport)
    open_list(page, env)

    heights = [row["height"] for row in measure(page)["rows"]]

    print(f"{viewport}: row heights {heights}")
    assert max(heights) <= MAX_ROW_HEIGHT[viewport], heights
    # The full title stays available: on the row (its tooltip and what a
    # screen reader reads) and on the detail page.
    title = page.locator("#results tbody tr").first.get_by_text(LONG_TITLE)
    expect(title).to_have_attribute("title", LONG_TITLE)


def test_at_390_px_the_links_and_retry_are_reached_with_tab(open_page, env):
    page = open_page("phone")
    open_list(page, env)
    targets = page.locator("#results tbody a[href], #results tbody button")
    expected = targets.count()
    assert expected == 4  # three time links, one Retry

    page.locator("#id_outcome").focus()
    reached = []
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => document.activeElement.closest('#results tbody') ? "
            "(document.activeElement.getAttribute('aria-label') "
            "|| document.activeElement.textContent).trim() : null"
        )
        if focused:
            reached.append(focused)
            box = page.evaluate(
                "() => { const r = document.activeElement.getBoundingClientRect();"
                " return [r.left, r.right]; }"
            )
            assert box[0] >= 0 and box[1] <= WIDTHS["phone"], (focused, box)
        if len(reached) == expected:
            break

    assert len(reached) == expected, reached
    assert any(name.startswith("Retry") for name in reached), reached
