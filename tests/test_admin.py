import re
import uuid

import pytest

from intake.models import Interaction
from tests.support import factories
from tests.support.pages import page, parse

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/intake/interaction/"


#: The change page of a record in the changelist (the group: its id).
CHANGE_LINK = re.compile(r"/admin/intake/interaction/([0-9a-f-]{36})/change/")


def record_in_utc(user, **fields) -> Interaction:
    """A record as the factory makes it, typed in UTC."""
    return factories.make_interaction(user, **{"time_zone": "UTC", **fields})


@pytest.fixture
def records(clinician):
    return {
        "ada": record_in_utc(
            clinician, encounter_identifier="ENC-A", patient_identifier="PAT-1001"
        ),
        "grace": record_in_utc(
            clinician, encounter_identifier="ENC-G", patient_identifier="PAT-2002"
        ),
        "failed": record_in_utc(
            clinician,
            encounter_identifier="ENC-F",
            outcome=Interaction.Outcome.FAILED,
            interaction_id=None,
            error_request_id="req-admin-1",
        ),
    }


def listed(response) -> set[uuid.UUID]:
    return {
        uuid.UUID(match.group(1))
        for link in parse(page(response)).find_all("a", href=True)
        if (match := CHANGE_LINK.match(link.attrs["href"] or ""))
    }


def change_url(record: Interaction) -> str:
    return f"{CHANGELIST}{record.pk}/change/"


def test_changelist_lists_every_interaction(admin_client_, records):
    response = admin_client_.get(CHANGELIST)

    assert response.status_code == 200
    assert listed(response) == {r.pk for r in records.values()}


def test_changelist_has_a_search_box(admin_client_, records):
    html = admin_client_.get(CHANGELIST).content.decode()

    assert 'id="searchbar"' in html
    assert 'name="q"' in html


@pytest.mark.parametrize(
    ("q", "key"),
    [
        ("PAT-2002", "grace"),
        ("1001", "ada"),
        ("ENC-F", "failed"),
        ("req-admin-1", "failed"),
    ],
)
def test_changelist_search_finds_the_interaction(admin_client_, records, q, key):
    response = admin_client_.get(CHANGELIST, {"q": q})

    assert response.status_code == 200
    assert listed(response) == {records[key].pk}


def test_changelist_search_by_corti_interaction_id(admin_client_, records):
    response = admin_client_.get(CHANGELIST, {"q": str(records["ada"].interaction_id)})

    assert listed(response) == {records["ada"].pk}


def test_changelist_search_by_submitting_user(admin_client_, records, administrator):
    mine = record_in_utc(administrator, encounter_identifier="ENC-BOSS")

    response = admin_client_.get(CHANGELIST, {"q": "boss"})

    assert listed(response) == {mine.pk}


@pytest.mark.parametrize(
    ("outcome", "keys"),
    [("failed", {"failed"}), ("created", {"ada", "grace"})],
)
def test_changelist_filters_by_outcome(admin_client_, records, outcome, keys):
    response = admin_client_.get(CHANGELIST, {"outcome__exact": outcome})

    assert response.status_code == 200
    assert listed(response) == {records[k].pk for k in keys}


def test_changelist_has_no_add_button(admin_client_, records):
    html = admin_client_.get(CHANGELIST).content.decode()

    assert f'href="{CHANGELIST}add/"' not in html
    assert "addlink" not in html


def test_add_page_is_forbidden(admin_client_):
    assert admin_client_.get(f"{CHANGELIST}add/").status_code == 403


def test_change_page_is_read_only(admin_client_, records):
    record = records["failed"]

    response = admin_client_.get(change_url(record))

    assert response.status_code == 200
    html = response.content.decode()
    assert "ENC-F" in html
    assert "req-admin-1" in html
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert 'name="encounter_identifier"' not in html


