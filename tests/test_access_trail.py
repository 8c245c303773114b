"""The access trail (issue 14, part 3): who viewed, searched, exported,
retried, corrected, signed in or failed to, when and from where; append-only.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from intake.models import AccessEntry, AppendOnly, Interaction
from tests.support.factories import make_interaction
from tests.support.pages import HTMX

pytestmark = pytest.mark.django_db

Action = AccessEntry.Action
LIST = "/interactions/"
ADDRESS = "203.0.113.7"


def entries(action: str) -> list[AccessEntry]:
    return list(AccessEntry.objects.filter(action=action).order_by("id"))


def test_opening_a_submission_is_a_view_with_its_patient(clinician_client, clinician):
    record = make_interaction(clinician, patient_identifier="PAT-77")
    clinician_client.get(record.get_absolute_url(), REMOTE_ADDR=ADDRESS)

    [view] = entries(Action.VIEWED)
    assert (view.user, view.interaction_id, view.patient_identifier) == (
        clinician,
        record.pk,
        "PAT-77",
    )
    assert view.address == ADDRESS


def test_a_search_keeps_its_kind_never_its_words(clinician_client, clinician):
    make_interaction(clinician, patient_name="Søren Ødegård")
    response = clinician_client.get(LIST, {"q": "Ødegård", "status": "planned"})
    [search] = entries(Action.SEARCHED)
    assert search.detail == {
        "search": "name or title",
        "filters": ["encounter_status", "submitted_by"],
        "found": 1,
        "page": "first",
    }
    assert "degård" not in json.dumps(search.detail, ensure_ascii=False).lower()
    # Every page of it too, whatever the cursor says (a made-up one included).
    clinician_client.get(LIST, {"q": "Ødegård", "older": "not-a-cursor"})
    assert [e.detail["page"] for e in entries(Action.SEARCHED)] == ["first", "older"]
    assert response.status_code == 200


def test_a_sent_forms_address_is_a_view(clinician_client, clinician):
    record = make_interaction(clinician, patient_identifier="PAT-KEY")
    clinician_client.get("/interactions/new/", {"key": str(record.submission_key)})
    [view] = entries(Action.VIEWED)
    assert (view.interaction_id, view.detail) == (record.pk, {"page": "form address"})


def test_the_live_part_is_a_view_only_when_it_shows_something(
    clinician_client, clinician
):
    from django.utils import dateformat

    record = make_interaction(clinician)
    unchanged = dateformat.format(record.updated_at, "U.u")
    answer = clinician_client.get(
        record.get_absolute_url(), {"since": unchanged}, headers=HTMX
    )
    assert answer.status_code == 204
    assert entries(Action.VIEWED) == []
    clinician_client.get(record.get_absolute_url(), {"since": "1"}, headers=HTMX)
    assert len(entries(Action.VIEWED)) == 1


def test_the_admins_record_page_and_search_are_kept(admin_client_, clinician):
    record = make_interaction(clinician, patient_identifier="PAT-ADM")
    admin_client_.get(f"/admin/intake/interaction/{record.pk}/change/")
    admin_client_.get("/admin/intake/interaction/", {"q": "PAT-4711"})
    [view] = entries(Action.VIEWED)
    assert (view.patient_identifier, view.detail) == ("PAT-ADM", {"page": "admin"})
    [search] = entries(Action.SEARCHED)
    assert search.detail == {
        "search": "identifier",
        "page": "admin",
        "model": "interaction",
    }


def test_a_failed_sign_in_is_nobodys_even_from_a_signed_in_browser(
    clinician_client, other_clinician
):
    clinician_client.post(
        "/accounts/login/", {"username": "clin2", "password": "wrong", "next": ""}
    )
    [failed] = entries(Action.SIGN_IN_FAILED)
    assert (failed.user, failed.username) == (None, "clin2")


def test_the_plain_list_is_no_search(clinician_client):
    clinician_client.get(LIST)
    assert entries(Action.SEARCHED) == []


def test_an_export_is_kept_with_what_it_held(admin_client_, clinician):
    make_interaction(clinician)
    response = admin_client_.get("/interactions/export.csv", {"q": "4711"})
    b"".join(response)
    [export] = entries(Action.EXPORTED)
    assert export.detail["search"] == "id prefix or number"
    assert export.user.username == "boss"


def test_a_retry_is_kept(corti, clinician_client, clinician):
    record = make_interaction(
        clinician, outcome=Interaction.Outcome.FAILED, interaction_id=None
    )
    clinician_client.post(f"/interactions/{record.pk}/retry/")
    [retry] = entries(Action.RETRIED)
    assert (retry.interaction_id, retry.detail) == (record.pk, {"result": "sent"})


def test_sign_ins_and_failures_are_kept_without_the_password(client, clinician):
    client.post(
        "/accounts/login/",
        {"username": "clin", "password": "not-it", "next": ""},
        REMOTE_ADDR=ADDRESS,
    )
    client.post(
        "/accounts/login/",
        {"username": "no-such-user", "password": "guess", "next": ""},
        REMOTE_ADDR=ADDRESS,
    )
    client.post(
        "/accounts/login/",
        {"username": "clin", "password": "pw-clinician-1", "next": ""},
        REMOTE_ADDR=ADDRESS,
    )
    failed = entries(Action.SIGN_IN_FAILED)
    assert [(f.username, f.user, f.address) for f in failed] == [
        ("clin", None, ADDRESS),
        ("no-such-user", None, ADDRESS),
    ]
    [signed_in] = entries(Action.SIGNED_IN)
    assert (signed_in.user, signed_in.address) == (clinician, ADDRESS)
    stored = json.dumps([e.detail for e in AccessEntry.objects.all()])
    assert "not-it" not in stored and "guess" not in stored


# --- append-only ------------------------------------------------------------


@pytest.fixture
def entry(clinician) -> AccessEntry:
    return AccessEntry.objects.create(action=Action.VIEWED, user=clinician)


def test_the_app_never_changes_or_removes_an_entry(entry):
    entry.action = Action.EXPORTED
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AccessEntry.objects.filter(pk=entry.pk).update(action=Action.EXPORTED)
    with pytest.raises(AppendOnly):
        AccessEntry.objects.filter(pk=entry.pk).delete()
    assert AccessEntry.objects.get(pk=entry.pk).action == Action.VIEWED


def test_a_new_entry_never_takes_a_stored_ones_place(entry):
    from django.db import IntegrityError

    forged = AccessEntry(pk=entry.pk, action=Action.SIGNED_IN, username="forged")
    with pytest.raises(IntegrityError), transaction.atomic():
        forged.save()
    assert AccessEntry.objects.get(pk=entry.pk).action == Action.VIEWED


def test_the_database_refuses_an_update_from_anyone(entry):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE intake_accessentry SET action = 'exported'")
    assert AccessEntry.objects.get(pk=entry.pk).action == Action.VIEWED


@pytest.mark.parametrize("sql", ["DELETE FROM intake_accessentry"])
def test_postgresql_refuses_a_delete_from_anyone(entry, sql):
    if connection.vendor != "postgresql":
        pytest.skip("a trigger on PostgreSQL; SQLite has the app's guard only")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AccessEntry.objects.get(pk=entry.pk).action == Action.VIEWED


def test_the_admin_shows_the_trail_read_only(admin_client_, entry):
    listing = admin_client_.get("/admin/intake/accessentry/")
    assert listing.status_code == 200
    change = admin_client_.get(f"/admin/intake/accessentry/{entry.pk}/change/")
    assert change.status_code == 200
    assert b'name="action"' not in change.content  # nothing to edit
    assert admin_client_.get("/admin/intake/accessentry/add/").status_code == 403
    delete = admin_client_.post(f"/admin/intake/accessentry/{entry.pk}/delete/")
    assert delete.status_code == 403
    assert AccessEntry.objects.filter(pk=entry.pk).exists()


def test_clinicians_cannot_read_the_trail(clinician_client, entry):
    response = clinician_client.get("/admin/intake/accessentry/")
    assert response.status_code in (302, 403)


def test_the_admin_finds_who_saw_a_patient_and_exports_it(
    admin_client_, clinician, administrator
):
    seen = make_interaction(clinician, patient_identifier="PAT-4242")
    other = make_interaction(clinician, patient_identifier="PAT-9999")
    viewer = Client()
    viewer.force_login(clinician)
    viewer.get(seen.get_absolute_url())
    viewer.get(other.get_absolute_url())

    found = admin_client_.get("/admin/intake/accessentry/", {"q": "PAT-42"})
    assert b"PAT-4242" in found.content and b"PAT-9999" not in found.content

    views = AccessEntry.objects.filter(action=Action.VIEWED, user=clinician)
    response = admin_client_.post(
        "/admin/intake/accessentry/",
        {
            "action": "export_csv",
            "_selected_action": [str(e.pk) for e in views],
        },
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response).decode("utf-8-sig"))))
    assert sorted(row["Patient identifier"] for row in rows) == [
        "PAT-4242",
        "PAT-9999",
    ]
    assert {row["User"] for row in rows} == {"clin"}
    # The export is itself in the trail.
    assert AccessEntry.objects.filter(
        action=Action.EXPORTED, user=administrator, detail={"trail": True}
    ).exists()
