"""Sortable columns (issue 14, part 1): every order pages by keyset.

Runs on SQLite and on PostgreSQL (make test-postgres). The identifiers are
chosen to sort alike under any collation (capitals, digits, one length).
"""

from __future__ import annotations

import datetime as dt
import uuid
from html.parser import HTMLParser

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from intake.models import Interaction
from intake.selectors import SORTS, HistoryCursor, interaction_list, interaction_page
from intake.views import PAGE_SIZE
from tests.support.factories import make_interaction
from tests.support.pages import listed

pytestmark = pytest.mark.django_db

LIST = "/interactions/"
EXPORT = "/interactions/export.csv"
START = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
STATUSES = ["planned", "in-progress", "on-hold", "completed", "cancelled", "deleted"]
TYPES = ["first_consultation", "consultation", "emergency", "inpatient", "outpatient"]
OUTCOMES = ["created", "failed", "unknown", "pending"]
COUNT = PAGE_SIZE + 12


@pytest.fixture
def history(clinician):
    """COUNT submissions, one a minute, whose columns repeat out of step
    (each column's order differs from the others' and from time's)."""
    return [
        make_interaction(
            clinician,
            created_at=START + dt.timedelta(minutes=n),
            encounter_identifier=f"ENC-{(n * 7) % COUNT:03d}",
            patient_identifier=f"PAT-{(n * 5) % 9:03d}",
            encounter_status=STATUSES[n % len(STATUSES)],
            encounter_type=TYPES[(n * 3) % len(TYPES)],
            outcome=OUTCOMES[(n * 2 + n // 4) % len(OUTCOMES)],
        )
        for n in range(COUNT)
    ]


def expected(records: list[Interaction], key: str) -> list[uuid.UUID]:
    """The order SORTS[key] promises, worked out here in Python."""
    sort = SORTS[key]
    newest = sorted(records, key=lambda r: r.created_at, reverse=True)
    if sort.column is None:
        ordered = newest if sort.descending else newest[::-1]
    else:
        by_column = sorted(newest, key=lambda r: getattr(r, sort.column))
        ordered = by_column[::-1] if sort.descending else by_column
    return [r.pk for r in ordered]


def links_of(response) -> list[dict]:
    found: list[dict] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("a", "th", "input"):
                found.append({"tag": tag, **dict(attrs)})

    Links().feed(response.content.decode())
    return found


def link(response, rel: str) -> str | None:
    hrefs = [a["href"] for a in links_of(response) if a.get("rel") == rel]
    return hrefs[0] if hrefs else None


def pages_through(client, params: dict) -> list[uuid.UUID]:
    """Every row, following the next-page links from the first page."""
    seen: list[uuid.UUID] = []
    response = client.get(LIST, params)
    while True:
        assert response.status_code == 200
        seen += listed(response)
        after = link(response, "next")
        if after is None:
            return seen
        response = client.get(LIST + after)


@pytest.mark.parametrize("key", list(SORTS))
def test_each_order_lists_every_row_once_in_its_order(admin_client_, history, key):
    seen = pages_through(admin_client_, {"sort": key})

    assert seen == expected(history, key)


@pytest.mark.parametrize("key", ["-patient", "status", "oldest"])
def test_the_previous_page_link_goes_back_to_the_same_rows(admin_client_, history, key):
    first = admin_client_.get(LIST, {"sort": key})
    second = admin_client_.get(LIST + link(first, "next"))
    back = admin_client_.get(LIST + link(second, "prev"))

    assert listed(back) == listed(first)
    assert link(first, "prev") is None


@pytest.mark.parametrize("key", ["patient", "-encounter", "outcome"])
def test_rows_added_between_pages_never_repeat_or_vanish(
    admin_client_, clinician, history, key
):
    first = admin_client_.get(LIST, {"sort": key})
    # New submissions land everywhere in a column's order, before and after
    # the page boundary.
    for n in range(10):
        make_interaction(
            clinician,
            created_at=START + dt.timedelta(days=1, minutes=n),
            encounter_identifier=f"ENC-{n * 4:03d}",
            patient_identifier=f"PAT-{n:03d}",
            outcome=OUTCOMES[n % len(OUTCOMES)],
        )
    second = admin_client_.get(LIST + link(first, "next"))
    seen = listed(first) + listed(second)
    old = set(expected(history, key))

    assert len(seen) == len(set(seen))
    assert [pk for pk in seen if pk in old] == expected(history, key)


def test_rows_sharing_a_value_and_an_instant_are_paged_by_their_id(
    admin_client_, clinician
):
    records = [
        make_interaction(clinician, created_at=START, patient_identifier="PAT-SAME")
        for _ in range(PAGE_SIZE + 5)
    ]

    seen = pages_through(admin_client_, {"sort": "-patient"})

    assert sorted(seen) == sorted(r.pk for r in records)


def test_headers_are_links_to_their_order_and_say_which_is_current(
    admin_client_, history
):
    tags = links_of(admin_client_.get(LIST))
    sorted_by = [t for t in tags if t["tag"] == "th" and "aria-sort" in t]
    sorts = {t["id"]: t["href"] for t in tags if t.get("class") == "sort"}

    # Newest first by default: the submitted column, descending.
    assert [t["aria-sort"] for t in sorted_by] == ["descending"]
    assert sorts["sort-submitted"] == "?sort=oldest"
    assert sorts["sort-patient_identifier"] == "?sort=patient"
    assert set(sorts) == {
        "sort-submitted",
        "sort-outcome",
        "sort-encounter_identifier",
        "sort-encounter_status",
        "sort-encounter_type",
        "sort-patient_identifier",
    }

    tags = links_of(admin_client_.get(LIST, {"sort": "patient", "q": "PAT"}))
    sorts = {t["id"]: t["href"] for t in tags if t.get("class") == "sort"}
    assert [t["aria-sort"] for t in tags if "aria-sort" in t] == ["ascending"]
    # The current column's link reverses it; the search is kept.
    assert sorts["sort-patient_identifier"] == "?sort=-patient&q=PAT"
    assert sorts["sort-submitted"] == "?sort=newest&q=PAT"


def test_a_sorted_list_names_its_order_and_pages_in_plain_words(admin_client_, history):
    html = admin_client_.get(LIST, {"sort": "-encounter"}).content.decode()

    assert "Submissions, by encounter identifier, Z to A" in html
    assert ">Next page<" in html
    assert ", sort by encounter identifier, A to Z</span>" in html


def test_an_unknown_order_says_so_and_lists_newest_first(admin_client_, history):
    response = admin_client_.get(LIST, {"sort": "<b>price</b>"})
    html = response.content.decode()

    assert response.status_code == 200
    assert listed(response) == expected(history, "newest")[:PAGE_SIZE]
    assert "The list has no order “&lt;b&gt;price&lt;/b&gt;”" in html
    assert "<b>price" not in html


def test_the_address_of_a_page_holds_no_patient_identifier(admin_client_, history):
    first = admin_client_.get(LIST, {"sort": "patient"})
    after = link(first, "next")

    assert "PAT" not in after
    assert "sort=patient" in after


def test_the_filter_form_keeps_the_order_and_htmx_updates_it(admin_client_, history):
    tags = links_of(admin_client_.get(LIST, {"sort": "status"}))
    hidden = [t for t in tags if t.get("id") == "id_sort"]
    assert [t["value"] for t in hidden] == ["status"]

    response = admin_client_.get(
        LIST, {"sort": "-type"}, headers={"HX-Request": "true"}
    )
    oob = [t for t in links_of(response) if t.get("id") == "id_sort"]
    assert [(t["value"], t["hx-swap-oob"]) for t in oob] == [("-type", "true")]


def test_the_export_lists_rows_in_the_order_shown(admin_client_, history):
    response = admin_client_.get(EXPORT, {"sort": "-patient"})
    lines = b"".join(response.streaming_content).decode().splitlines()[1:]
    ids = [uuid.UUID(line.split(",")[0]) for line in lines]

    assert ids == expected(history, "-patient")


@pytest.mark.parametrize(
    ("key", "index"),
    [
        ("patient", "interaction_patient_idx"),
        ("-encounter", "interaction_encounter_idx"),
        ("status", "interaction_status_idx"),
        ("-type", "interaction_type_idx"),
        ("outcome", "interaction_outcome_idx"),
        ("oldest", "interaction_history_idx"),
    ],
)
def test_each_order_is_read_from_its_index_on_postgresql(clinician, key, index):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plan (SQLite's planner picks alike, unchecked)")
    rows = [make_interaction(clinician) for _ in range(3)]
    sort = SORTS[key]
    with CaptureQueriesContext(connection) as queries:
        interaction_page(interaction_list(), size=2, sort=sort)
        interaction_page(
            interaction_list(), size=2, sort=sort, older_than=HistoryCursor.of(rows[1])
        )
        interaction_page(
            interaction_list(), size=2, sort=sort, newer_than=HistoryCursor.of(rows[1])
        )
    with transaction.atomic(), connection.cursor() as cursor:
        # A near-empty table is best read whole and sorted: rule that out to
        # see that the index answers this order (and its cursor's range).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        for query in queries.captured_queries:
            if "ORDER BY" not in query["sql"]:
                continue
            cursor.execute("EXPLAIN " + query["sql"])
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert index in plan, plan
            assert " Sort " not in plan and not plan.startswith("Sort"), plan


def test_a_row_changed_between_pages_does_not_move_the_page_edge(
    admin_client_, history
):
    """A refresh from Corti may change the status of the row the next page
    starts after: the rows after it are still all there, once."""
    first = admin_client_.get(LIST, {"sort": "status"})
    edge = listed(first)[-1]
    Interaction.objects.filter(pk=edge).update(encounter_status="cancelled")
    second = admin_client_.get(LIST + link(first, "next"))

    seen = listed(first) + listed(second)
    rest = expected(history, "status")[PAGE_SIZE:]
    assert [pk for pk in listed(second) if pk != edge] == rest
    assert len(set(seen)) == len(seen) or seen.count(edge) == 2


def test_the_previous_page_never_repeats_a_row_when_rows_left_the_filter(
    admin_client_, history, clinician, administrator
):
    first = admin_client_.get(LIST, {"sort": "outcome", "by": clinician.pk})
    second = admin_client_.get(LIST + link(first, "next"))
    # Two rows of the first page leave the filter meanwhile.
    gone = listed(first)[:2]
    Interaction.objects.filter(pk__in=gone).update(submitted_by=administrator)

    back = admin_client_.get(LIST + link(second, "prev"))

    assert not set(listed(back)) & set(listed(second))
    assert listed(back) == [pk for pk in listed(first) if pk not in gone]
    assert link(back, "prev") is None