def test_change_page_ignores_a_posted_edit(admin_client_, records):
    record = records["ada"]

    response = admin_client_.post(
        change_url(record), {"encounter_identifier": "TAMPERED"}
    )

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.encounter_identifier == "ENC-A"


def test_delete_is_forbidden(admin_client_, records):
    record = records["ada"]
    url = f"{CHANGELIST}{record.pk}/delete/"

    assert admin_client_.get(url).status_code == 403
    assert admin_client_.post(url, {"post": "yes"}).status_code == 403
    assert Interaction.objects.filter(pk=record.pk).exists()


def test_change_page_has_no_delete_link(admin_client_, records):
    html = admin_client_.get(change_url(records["ada"])).content.decode()

    assert "deletelink" not in html


def test_bulk_delete_action_is_not_offered(admin_client_, records):
    html = admin_client_.get(CHANGELIST).content.decode()

    assert "delete_selected" not in html


def test_admin_entry_names_no_patient_data(records):
    record = records["ada"]

    assert str(record) == f"Interaction {record.interaction_id} (created)"
    assert "PAT-1001" not in str(record)


# --- hostile query strings: an answer, never a server error -------------------

#: Date-hierarchy and filter parameters no calendar has, and other nonsense.
HOSTILE_QUERIES = [
    "{d}__year=99999999999999999",
    "{d}__year=99999999999999999999999999999999999999",
    "{d}__year=9999",
    "{d}__year=9999&{d}__month=12",
    "{d}__year=9999&{d}__month=12&{d}__day=31",
    "{d}__year=10000",
    "{d}__year=1",
    "{d}__year=1&{d}__month=1&{d}__day=1",
    "{d}__year=0",
    "{d}__year=-1",
    "{d}__year=2026&{d}__month=13",
    "{d}__year=2026&{d}__month=0",
    "{d}__year=2026&{d}__month=1&{d}__day=0",
    "{d}__year=2026&{d}__month=2&{d}__day=30",
    "{d}__year=abc",
    "{d}__year=2026&{d}__month=abc",
    "{d}__year=&{d}__month=",
    "{d}__month=13",
    "{d}__day=0",
    "{d}__day=99999999999999999999",
    "{d}__gte=0001-01-01&{d}__lt=0001-01-02",
    "{d}__gte=9999-12-31",
    "{d}__gte=99999-01-01",
    "{d}__gte=abc",
    "p=99999999999999999999",
    "p=-1",
    "o=99999999999999999999",
    "o=1.abc",
]
CHANGELISTS = [
    (CHANGELIST, "created_at"),
    ("/admin/axes/accessattempt/", "attempt_time"),
    ("/admin/axes/accesslog/", "attempt_time"),
    ("/admin/axes/accessfailurelog/", "attempt_time"),
    # Django's own admins, made safe the same way (intake.apps).
    ("/admin/auth/user/", "date_joined"),
    ("/admin/auth/user/", "last_login"),
]


# A filter value without a time zone is Django's warning, not an error.
@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
@pytest.mark.parametrize("query", HOSTILE_QUERIES)
@pytest.mark.parametrize(("changelist", "date_field"), CHANGELISTS)
@pytest.mark.slow  # 168 query strings: ~15 s
def test_no_query_string_makes_a_changelist_fail(
    admin_client_, records, clinic_zone, changelist, date_field, query
):
    # East of UTC (clinic_zone): the first day of year 1 would begin in year 0
    # in UTC.
    response = admin_client_.get(
        f"{changelist}?{query.format(d=date_field)}", follow=True
    )

    assert response.status_code < 500
    assert response.status_code in (200, 400)


def test_a_year_past_the_calendar_reloads_the_list_as_a_bad_lookup(
    admin_client_, records
):
    response = admin_client_.get(f"{CHANGELIST}?created_at__year=99999999999999999")

    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?e=1"


