"""The CSV export of the interaction log.

Administrators only; a download (attachment, dated name, not cached) with a
header row and one row per record the list shows, honouring the list's search
and filters, newest first; times in the clinic's time zone with their offset;
a byte order mark; cells a spreadsheet would run as formulas neutralised;
streamed, so thousands of rows cost a few queries; a log line naming who
exported, never what they searched for; and a link from the list, for those
who may export, carrying the list's filters.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import uuid
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone

from intake.exports import cell
from intake.models import Interaction
from tests.support.factories import build_interaction, make_interaction, make_user
from tests.support.pages import listed, parse

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clinic_zone")]

EXPORT = "/interactions/export.csv"
LIST = "/interactions/"
UTC = dt.UTC
Outcome = Interaction.Outcome

HEADER = [
    "Local ID",
    "Submitted at",
    "Submitted by",
    "Outcome",
    "Corti interaction ID",
    "Websocket URL",
    "Encounter identifier",
    "Encounter status",
    "Encounter type",
    "Title",
    "Started at",
    "Ended at",
    "Assigned user ID",
    "Patient identifier",
    "Patient name",
    "Gender",
    "Birth date",
    "Pronouns",
    "Time zone",
    "Error kind",
    "Error HTTP status",
    "Corti request id",
    "Made outside the dashboard",
    "Gone from Corti at",
    "Deleted in Corti at",
    "Deleted by",
]


def download(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8")


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def records_of(text: str) -> list[dict[str, str]]:
    header, *rows = table(text)
    assert header == HEADER
    return [dict(zip(header, row, strict=True)) for row in rows]


def exported_ids(browser: Client, **query: str) -> list[uuid.UUID]:
    return [
        uuid.UUID(row["Local ID"])
        for row in records_of(download(browser.get(EXPORT, query)))
    ]


def at(hours: float) -> dt.datetime:
    return dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC) + dt.timedelta(hours=hours)


@pytest.fixture
def log(clinician):
    """A small log: every status, type and outcome; submitted an hour apart."""
    rows = [
        ("ENC-1", "planned", "consultation", Outcome.CREATED, "PAT-1", "Ada Lovelace"),
        ("ENC-2", "in-progress", "emergency", Outcome.FAILED, "PAT-2", "Grace Hopper"),
        ("ENC-3", "completed", "consultation", Outcome.CREATED, "PAT-3", "Ada Byron"),
        ("ENC-4", "planned", "inpatient", Outcome.UNKNOWN, "", ""),
        ("LOVE-5", "cancelled", "outpatient", Outcome.PENDING, "PAT-5", "Alan Turing"),
        ("ENC-6", "planned", "consultation", Outcome.CREATED, "PAT-ADA", "Edsger"),
    ]
    records = {}
    for hours, (enc, status, kind, outcome, patient, name) in enumerate(rows):
        records[enc] = make_interaction(
            clinician,
            created_at=at(hours),
            encounter_identifier=enc,
            encounter_status=status,
            encounter_type=kind,
            outcome=outcome,
            interaction_id=uuid.uuid4() if outcome == Outcome.CREATED else None,
            patient_identifier=patient,
            patient_name=name,
        )
    return records


# --- who may export ----------------------------------------------------------


def test_administrator_may_export(admin_browser, log):
    response = admin_browser.get(EXPORT)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"


def test_clinician_may_not_export(clinician_client, log):
    response = clinician_client.get(EXPORT)

    assert response.status_code == 403
    assert "ENC-1" not in response.content.decode()


def test_anonymous_visitor_is_sent_to_sign_in(client, log):
    response = client.get(EXPORT, {"q": "Ada"})

    assert response.status_code == 302
    assert response["Location"] == (
        f"/accounts/login/?next={quote(f'{EXPORT}?q=Ada', safe='/')}"
    )


@pytest.mark.parametrize(
    "codenames",
    [["export_interaction"], ["view_interaction"], []],
    ids=["export-only", "view-only", "none"],
)
def test_both_permissions_are_needed(client, log, codenames):
    user = make_user("partial", password="pw-partial-1", permissions=codenames)
    client.force_login(user)

    assert client.get(EXPORT).status_code == 403


def test_export_only_answers_get(admin_browser, log):
    assert admin_browser.post(EXPORT).status_code == 405


# --- the download ------------------------------------------------------------


def test_export_is_an_attachment_named_with_the_clinic_date_and_time(
    admin_browser, log
):
    before = timezone.localtime().replace(second=0, microsecond=0)

    response = admin_browser.get(EXPORT)

    after = timezone.localtime()
    match = re.fullmatch(
        r'attachment; filename="interactions-(\d{8}-\d{4})\.csv"',
        response["Content-Disposition"],
    )
    assert match, response["Content-Disposition"]
    stamp = dt.datetime.strptime(match.group(1), "%Y%m%d-%H%M")
    assert before.replace(tzinfo=None) <= stamp <= after.replace(tzinfo=None)


def test_export_is_never_cached(admin_browser, log):
    response = admin_browser.get(EXPORT)

    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert {"no-cache", "no-store", "must-revalidate", "private"} <= directives
    assert "Expires" in response


def test_export_starts_with_a_byte_order_mark_and_the_header_row(admin_browser, log):
    raw = b"".join(admin_browser.get(EXPORT).streaming_content)

    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    assert text.count("\ufeff") == 1
    assert table(text)[0] == HEADER
    assert text.splitlines()[0] == "\ufeff" + ",".join(HEADER)


def test_export_without_records_is_the_header_alone(admin_browser):
    assert table(download(admin_browser.get(EXPORT))) == [HEADER]


def test_every_record_is_one_row_newest_first(admin_browser, log):
    ids = exported_ids(admin_browser)

    assert ids == [r.pk for r in reversed(log.values())]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"q": "ada"},
        {"q": "  PAT-2 "},
        {"q": "LOVE"},
        {"status": "planned"},
        {"type": "consultation"},
        {"outcome": "created"},
        {"outcome": "failed"},
        {"status": "planned", "type": "consultation", "outcome": "created"},
        {"q": "ada", "status": "completed"},
        {"q": "nobody"},
        {"status": "not-a-status"},
        {"page": "2"},
    ],
    ids=repr,
)
def test_export_holds_exactly_what_the_list_shows_in_its_order(
    admin_browser, log, query
):
    shown = listed(admin_browser.get(LIST, query))

    exported = exported_ids(admin_browser, **query)

    assert exported == shown


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "ada"}, ["ENC-6", "ENC-3", "ENC-1"]),
        ({"q": "LOVE"}, ["LOVE-5", "ENC-1"]),
        ({"status": "planned"}, ["ENC-6", "ENC-4", "ENC-1"]),
        ({"type": "consultation"}, ["ENC-6", "ENC-3", "ENC-1"]),
        ({"outcome": "failed"}, ["ENC-2"]),
        ({"outcome": "unknown"}, ["ENC-4"]),
        (
            {"status": "planned", "type": "consultation", "outcome": "created"},
            ["ENC-6", "ENC-1"],
        ),
        ({"page": "2"}, ["ENC-6", "LOVE-5", "ENC-4", "ENC-3", "ENC-2", "ENC-1"]),
    ],
    ids=repr,
)
def test_export_honours_search_and_filters(admin_browser, log, query, expected):
    ids = exported_ids(admin_browser, **query)

    assert ids == [log[enc].pk for enc in expected]


def test_a_page_past_the_first_still_exports_everything_that_matches(
    admin_browser, clinician
):
    records = [make_interaction(clinician, created_at=at(i)) for i in range(30)]

    ids = exported_ids(admin_browser, page="2")

    assert ids == [r.pk for r in reversed(records)]


def test_row_holds_every_column_with_times_in_clinic_time_and_offset(
    admin_browser, clinician
):
    record = make_interaction(
        clinician,
        created_at=dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # before the change
        encounter_identifier="ENC-42",
        encounter_status="in-progress",
        encounter_type="first_consultation",
        encounter_title="Knee pain",
        encounter_started_at=dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
        encounter_ended_at=dt.datetime(2026, 7, 1, 8, 15, 30, tzinfo=UTC),
        assigned_user_id=uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479"),
        patient_identifier="PAT-7",
        patient_name="Ada Lovelace",
        patient_gender="female",
        patient_birth_date=dt.date(1980, 4, 23),
        patient_pronouns="she/her",
        websocket_url="wss://example.test/ws?x=1",
    )
    failed = make_interaction(
        clinician,
        created_at=dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # after the change
        outcome=Outcome.FAILED,
        interaction_id=None,
        error_code="rate_limited",
        error_status=429,
        error_request_id="req-123",
    )

    newest, oldest = records_of(download(admin_browser.get(EXPORT)))

    assert oldest == {
        "Local ID": str(record.pk),
        "Submitted at": "2026-03-29T01:30:00+01:00",
        "Submitted by": "clin",
        "Outcome": "created",
        "Corti interaction ID": str(record.interaction_id),
        "Websocket URL": "wss://example.test/ws?x=1",
        "Encounter identifier": "ENC-42",
        "Encounter status": "in-progress",
        "Encounter type": "first_consultation",
        "Title": "Knee pain",
        "Started at": "2026-01-15T10:00:00+01:00",
        "Ended at": "2026-07-01T10:15:30+02:00",
        "Assigned user ID": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "Patient identifier": "PAT-7",
        "Patient name": "Ada Lovelace",
        "Gender": "female",
        "Birth date": "1980-04-23",
        "Pronouns": "she/her",
        "Time zone": "Europe/Copenhagen",
        "Error kind": "",
        "Error HTTP status": "",
        "Corti request id": "",
        "Made outside the dashboard": "",
        "Gone from Corti at": "",
        "Deleted in Corti at": "",
        "Deleted by": "",
    }
    assert newest["Local ID"] == str(failed.pk)
    assert newest["Submitted at"] == "2026-03-29T03:30:00+02:00"
    assert newest["Outcome"] == "failed"
    assert newest["Corti interaction ID"] == ""
    assert newest["Ended at"] == ""
    assert newest["Error kind"] == "rate_limited"
    assert newest["Error HTTP status"] == "429"
    assert newest["Corti request id"] == "req-123"


def test_a_row_says_what_became_of_the_interaction_since(
    admin_browser, clinician, administrator
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    when = dt.datetime(2026, 7, 1, 8, 0, tzinfo=UTC)

    def deleted(first: int, count: int) -> None:
        for number in range(first, first + count):
            make_interaction(
                clinician,
                encounter_identifier=f"ENC-DEL-{number}",
                deleted_at=when,
                deleted_by=administrator,
            )

    def exported() -> tuple[dict[str, dict], int]:
        with CaptureQueriesContext(connection) as queries:
            rows = records_of(download(admin_browser.get(EXPORT)))
        return {row["Encounter identifier"]: row for row in rows}, len(queries)

    deleted(0, 3)
    make_interaction(clinician, encounter_identifier="ENC-GONE", corti_gone_at=when)
    make_interaction(clinician, encounter_identifier="ENC-ELSEWHERE", imported=True)
    rows, queries = exported()
    deleted(3, 3)
    more_rows, more_queries = exported()

    # Who deleted is read once per person, not once per row.
    assert more_queries == queries
    assert {
        row["Deleted by"]
        for name, row in more_rows.items()
        if name.startswith("ENC-DEL-")
    } == {administrator.get_username()}
    one_deleted = rows["ENC-DEL-1"]
    assert one_deleted["Deleted in Corti at"] == "2026-07-01T10:00:00+02:00"
    assert one_deleted["Deleted by"] == administrator.get_username()
    assert one_deleted["Gone from Corti at"] == ""
    assert rows["ENC-GONE"]["Gone from Corti at"] == "2026-07-01T10:00:00+02:00"
    assert rows["ENC-GONE"]["Deleted by"] == ""
    assert rows["ENC-ELSEWHERE"]["Made outside the dashboard"] == "yes"
    assert rows["ENC-GONE"]["Made outside the dashboard"] == ""


def test_times_follow_the_clinic_time_zone_setting(admin_browser, clinician, settings):
    settings.TIME_ZONE = "America/New_York"
    make_interaction(
        clinician,
        created_at=dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
        encounter_started_at=dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
    )

    [row] = records_of(download(admin_browser.get(EXPORT)))

    assert row["Submitted at"] == "2026-01-15T04:00:00-05:00"
    assert row["Started at"] == "2026-07-01T08:00:00-04:00"


# --- formulas ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil","x")',
        "=1+1",
        "+41 555 0100",
        "-2+3",
        "@SUM(A1:A2)",
        "\tTAB",
        "\rCR",
        "\nLF",
        "\uff1d1+1",
        "\uff0b1",
        "\uff0d1",
    ],
    ids=repr,
)
@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("encounter_identifier", "Encounter identifier"),
        ("encounter_title", "Title"),
        ("patient_identifier", "Patient identifier"),
        ("patient_name", "Patient name"),
        ("patient_pronouns", "Pronouns"),
    ],
)
@pytest.mark.slow  # 55 cells, each submitted and exported: ~1.5 s
def test_a_cell_a_spreadsheet_would_run_is_prefixed_with_an_apostrophe(
    admin_browser, clinician, field, column, value
):
    make_interaction(clinician, **{field: value})

    [row] = records_of(download(admin_browser.get(EXPORT)))

    assert row[column] == "'" + value


#: Formulas behind what a reader does not see, or in full-width letters: a
#: spreadsheet may drop the one and fold the other, and run what is left.
HIDDEN_FORMULAS = [
    "\u200b=1+1",  # zero-width space
    "\ufeff=1+1",  # byte order mark
    "\u200b\ufeff\u2060@SUM(A1:A2)",  # several, and a word joiner
    "\u00ad+1",  # soft hyphen
    "\u200e-2+3",  # left-to-right mark
    "\uff20SUM(A1:A2)",  # full-width @
    "\u200b\uff1d1+1",  # zero-width space, full-width =
    "\ufeff\uff0b1",  # byte order mark, full-width +
    "\u200b\uff0d1",  # zero-width space, full-width -
    "\ufe66HYPERLINK(1)",  # small form of =
    " =1+1",
    "\u3000=1+1",  # ideographic space
    "\u00a0@SUM(A1)",  # no-break space
    "\x0b=1",  # a control character that is not a line break
    # Shown as nothing, though neither format nor control characters:
    "\u034f=1+1",  # combining grapheme joiner
    "\u115f=1+1",  # Hangul choseong filler
    "\u1160=1+1",  # Hangul jungseong filler
    "\u3164=1+1",  # Hangul filler
    "\uffa0=1+1",  # half-width Hangul filler
    "\u2800=1+1",  # blank braille pattern
    "\u17b4=1+1",  # Khmer vowel inherent aq
    "\ufe0f=1+1",  # variation selector-16
]


@pytest.mark.parametrize("value", HIDDEN_FORMULAS, ids=repr)
def test_a_formula_behind_invisible_or_full_width_characters_is_prefixed(value):
    assert cell(value) == "'" + value


@pytest.mark.parametrize("value", HIDDEN_FORMULAS[:4] + HIDDEN_FORMULAS[5:7], ids=repr)
def test_a_hidden_formula_is_exported_with_an_apostrophe(
    admin_browser, clinician, value
):
    make_interaction(clinician, patient_identifier="PAT-1", patient_name=value)

    [row] = records_of(download(admin_browser.get(EXPORT)))

    assert row["Patient name"] == "'" + value


@pytest.mark.parametrize(
    "value",
    [
        "a=b",
        "x-1",
        "mail@example.test",
        "1+1",
        "'quoted",
        "a\u200b=b",
        "x\uff1d1",
        "'\u200b=1",
        "\u200bplain",
        "\uff21\uff22",  # full-width letters
    ],
    ids=repr,
)
def test_a_cell_that_is_not_a_formula_is_exported_as_it_is(
    admin_browser, clinician, value
):
    make_interaction(clinician, patient_identifier="PAT-1", patient_name=value)

    [row] = records_of(download(admin_browser.get(EXPORT)))

    assert row["Patient name"] == value


def test_cells_never_hold_nul():
    assert cell("a\x00b") == "ab"
    assert cell("\x00=1+1") == "'=1+1"
    assert cell(None) == ""


# --- streaming ---------------------------------------------------------------


@pytest.mark.slow  # 3,000 rows: ~3 s
def test_three_thousand_rows_are_streamed_newest_first_in_a_few_queries(
    admin_browser, clinician, django_assert_max_num_queries
):
    Interaction.objects.bulk_create(
        build_interaction(
            clinician, encounter_identifier=f"ENC-{i:04d}", encounter_started_at=at(0)
        )
        for i in range(3000)
    )

    with django_assert_max_num_queries(10):
        response = admin_browser.get(EXPORT)
        chunks = list(response.streaming_content)

    assert isinstance(response, StreamingHttpResponse)
    assert not response.has_header("Content-Length")
    assert len(chunks) > 1  # row by row, not one body built in memory
    rows = records_of(b"".join(chunks).decode("utf-8"))
    assert len(rows) == 3000
    assert len({row["Local ID"] for row in rows}) == 3000
    submitted = [row["Submitted at"] for row in rows]
    assert submitted == sorted(submitted, reverse=True)


# --- the log line ------------------------------------------------------------


def test_export_logs_who_exported_but_not_the_filters(
    admin_browser, administrator, log, caplog
):
    caplog.set_level(logging.DEBUG)
    query = {
        "q": "Grace Hopper",
        "status": "in-progress",
        "type": "emergency",
        "outcome": "failed",
    }

    download(admin_browser.get(EXPORT, query))

    # The request's own line (intake.requests) names the path, not who.
    lines = [
        r
        for r in caplog.records
        if "export" in r.getMessage() and r.name != "intake.requests"
    ]
    assert [r.getMessage() for r in lines] == [
        f"User {administrator.pk} exported interactions (filtered)"
    ]
    assert lines[0].name == "intake.views"
    assert lines[0].levelno == logging.INFO
    for record in caplog.records:
        message = record.getMessage()
        for value in (*query.values(), "Grace", "Hopper", "PAT-2", "ENC-2"):
            assert value not in message, (record.name, message)


def test_unfiltered_export_is_logged_as_all(admin_browser, administrator, log, caplog):
    caplog.set_level(logging.INFO, logger="intake.views")

    download(admin_browser.get(EXPORT))

    assert f"User {administrator.pk} exported interactions (all)" in [
        r.getMessage() for r in caplog.records
    ]


# --- the link from the list --------------------------------------------------


def export_links(html: str) -> list[str]:
    return [
        link.attrs["href"]
        for link in parse(html).find_all("a", class_="button", download=True)
        if link.raw_text == "Export these as CSV"
    ]


def test_list_offers_the_export_to_an_administrator_with_its_filters(
    admin_browser, clinician, log
):
    query = {
        "q": "Ada & co <x>",
        "status": "planned",
        "type": "consultation",
        "outcome": "created",
    }
    matching = make_interaction(
        clinician,
        encounter_identifier="Ada & co <x>",
        encounter_status="planned",
        encounter_type="consultation",
    )

    html = admin_browser.get(LIST, {**query, "page": "1"}).content.decode()

    [link] = export_links(html)
    parts = urlsplit(link)
    assert parts.path == EXPORT
    assert parse_qs(parts.query) == {k: [v] for k, v in query.items()}
    # Following it downloads what the list showed.
    assert (
        exported_ids(admin_browser, **query)
        == [matching.pk]
        == listed(admin_browser.get(LIST, query))
    )


def test_list_link_without_filters_exports_everything(admin_browser, log):
    html = admin_browser.get(LIST).content.decode()

    [link] = export_links(html)
    parts = urlsplit(link)
    assert parts.path == EXPORT
    assert parse_qs(parts.query) == {}


def test_list_results_swapped_in_by_htmx_carry_the_new_filters(admin_browser, log):
    html = admin_browser.get(
        LIST, {"q": "ada", "page": "1"}, headers={"HX-Request": "true"}
    ).content.decode()

    [link] = export_links(html)
    assert parse_qs(urlsplit(link).query) == {"q": ["ada"]}


def test_list_does_not_offer_the_export_to_a_clinician(clinician_client, log):
    html = clinician_client.get(LIST).content.decode()

    assert export_links(html) == []
    assert EXPORT not in html
