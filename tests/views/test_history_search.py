"""Search that finds people (issue 14, part 1): folded words, ID prefixes.

Runs on SQLite and on PostgreSQL (make test-postgres); on PostgreSQL the
query plan is checked too: the trigram index answers "part of the text".
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from intake.models import Interaction
from intake.selectors import interaction_list
from tests.support.factories import make_interaction
from tests.support.pages import listed

pytestmark = pytest.mark.django_db

LIST = "/interactions/"

PEOPLE = {
    "danish": {"patient_name": "Søren Ødegård", "patient_identifier": "DK-2200"},
    "german": {"patient_name": "Jürgen Groß", "patient_identifier": "DE-10115"},
    "spanish": {"patient_name": "José Núñez", "patient_identifier": "ES-28001"},
    "arabic": {"patient_name": "مُحَمَّد الفَارِس", "patient_identifier": "AR-1"},
    "cjk": {"patient_name": "山田 太郎", "patient_identifier": "JP-100-0001"},
    "titled": {
        "patient_name": "",
        "patient_identifier": "",
        "encounter_title": "Kontrol af knæ",
    },
}


@pytest.fixture
def people(clinician):
    return {
        key: make_interaction(
            clinician, encounter_identifier=f"ENC-{key.upper()}-1", **fields
        )
        for key, fields in PEOPLE.items()
    }


def found(client, q: str) -> set[uuid.UUID]:
    response = client.get(LIST, {"q": q})
    assert response.status_code == 200
    return set(listed(response))


@pytest.mark.parametrize(
    ("q", "who"),
    [
        ("søren", "danish"),
        ("soren", "danish"),
        ("SØREN", "danish"),
        ("ØDEGÅRD", "danish"),
        ("odegard", "danish"),
        ("øde", "danish"),
        ("soren odegard", "danish"),
        ("odegard soren", "danish"),
        ("jurgen", "german"),
        ("GROSS", "german"),
        ("groß", "german"),
        ("jose", "spanish"),
        ("JOSÉ NÚÑEZ", "spanish"),
        ("nunez", "spanish"),
        ("محمد", "arabic"),
        ("الفارس", "arabic"),
        ("山田", "cjk"),
        ("太郎", "cjk"),
        ("knae", "titled"),
        ("KONTROL", "titled"),
        # Identifiers: exact, prefix, and any part, in any case.
        ("DK-2200", "danish"),
        ("dk-22", "danish"),
        ("JP-100-0001", "cjk"),
        ("ENC-SPANISH-1", "spanish"),
        ("enc-german", "german"),
    ],
)
def test_search_finds_people(clinician_client, people, q, who):
    assert found(clinician_client, q) == {people[who].pk}


def test_every_word_must_match(clinician_client, people):
    assert found(clinician_client, "soren nunez") == set()


def test_a_prefix_of_the_interaction_id_finds_it(clinician_client, people):
    record = people["spanish"]
    text = str(record.interaction_id)
    for q in (text[:4], text[:8], text[:13], text, text.upper(), text.replace("-", "")):
        assert record.pk in found(clinician_client, q), q


def test_a_prefix_of_the_local_id_finds_it(clinician_client, people):
    record = people["german"]
    assert record.pk in found(clinician_client, str(record.pk)[:8])
    assert found(clinician_client, f"  {record.pk}  ") == {record.pk}


def test_three_hex_characters_are_not_an_id_prefix(clinician_client, clinician):
    record = make_interaction(
        clinician,
        interaction_id=uuid.UUID("abc00000-0000-4000-8000-000000000000"),
        encounter_identifier="ENC-X",
        patient_identifier="P-X",
        patient_name="",
    )
    assert found(clinician_client, "abc") == set()
    assert found(clinician_client, "abc0") == {record.pk}


def test_a_search_of_marks_alone_lists_everything(clinician_client, people):
    assert found(clinician_client, "\u0301") == {r.pk for r in people.values()}


def test_the_search_text_follows_a_corrected_name(clinician, clinician_client):
    record = make_interaction(clinician, patient_name="Ana", encounter_identifier="E")
    record.patient_name = "Åse Ørsted"
    record.save(update_fields=["patient_name"])
    record.refresh_from_db()
    assert record.search_text.endswith("ase orsted")
    assert found(clinician_client, "orsted") == {record.pk}


def test_bulk_created_rows_are_searchable(clinician, clinician_client):
    from tests.support.factories import build_interaction

    built = build_interaction(
        clinician, patient_name="Bjørn Bø", encounter_identifier="B"
    )
    [row] = Interaction.objects.bulk_create([built])
    assert found(clinician_client, "bjorn") == {row.pk}


def test_a_name_search_uses_the_trigram_index_on_postgresql(clinician):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's index (SQLite's: tests/test_search_index.py)")
    make_interaction(clinician, patient_name="Søren Ødegård")
    with CaptureQueriesContext(connection) as queries:
        list(interaction_list(q="odegard")[:25])
    sql = queries[0]["sql"]
    with transaction.atomic(), connection.cursor() as cursor:
        # A near-empty table is best read whole or in date order: rule both
        # out to see that the trigram index can answer this query's text.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql)
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "interaction_search_trgm" in plan, plan


# --- filters: days on the clinic's clocks, and who submitted ---------------

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.usefixtures("clinic_zone")
@pytest.mark.parametrize(
    ("day", "inside", "outside"),
    [
        # Summer time begins: 29 March 2026 is 23 hours long in Copenhagen.
        (
            "2026-03-29",
            ["2026-03-28T23:00:00+00:00", "2026-03-29T21:59:59+00:00"],
            ["2026-03-28T22:59:59+00:00", "2026-03-29T22:00:00+00:00"],
        ),
        # Summer time ends: 25 October 2026 is 25 hours long.
        (
            "2026-10-25",
            ["2026-10-24T22:00:00+00:00", "2026-10-25T22:59:59+00:00"],
            ["2026-10-24T21:59:59+00:00", "2026-10-25T23:00:00+00:00"],
        ),
    ],
)
def test_a_day_is_the_clinics_whole_day_across_dst(
    clinician_client, clinician, day, inside, outside
):
    records = {
        when: make_interaction(clinician, created_at=at(when))
        for when in inside + outside
    }
    response = clinician_client.get(LIST, {"submitted_from": day, "submitted_to": day})
    assert set(listed(response)) == {records[when].pk for when in inside}


@pytest.mark.usefixtures("clinic_zone")
def test_a_range_includes_both_days(clinician_client, clinician):
    first = make_interaction(clinician, created_at=at("2026-11-02T00:30:00+01:00"))
    last = make_interaction(clinician, created_at=at("2026-11-04T23:30:00+01:00"))
    make_interaction(clinician, created_at=at("2026-11-05T00:00:00+01:00"))
    make_interaction(clinician, created_at=at("2026-11-01T23:59:00+01:00"))
    response = clinician_client.get(
        LIST, {"submitted_from": "2026-11-02", "submitted_to": "2026-11-04"}
    )
    assert set(listed(response)) == {first.pk, last.pk}


def error_beside(response, field: str) -> str:
    from tests.support.pages import parse

    area = parse(page(response)).find(id=f"id_{field}-errors")
    return area.text.strip() if area else ""


def page(response) -> str:
    return response.content.decode()


def test_a_bad_date_is_named_beside_its_field_and_not_applied(
    clinician_client, clinician
):
    record = make_interaction(clinician)
    response = clinician_client.get(LIST, {"submitted_from": "30-11-2026"})
    assert response.status_code == 200
    assert error_beside(response, "submitted_from") == "Enter a date as 2026-11-30."
    assert listed(response) == [record.pk]
    # What was typed stays in the field.
    assert 'value="30-11-2026"' in page(response)


def test_a_reversed_range_says_so_beside_the_last_day(clinician_client, clinician):
    response = clinician_client.get(
        LIST, {"submitted_from": "2026-11-05", "submitted_to": "2026-11-01"}
    )
    assert "before the first" in error_beside(response, "submitted_to")


def test_htmx_answers_carry_the_errors_out_of_band(clinician_client, clinician):
    from tests.support.pages import HTMX

    response = clinician_client.get(LIST, {"submitted_from": "nonsense"}, headers=HTMX)
    html = page(response)
    assert html.lstrip().startswith('<div id="results"')
    assert 'id="id_submitted_from-errors" hx-swap-oob="true"' in html
    assert "Enter a date as 2026-11-30." in html


@pytest.fixture
def two_submitters(clinician, administrator):
    from tests.support.factories import make_user

    other = make_user("other-clinician", password="pw-other-1", role="clinician")
    return {
        "mine": make_interaction(clinician, encounter_identifier="E-MINE"),
        "theirs": make_interaction(other, encounter_identifier="E-THEIRS"),
        "other": other,
    }


def test_clinicians_see_their_own_first_and_may_see_everyones(
    clinician_client, two_submitters
):
    mine, theirs = two_submitters["mine"].pk, two_submitters["theirs"].pk
    assert set(listed(clinician_client.get(LIST))) == {mine}
    assert set(listed(clinician_client.get(LIST, {"by": "all"}))) == {mine, theirs}
    # A clinician cannot pick someone else by id.
    other = two_submitters["other"].pk
    response = clinician_client.get(LIST, {"by": str(other)})
    assert error_beside(response, "by") == "Choose yourself or anyone."


def test_administrators_see_everyone_and_may_pick_one_user(
    admin_client_, two_submitters
):
    mine, theirs = two_submitters["mine"].pk, two_submitters["theirs"].pk
    assert set(listed(admin_client_.get(LIST))) == {mine, theirs}
    other = two_submitters["other"].pk
    picked = admin_client_.get(LIST, {"by": str(other)})
    assert set(listed(picked)) == {theirs}
    assert f'<option value="{other}" selected>' in page(picked)


def test_the_export_follows_the_list_filters(admin_client_, two_submitters):
    import csv
    import io

    other = two_submitters["other"].pk
    response = admin_client_.get("/interactions/export.csv", {"by": str(other)})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response).decode("utf-8-sig"))))
    assert [row["Encounter identifier"] for row in rows] == ["E-THEIRS"]


# --- found by review (issue 14): never another patient's rows, never a 500 --


def test_a_short_number_never_lists_another_patient_by_its_id(
    clinician_client, clinician
):
    patient = make_interaction(
        clinician, patient_identifier="4711", encounter_identifier="E-1"
    )
    other = make_interaction(
        clinician,
        patient_identifier="P-9",
        encounter_identifier="E-2",
        patient_name="Wrong Person",
        interaction_id=uuid.UUID("47115555-0000-4000-8000-000000000000"),
    )
    response = clinician_client.get(LIST, {"q": "4711"})
    assert set(listed(response)) == {patient.pk}
    assert other.pk not in found(clinician_client, "ebba")


def test_a_short_id_prefix_with_no_text_match_says_what_it_shows(
    clinician_client, clinician
):
    record = make_interaction(
        clinician,
        patient_identifier="P-9",
        encounter_identifier="E-2",
        patient_name="",
        interaction_id=uuid.UUID("abcd1234-0000-4000-8000-000000000000"),
    )
    response = clinician_client.get(LIST, {"q": "abcd"})
    assert listed(response) == [record.pk]
    assert "No identifier, name or title contains “abcd”" in page(response)
    # Eight characters are an ID prefix beside the text, with no notice.
    response = clinician_client.get(LIST, {"q": "abcd1234"})
    assert listed(response) == [record.pk]
    assert "No identifier, name or title" not in page(response)


def test_the_export_lists_what_the_page_lists_for_a_short_id(admin_client_, clinician):
    import csv
    import io

    make_interaction(
        clinician,
        encounter_identifier="E-ID",
        interaction_id=uuid.UUID("abcd1234-0000-4000-8000-000000000000"),
    )
    make_interaction(clinician, encounter_identifier="E-OTHER", patient_name="")
    response = admin_client_.get("/interactions/export.csv", {"q": "abcd"})
    body = b"".join(response).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["Encounter identifier"] for row in rows] == ["E-ID"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"submitted_to": "9999-12-31"}, "submitted_to", "Enter a day between"),
        ({"submitted_from": "0001-01-01"}, "submitted_from", "Enter a day between"),
        ({"by": "²"}, "by", "Choose yourself, anyone or one user"),
        ({"by": "9" * 30}, "by", "Choose yourself, anyone or one user"),
        ({"status": "bogus"}, "status", "Select a valid choice."),
        ({"outcome": "nope"}, "outcome", "Select a valid choice."),
        ({"type": "zzz"}, "type", "Select a valid choice."),
    ],
)
def test_odd_filter_values_get_a_message_not_a_server_error(
    admin_client_, clinician, settings, params, field, message
):
    settings.TIME_ZONE = "Europe/Berlin"
    make_interaction(clinician)
    admin_client_.raise_request_exception = True
    response = admin_client_.get(LIST, params)
    assert response.status_code == 200
    assert error_beside(response, field).startswith(message)
    export = admin_client_.get("/interactions/export.csv", params)
    assert export.status_code == 200
    b"".join(export)


def test_a_search_of_marks_alone_is_no_search(clinician_client, people):
    response = clinician_client.get(LIST, {"q": "\u0301 \u0308"})
    assert f"{len(people)} submissions." in page(response)
