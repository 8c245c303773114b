"""The administrators' overview (issue 14, part 4): submissions per day by
type and by outcome, and per user, drawn on the server as SVG, each with its
numbers as a table."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from intake.models import Interaction
from tests.support.factories import make_interaction, make_user
from tests.support.pages import parse

pytestmark = pytest.mark.django_db

OVERVIEW = "/overview/"


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def history(clinician, administrator):
    now = timezone.now()
    other = make_user("nurse-2", password="pw-nurse-2", role="clinician")
    made = [
        make_interaction(clinician, created_at=now, encounter_type="emergency"),
        make_interaction(clinician, created_at=now, encounter_type="emergency"),
        make_interaction(
            other,
            created_at=now - dt.timedelta(days=3),
            encounter_type="inpatient",
            outcome=Interaction.Outcome.FAILED,
            interaction_id=None,
        ),
        # Outside the last 30 days, inside the last 90.
        make_interaction(other, created_at=now - dt.timedelta(days=45)),
    ]
    return made


def tables(page: str) -> list:
    return parse(page).find_all("table")


def cells(table) -> list[list[str]]:
    return [
        [cell.text.strip() for cell in row.iter() if cell.tag in ("th", "td")]
        for row in table.find_all("tr")
    ]


def test_the_last_30_days_by_type_outcome_and_user(admin_client_, history):
    page = html(admin_client_.get(OVERVIEW))
    assert page.count('<svg class="chart-svg"') == 3
    by_type, by_outcome, per_user = (cells(t) for t in tables(page))
    today = timezone.localdate().isoformat()
    header = by_type[0]
    today_row = next(row for row in by_type if row[0] == today)
    assert today_row[header.index("Emergency")] == "2"
    assert by_type[-1][0] == "Total" and by_type[-1][-1] == "3"
    assert len(by_type) == 1 + 30 + 1  # header, 30 days, total
    assert by_outcome[-1][by_outcome[0].index("Failed")] == "1"
    assert per_user[1:] == [["clin", "2"], ["nurse-2", "1"]]


def test_the_last_90_days(admin_client_, history):
    page = html(admin_client_.get(OVERVIEW, {"days": "90"}))
    by_type = cells(tables(page)[0])
    assert len(by_type) == 1 + 90 + 1
    assert by_type[-1][-1] == "4"
    assert 'aria-current="page">Last 90 days' in page


@pytest.mark.parametrize(
    "days", ["7", "x", "-30", "", "1000000", "²", "³0", "9" * 5000, "٣٠"]
)
def test_other_periods_show_30_days(admin_client_, history, days):
    page = html(admin_client_.get(OVERVIEW, {"days": days}))
    assert len(cells(tables(page)[0])) == 1 + 30 + 1


def test_every_bar_is_in_its_table(admin_client_, history):
    page = html(admin_client_.get(OVERVIEW))
    # Each bar's title says what it stands for; the same numbers as the table.
    titles = re.findall(r"<rect class=\"series-\d\"[^>]*><title>([^<]+)</title>", page)
    assert f"{timezone.localdate().isoformat()}: Emergency 2" in titles
    assert "clin: 2" in titles


def test_a_day_is_the_clinics(admin_client_, clinician, settings, clinic_zone):
    # 23:30 in Copenhagen on the 1st is the 1st there (22:30 UTC).
    today = timezone.localdate()
    late = dt.datetime.combine(
        today - dt.timedelta(days=1),
        dt.time(23, 30),
        tzinfo=timezone.get_current_timezone(),
    )
    make_interaction(clinician, created_at=late)
    rows = cells(tables(html(admin_client_.get(OVERVIEW)))[0])
    day = (today - dt.timedelta(days=1)).isoformat()
    assert next(row for row in rows if row[0] == day)[-1] == "1"


def test_nothing_inline_the_csp_would_block(admin_client_, history):
    page = html(admin_client_.get(OVERVIEW))
    assert " style=" not in page
    assert "<script" not in page.split("</head>", 1)[1]


def test_clinicians_do_not_see_it(clinician_client, history):
    assert clinician_client.get(OVERVIEW).status_code == 403
    assert 'href="/overview/"' not in html(clinician_client.get("/interactions/"))


@pytest.mark.parametrize(
    "zone", ["Europe/Copenhagen", "America/New_York", "Asia/Kolkata", "UTC"]
)
@pytest.mark.parametrize("by", ["encounter_type", "outcome"])
def test_per_day_counts_agree_however_the_days_are_worked_out(
    clinician, settings, monkeypatch, zone, by
):
    """Hours grouped and put into days (SQLite) or days grouped by the
    database: the same counts, across both DST changes and in a zone whose
    offset is not whole hours."""
    import random

    from intake import selectors

    settings.TIME_ZONE = zone
    rng = random.Random(15)
    first = dt.date(2026, 3, 1)
    start = dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)
    for _ in range(300):
        make_interaction(
            clinician,
            created_at=start + dt.timedelta(minutes=rng.randrange(245 * 24 * 60)),
            encounter_type=rng.choice(["consultation", "emergency"]),
            outcome=rng.choice(["created", "failed"]),
        )

    asked = {"first_day": first, "days": 240, "by": by}
    counted = selectors.submissions_per_day(**asked)
    monkeypatch.setattr(selectors, "_whole_hour_offsets", lambda *a: False)
    per_row = selectors.submissions_per_day(**asked)

    assert counted == per_row
    assert sum(sum(day.values()) for day in counted.values()) > 250
    assert selectors.submissions_per_user(first_day=first, days=240) == {
        clinician.get_username(): sum(sum(d.values()) for d in per_row.values())
    }