def test_a_valid_date_hierarchy_still_narrows_the_list(admin_client_, records):
    response = admin_client_.get(
        f"{CHANGELIST}?created_at__year={records['ada'].created_at.year}"
    )

    assert response.status_code == 200
    assert listed(response) == {record.pk for record in records.values()}


@pytest.mark.django_db
@pytest.mark.usefixtures("clinic_zone")
def test_every_call_to_corti_is_listed_read_only_in_clinic_time(
    admin_client_, clinician
):
    import datetime as dt

    from intake.models import CortiCall

    record = factories.make_interaction(clinician)
    call = CortiCall.objects.create(
        interaction=record,
        kind="create",
        trigger="submit",
        started_at=dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC),
        result="failed",
        error_status=503,
        error_request_id="req-503-abc",
    )
    CortiCall.objects.create(
        interaction=record,
        kind="lookup",
        trigger="worker",
        started_at=dt.datetime(2026, 7, 1, 8, 5, tzinfo=dt.UTC),
        result="found",
    )
    listing = page(admin_client_.get("/admin/intake/corticall/"))
    # 08:00 UTC is 10:00 summer time in Copenhagen, named.
    assert "2026-07-01 10:00:00 CEST" in listing
    found = page(admin_client_.get("/admin/intake/corticall/", {"q": "req-503-abc"}))
    assert '<td class="field-kind">Create</td>' in found
    assert '<td class="field-kind">Lookup</td>' not in found
    change = page(admin_client_.get(f"/admin/intake/corticall/{call.pk}/change/"))
    assert 'name="result"' not in change  # read-only
    assert admin_client_.get("/admin/intake/corticall/add/").status_code == 403


@pytest.mark.django_db
def test_the_record_page_uses_plain_words(admin_client_, clinician):
    record = factories.make_interaction(clinician)
    html = page(admin_client_.get(f"/admin/intake/interaction/{record.pk}/change/"))
    for label in (
        "Local record id:",
        "Form key (one per intake form):",
        "Last changed:",
    ):
        assert label in html
    for jargon in ("Submission key:", "May exist in corti", ">Id:<"):
        assert jargon not in html


def test_the_record_page_lists_its_recordings_read_only(
    admin_client_, clinician, clinic_zone
):
    import datetime as dt

    from intake.models import Recording

    record = factories.make_interaction(clinician)
    at = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
    Recording.objects.create(
        interaction=record,
        started_by=clinician,
        started_at=at,
        consent_at=at,
        consent_wording="The patient agreed to be recorded.",
        language="da",
        mode="facts",
        state=Recording.State.INTERRUPTED,
        failure="reconnect_failed",
        last_seen_at=at,
        seconds_recorded=42.0,
        seconds_lost=3.0,
        reconnects=2,
        tokens_issued=3,
    )
    html = page(admin_client_.get(change_url(record)))
    # Who confirmed the patient's consent, when (clinic time), in which words.
    assert "The patient agreed to be recorded." in html
    assert clinician.get_username() in html
    assert "2026-07-01 10:00:00 CEST" in html
    assert "The connection dropped and could not be made again" in html
    assert "Interrupted" in html
    assert 'name="recordings-0-state"' not in html  # read-only


def test_the_record_page_shows_an_administrator_its_changes(admin_client_, clinician):
    import datetime as dt

    from intake.models import InteractionChange

    record = factories.make_interaction(clinician, encounter_title="Before")
    InteractionChange.objects.create(
        interaction=record,
        at=dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC),
        kind=InteractionChange.Kind.CORRECTED,
        by=clinician,
        before={"encounter_title": "Before"},
        after={"encounter_title": "After the correction"},
    )
    html = page(admin_client_.get(change_url(record)))
    assert "After the correction" in html


def test_a_record_without_recordings_has_no_empty_recordings_table(
    admin_client_, clinician
):
    record = factories.make_interaction(clinician)
    html = page(admin_client_.get(change_url(record)))
    assert 'id="recordings-group"' not in html
    assert 'id="changes-group"' in html
