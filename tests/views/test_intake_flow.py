import datetime as dt
import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import responses
from django.utils.html import escape

from intake.corti import clear_clients
from intake.forms import IntakeForm
from intake.models import Interaction
from tests.support.factories import TYPED, make_interaction
from tests.support.pages import (
    HTMX,
    explanation,
    field_errors,
    form_values,
    listed,
    non_field_errors,
    page,
    typed_values_in,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clinic_zone")]

UTC = dt.UTC
NEW = "/interactions/new/"
VALIDATE = "/interactions/new/validate/"
LIST = "/interactions/"

DETAIL_URL = re.compile(r"^/interactions/([0-9a-f-]{36})/$")


# --- the form --------------------------------------------------------------


def test_form_page_has_every_field(clinician_client):
    response = clinician_client.get(NEW, follow=True)

    assert response.status_code == 200
    values = form_values(page(response))
    for name in IntakeForm.base_fields:
        assert name in values, name
    key = values["submission_key"]
    assert str(uuid.UUID(key)) == key
    assert f'action="/interactions/new/?key={key}"' in page(response)


def test_form_address_carries_a_new_submission_key_each_time(clinician_client):
    first = clinician_client.get(NEW)
    second = clinician_client.get(NEW)

    assert first.status_code == second.status_code == 302
    keys = [parse_qs(urlsplit(r["Location"]).query)["key"][0] for r in (first, second)]
    assert keys[0] != keys[1]
    assert urlsplit(first["Location"]).path == NEW


def test_deep_link_keeps_its_values_but_the_address_holds_only_the_key(
    clinician_client,
):
    response = clinician_client.get(NEW, {"encounter_identifier": "X-1"})

    query = parse_qs(urlsplit(response["Location"]).query)
    assert list(query) == ["key"]
    assert uuid.UUID(query["key"][0])
    shown = form_values(page(clinician_client.get(response["Location"])))
    assert shown["encounter_identifier"] == "X-1"


def test_reloading_the_form_address_shows_the_same_key(clinician_client):
    location = clinician_client.get(NEW)["Location"]
    key = parse_qs(urlsplit(location).query)["key"][0]

    for _ in range(2):
        values = form_values(page(clinician_client.get(location)))
        assert values["submission_key"] == key


def test_going_back_to_a_sent_form_shows_what_it_created(corti, clinician_client):
    location = clinician_client.get(NEW)["Location"]
    key = parse_qs(urlsplit(location).query)["key"][0]
    clinician_client.post(location, {**TYPED, "submission_key": key})
    record = Interaction.objects.get(submission_key=key)

    response = clinician_client.get(location)

    html = page(response)
    assert "This form was already sent" in html
    assert str(record.interaction_id) in html
    assert f'href="{record.get_absolute_url()}"' in html
    # What was sent, read-only: no form to change and send it with.
    assert 'id="intake-form"' not in html
    assert "submission_key" not in form_values(html)
    for text in ("ENC-42", "Knee pain", "PAT-7", "Ada Lovelace", "she/her"):
        assert escape(text) in html, text
    assert "Start a new intake" in html
    # Sending it again (the back button, then Enter) creates nothing new.
    again = clinician_client.post(location, {**TYPED, "submission_key": key})
    assert again.status_code == 303
    assert again["Location"] == record.get_absolute_url()
    assert corti.state()["counts"]["created"] == 1


def test_going_back_to_a_failed_form_shows_the_failure_with_the_input(
    corti, clinician_client
):
    location = clinician_client.get(NEW)["Location"]
    key = parse_qs(urlsplit(location).query)["key"][0]
    corti.set_faults({"kind": "403", "count": 1})
    clinician_client.post(location, {**TYPED, "submission_key": key})

    html = page(clinician_client.get(location))

    assert "Not created in Corti" in html
    assert typed_values_in(html) == {**TYPED, "submission_key": key}


def test_malformed_key_in_the_address_gets_a_fresh_one(clinician_client):
    response = clinician_client.get(NEW, {"key": "not-a-uuid"})

    assert response.status_code == 302
    key = parse_qs(urlsplit(response["Location"]).query)["key"]
    assert len(key) == 1
    assert uuid.UUID(key[0])


def test_form_starts_at_the_current_minute_in_clinic_time(clinician_client):
    before = dt.datetime.now(ZoneInfo("Europe/Copenhagen")).replace(
        second=0, microsecond=0, tzinfo=None
    )

    response = clinician_client.get(NEW, follow=True)

    shown = dt.datetime.strptime(
        form_values(page(response))["encounter_started_at"], "%Y-%m-%dT%H:%M"
    )
    assert before <= shown <= before + dt.timedelta(minutes=1)


def test_valid_submission_creates_the_interaction_and_redirects(
    corti, clinician_client
):
    response = clinician_client.post(NEW, TYPED)

    assert response.status_code == 303
    match = DETAIL_URL.match(response["Location"])
    assert match, response["Location"]
    record = Interaction.objects.get()
    assert uuid.UUID(match.group(1)) == record.pk
    assert record.outcome == Interaction.Outcome.CREATED
    [created] = corti.state()["interactions"]
    assert uuid.UUID(created["id"]) == record.interaction_id
    # Clinic time 10:00 in January is 09:00 UTC.
    assert created["encounter"]["period"] == {
        "startedAt": "2026-01-15T09:00:00Z",
        "endedAt": "2026-01-15T09:45:00Z",
    }


def test_detail_page_after_submission_shows_corti_answer_and_what_was_sent(
    corti, clinician_client
):
    location = clinician_client.post(NEW, TYPED)["Location"]

    response = clinician_client.get(location)

    assert response.status_code == 200
    html = page(response)
    record = Interaction.objects.get()
    assert str(record.interaction_id) in html
    assert record.websocket_url
    assert escape(record.websocket_url) in html
    assert 'data-copy-target="interaction-id"' in html
    assert 'data-copy-target="websocket-url"' in html
    assert "Copy ID" in html
    assert "Copy URL" in html
    for text in (
        "ENC-42",
        "In progress",
        "First consultation",
        "Knee pain",
        "2026-01-15 10:00",
        "2026-01-15 10:45",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "PAT-7",
        "Ada Lovelace",
        "Female",
        "1980-04-23",
        "she/her",
        "clin",
    ):
        assert escape(text) in html, text
    assert escape(json.dumps(record.request_body, indent=2)) in html


def test_detail_page_after_submission_confirms_once(corti, clinician_client):
    response = clinician_client.post(NEW, TYPED, follow=True)

    assert "Interaction created in Corti." in page(response)
    again = clinician_client.get(response.redirect_chain[-1][0])
    assert "Interaction created in Corti." not in page(again)


def test_htmx_submission_answers_with_a_client_redirect(corti, clinician_client):
    response = clinician_client.post(NEW, TYPED, headers=HTMX)

    assert response.status_code == 200
    record = Interaction.objects.get()
    assert response["HX-Redirect"] == f"/interactions/{record.pk}/"
    assert corti.state()["counts"]["created"] == 1


def test_invalid_submission_shows_errors_beside_fields_and_keeps_input(
    corti, clinician_client
):
    typed = {
        **TYPED,
        "encounter_status": "",
        "assigned_user_id": "not-a-uuid",
        "encounter_ended_at": "2026-01-15T09:00",
    }

    response = clinician_client.post(NEW, typed)

    assert response.status_code == 200
    html = page(response)
    assert field_errors(html, "encounter_status") == ["Choose the encounter status."]
    assert field_errors(html, "assigned_user_id") == [
        "Enter a valid UUID, like f47ac10b-58cc-4372-a567-0e02b2c3d479."
    ]
    assert field_errors(html, "encounter_ended_at") == [
        "The end must not be before the start (2026-01-15 10:00 CET)."
    ]
    assert field_errors(html, "encounter_identifier") == []
    assert "Please correct the 3 fields marked below" in html
    assert typed_values_in(html) == typed
    assert Interaction.objects.count() == 0
    assert corti.state()["counts"].get("create_requests", 0) == 0


def test_invalid_htmx_submission_renders_only_the_form(corti, clinician_client):
    response = clinician_client.post(
        NEW, {**TYPED, "encounter_identifier": ""}, headers=HTMX
    )

    assert response.status_code == 200
    html = page(response)
    assert "<html" not in html
    assert "sandbox-banner" not in html
    assert html.lstrip().startswith('<form id="intake-form"')
    assert field_errors(html, "encounter_identifier") == [
        "Enter the encounter identifier."
    ]
    assert typed_values_in(html) == {**TYPED, "encounter_identifier": ""}
    assert Interaction.objects.count() == 0


def test_spring_forward_time_is_explained_beside_the_field(corti, clinician_client):
    response = clinician_client.post(
        NEW,
        {
            **TYPED,
            "encounter_started_at": "2026-03-29T02:30",
            "encounter_ended_at": "",
        },
    )

    assert response.status_code == 200
    [error] = field_errors(page(response), "encounter_started_at")
    assert "does not exist in Europe/Copenhagen" in error
    assert Interaction.objects.count() == 0


def test_corti_failure_keeps_input_and_explains_with_the_request_id(
    corti, clinician_client, settings
):
    settings.CORTI_TENANT_NAME = "other"
    clear_clients()

    response = clinician_client.post(NEW, TYPED)

    assert response.status_code == 200
    html = page(response)
    record = Interaction.objects.get()
    assert record.outcome == Interaction.Outcome.FAILED
    assert record.error_code == "forbidden"
    assert typed_values_in(html) == TYPED
    assert explanation("forbidden") in html
    assert record.error_request_id
    assert record.error_request_id in html
    assert f'href="/interactions/{record.pk}/"' in html
    assert corti.state()["counts"].get("created", 0) == 0

    listing = clinician_client.get(LIST)
    assert listed(listing) == [record.pk]
    assert "badge-failed" in page(listing)


def test_corti_failure_over_htmx_renders_the_form_with_the_explanation(
    corti, clinician_client, settings
):
    settings.CORTI_CLIENT_SECRET = "not-the-secret"
    clear_clients()

    response = clinician_client.post(NEW, TYPED, headers=HTMX)

    assert response.status_code == 200
    assert "HX-Redirect" not in response
    html = page(response)
    assert "<html" not in html
    assert explanation("auth") in html
    assert typed_values_in(html) == TYPED


def test_corti_validation_errors_are_shown_beside_the_named_fields(
    corti, clinician_client
):
    problem = {
        "requestid": "req-400-abc",
        "status": 400,
        "type": "https://api.corti.app/problems/bad-request",
        "detail": "The request body does not match the contract.",
        "validationErrors": [
            {"encounter.identifier": "is already in use"},
            {"patient.birthDate": "is implausible"},
            {"encounter.location": "is unknown"},
        ],
    }
    with responses.RequestsMock() as mock:
        # The token comes from the simulator; only the odd answer is mocked.
        mock.add_passthru(corti.auth_url())
        mock.add(
            responses.POST,
            f"{corti.api_url}/interactions/",
            body=json.dumps(problem),
            status=400,
            content_type="application/problem+json",
            headers={"X-Request-Id": "req-400-abc"},
        )

        response = clinician_client.post(NEW, TYPED)

    assert response.status_code == 200
    html = page(response)
    assert field_errors(html, "encounter_identifier") == ["Corti: is already in use"]
    assert field_errors(html, "patient_birth_date") == ["Corti: is implausible"]
    assert field_errors(html, "encounter_type") == []
    assert non_field_errors(html) == ["Corti: encounter.location is unknown"]
    assert explanation("invalid") in html
    assert "req-400-abc" in html
    assert typed_values_in(html) == TYPED
    record = Interaction.objects.get()
    assert record.error_code == "invalid"
    assert record.error_status == 400


# --- live validation -------------------------------------------------------


def test_live_validation_returns_only_that_fields_errors(clinician_client):
    response = clinician_client.post(
        VALIDATE, {"_field": "encounter_identifier", "encounter_identifier": ""}
    )

    assert response.status_code == 200
    html = page(response)
    assert "<html" not in html
    assert html.count('class="field-errors"') == 1
    assert field_errors(html, "encounter_identifier") == [
        "Enter the encounter identifier."
    ]
    # Other fields are empty too, but their errors are not this answer's.
    assert "Choose the encounter status." not in html


def test_live_validation_of_a_valid_field_clears_its_errors(clinician_client):
    response = clinician_client.post(
        VALIDATE, {"_field": "encounter_identifier", "encounter_identifier": "E-1"}
    )

    assert response.status_code == 200
    assert field_errors(page(response), "encounter_identifier") == []


def test_live_validation_of_the_start_refreshes_the_end_out_of_band(
    clinician_client,
):
    response = clinician_client.post(
        VALIDATE,
        {
            **TYPED,
            "_field": "encounter_started_at",
            "encounter_started_at": "2026-01-15T10:00",
            "encounter_ended_at": "2026-01-15T09:00",
        },
    )

    assert response.status_code == 200
    html = page(response)
    assert field_errors(html, "encounter_started_at") == []
    assert 'id="id_encounter_ended_at-errors" hx-swap-oob="true"' in html
    assert field_errors(html, "encounter_ended_at") == [
        "The end must not be before the start (2026-01-15 10:00 CET)."
    ]


def test_live_validation_of_the_start_clears_a_fixed_end_out_of_band(
    clinician_client,
):
    response = clinician_client.post(
        VALIDATE,
        {
            **TYPED,
            "_field": "encounter_started_at",
            "encounter_started_at": "2026-01-15T08:00",
            "encounter_ended_at": "2026-01-15T09:00",
        },
    )

    html = page(response)
    assert 'id="id_encounter_ended_at-errors" hx-swap-oob="true"' in html
    assert field_errors(html, "encounter_ended_at") == []


def test_live_validation_of_another_field_has_no_out_of_band_part(clinician_client):
    response = clinician_client.post(
        VALIDATE, {**TYPED, "_field": "patient_name", "patient_name": "Ada"}
    )

    assert "hx-swap-oob" not in page(response)


@pytest.mark.parametrize("field", ["nonsense", "", "csrfmiddlewaretoken", "q"])
def test_live_validation_of_an_unknown_field_is_a_bad_request(clinician_client, field):
    response = clinician_client.post(VALIDATE, {**TYPED, "_field": field})

    assert response.status_code == 400


def test_live_validation_without_a_field_is_a_bad_request(clinician_client):
    response = clinician_client.post(VALIDATE, TYPED)

    assert response.status_code == 400


def test_live_validation_only_answers_post(clinician_client):
    response = clinician_client.get(VALIDATE, {"_field": "encounter_identifier"})

    assert response.status_code == 405


# --- prefill ---------------------------------------------------------------


def test_deep_link_prefills_the_form_in_clinic_time(clinician_client):
    response = clinician_client.get(
        NEW,
        {
            "encounter_identifier": "X-77",
            "patient_identifier": "Y-88",
            "encounter_status": "planned",
            "encounter_started_at": "2026-06-01T08:00:00Z",
            "smuggled": "INJECTED-VALUE",
        },
        follow=True,
    )

    assert response.status_code == 200
    html = page(response)
    values = form_values(html)
    assert values["encounter_identifier"] == "X-77"
    assert values["patient_identifier"] == "Y-88"
    assert values["encounter_status"] == "planned"
    # 08:00 UTC in June is 10:00 in Copenhagen.
    assert values["encounter_started_at"] == "2026-06-01T10:00"
    assert values["encounter_type"] == ""
    assert "INJECTED-VALUE" not in html
    assert "smuggled" not in html
    # A prefilled form is not a submitted one: no errors yet.
    assert 'class="error"' not in html


def test_deep_link_value_is_escaped(clinician_client):
    response = clinician_client.get(
        NEW, {"encounter_identifier": '"><script>alert(1)</script>'}, follow=True
    )

    html = page(response)
    assert "<script>alert(1)</script>" not in html
    assert form_values(html)["encounter_identifier"] == '"><script>alert(1)</script>'


# --- the list --------------------------------------------------------------


def test_list_shows_newest_first(clinician_client, clinician):
    old = make_interaction(clinician, created_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    new = make_interaction(clinician, created_at=dt.datetime(2026, 3, 1, tzinfo=UTC))
    mid = make_interaction(clinician, created_at=dt.datetime(2026, 2, 1, tzinfo=UTC))

    response = clinician_client.get(LIST)

    assert response.status_code == 200
    assert listed(response) == [new.pk, mid.pk, old.pk]
    assert "3 submissions." in page(response)


@pytest.fixture
def searchable(clinician):
    return {
        "ada": make_interaction(
            clinician,
            encounter_identifier="ENC-ALPHA-1",
            patient_identifier="PAT-1001",
            patient_name="Ada Lovelace",
        ),
        "grace": make_interaction(
            clinician,
            encounter_identifier="ENC-BRAVO-2",
            patient_identifier="PAT-2002",
            patient_name="Grace Hopper",
        ),
        "failed": make_interaction(
            clinician,
            encounter_identifier="ENC-CHARLIE-3",
            outcome=Interaction.Outcome.FAILED,
            interaction_id=None,
            encounter_status="completed",
            encounter_type="emergency",
        ),
    }


def search(client, **params) -> set[uuid.UUID]:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return set(listed(response))


def test_search_by_corti_interaction_id(clinician_client, searchable):
    found = search(clinician_client, q=str(searchable["grace"].interaction_id))

    assert found == {searchable["grace"].pk}


def test_search_by_local_id(clinician_client, searchable):
    found = search(clinician_client, q=f"  {searchable['failed'].pk}  ")

    assert found == {searchable["failed"].pk}


@pytest.mark.parametrize(
    ("q", "key"),
    [
        ("ENC-ALPHA-1", "ada"),
        ("alpha", "ada"),
        ("BRAVO", "grace"),
        ("PAT-1001", "ada"),
        ("2002", "grace"),
        ("Ada Lovelace", "ada"),
        ("lovel", "ada"),
        ("HOPPER", "grace"),
        ("gRaCe", "grace"),
    ],
)
def test_search_by_identifier_or_patient_name_matches_part_of_it(
    clinician_client, searchable, q, key
):
    assert search(clinician_client, q=q) == {searchable[key].pk}


def test_search_that_matches_nothing_says_so(clinician_client, searchable):
    response = clinician_client.get(LIST, {"q": "no-such-thing"})

    assert listed(response) == []
    assert "No submissions match these filters." in page(response)


def test_unknown_uuid_search_matches_nothing(clinician_client, searchable):
    assert search(clinician_client, q=str(uuid.uuid4())) == set()


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"status": "completed"}, "failed"),
        ({"type": "emergency"}, "failed"),
        ({"outcome": "failed"}, "failed"),
    ],
)
def test_filters_narrow_the_list(clinician_client, searchable, params, key):
    assert search(clinician_client, **params) == {searchable[key].pk}


def test_filters_combine_with_search(clinician_client, searchable):
    assert search(clinician_client, q="ENC", outcome="created") == {
        searchable["ada"].pk,
        searchable["grace"].pk,
    }
    assert search(clinician_client, q="ALPHA", outcome="failed") == set()


def test_selected_filters_stay_selected(clinician_client, searchable):
    response = clinician_client.get(LIST, {"status": "completed", "outcome": "failed"})

    values = form_values(page(response))
    assert values["status"] == "completed"
    assert values["outcome"] == "failed"
    assert values["type"] == ""


def older_link(response) -> str | None:
    links = [a for a in links_of(response) if a.get("rel") == "next"]
    return links[0]["href"] if links else None


def newer_link(response) -> str | None:
    links = [a for a in links_of(response) if a.get("rel") == "prev"]
    return links[0]["href"] if links else None


def links_of(response) -> list[dict]:
    from html.parser import HTMLParser

    found: list[dict] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "a":
                found.append(dict(attrs))

    Links().feed(page(response))
    return found


def test_list_is_paginated_by_25_newest_first(clinician_client, clinician):
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    records = [
        make_interaction(clinician, created_at=start + dt.timedelta(minutes=i))
        for i in range(26)
    ]

    first = clinician_client.get(LIST)
    second = clinician_client.get(LIST + older_link(first))

    assert listed(first) == [r.pk for r in reversed(records[1:])]
    assert listed(second) == [records[0].pk]
    assert newer_link(first) is None
    assert older_link(second) is None
    back = clinician_client.get(LIST + newer_link(second))
    assert listed(back) == listed(first)
    assert "26 submissions." in page(first) and "26 submissions." in page(second)


def test_page_links_keep_the_search(clinician_client, clinician):
    for _ in range(26):
        make_interaction(clinician, encounter_identifier="KEEP-ME")

    response = clinician_client.get(LIST, {"q": "KEEP"})

    assert older_link(response).startswith("?q=KEEP&older=")


def test_rows_added_between_pages_never_repeat_or_vanish(clinician_client, clinician):
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    first_batch = [
        make_interaction(clinician, created_at=start + dt.timedelta(minutes=i))
        for i in range(60)
    ]
    seen: list[uuid.UUID] = []
    response = clinician_client.get(LIST)
    seen += listed(response)
    # Newer submissions arrive while the first page is read, and again later.
    for i in range(30):
        make_interaction(clinician, created_at=start + dt.timedelta(hours=5, minutes=i))
    response = clinician_client.get(LIST + older_link(response))
    seen += listed(response)
    make_interaction(clinician, created_at=start + dt.timedelta(hours=9))
    response = clinician_client.get(LIST + older_link(response))
    seen += listed(response)

    assert older_link(response) is None
    assert seen == [r.pk for r in reversed(first_batch)]


def test_same_second_rows_are_paged_by_their_id(clinician_client, clinician):
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    records = [make_interaction(clinician, created_at=at) for _ in range(30)]

    first = clinician_client.get(LIST)
    second = clinician_client.get(LIST + older_link(first))

    assert sorted(listed(first) + listed(second)) == sorted(r.pk for r in records)
    assert not set(listed(first)) & set(listed(second))


@pytest.mark.parametrize("cursor", ["x", "1.2", "99999999999999999999.abc", ""])
def test_an_unreadable_cursor_shows_the_newest_page(
    clinician_client, clinician, cursor
):
    record = make_interaction(clinician)

    for name in ("older", "newer"):
        response = clinician_client.get(LIST, {name: cursor})
        assert response.status_code == 200
        assert listed(response) == [record.pk]


def test_the_count_stops_past_its_limit(clinician_client, clinician, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from intake import selectors

    for _ in range(4):
        make_interaction(clinician)
    with CaptureQueriesContext(connection) as queries:
        assert selectors.count_up_to(Interaction.objects.all(), 3) == 4
    # Counted over at most limit + 1 rows, never the whole table.
    assert "LIMIT 4" in queries[0]["sql"]
    monkeypatch.setattr("intake.views.COUNT_LIMIT", 3)
    response = clinician_client.get(LIST)
    assert "More than 3 submissions." in page(response)
    assert len(listed(response)) == 4


def test_htmx_list_request_returns_only_the_results(clinician_client, searchable):
    response = clinician_client.get(LIST, {"q": "ALPHA"}, headers=HTMX)

    assert response.status_code == 200
    html = page(response)
    assert html.lstrip().startswith('<div id="results"')
    assert "<html" not in html
    assert 'role="search"' not in html
    assert set(listed(response)) == {searchable["ada"].pk}


def test_boosted_list_request_returns_the_whole_page(clinician_client, searchable):
    response = clinician_client.get(LIST, headers={**HTMX, "HX-Boosted": "true"})

    assert "<html" in page(response)


def test_search_text_with_html_is_shown_escaped(clinician_client, searchable):
    q = '"><img src=x onerror=alert(1)>'

    response = clinician_client.get(LIST, {"q": q})

    html = page(response)
    assert "<img src=x onerror=alert(1)>" not in html
    assert escape(q) in html
    assert form_values(html)["q"] == q


# --- detail ----------------------------------------------------------------


def test_detail_is_reachable_by_local_id_and_by_corti_id(clinician_client, clinician):
    record = make_interaction(clinician, encounter_identifier="ENC-DETAIL")

    by_pk = clinician_client.get(f"/interactions/{record.pk}/")
    by_corti = clinician_client.get(f"/interactions/{record.interaction_id}/")

    for response in (by_pk, by_corti):
        assert response.status_code == 200
        assert "ENC-DETAIL" in page(response)
        assert str(record.interaction_id) in page(response)


def test_detail_of_an_unknown_id_is_not_found(clinician_client, clinician):
    make_interaction(clinician)

    assert clinician_client.get(f"/interactions/{uuid.uuid4()}/").status_code == 404
    assert clinician_client.get("/interactions/not-a-uuid/").status_code == 404


def test_detail_of_a_failed_record_shows_the_problem(clinician_client, clinician):
    record = make_interaction(
        clinician,
        outcome=Interaction.Outcome.FAILED,
        interaction_id=None,
        error_code="invalid",
        error_status=400,
        error_message="Corti answered 400: The request body is wrong.",
        error_request_id="req-detail-1",
        error_problem={
            "status": 400,
            "validationErrors": [{"encounter.identifier": "is required"}],
        },
    )

    html = page(clinician_client.get(record.get_absolute_url()))

    assert "Not created in Corti" in html
    assert explanation("invalid") in html
    assert "req-detail-1" in html
    assert "<code>encounter.identifier</code>: is required" in html
    assert "Copy ID" not in html


# --- every page ------------------------------------------------------------


@pytest.fixture
def any_record(clinician):
    return make_interaction(clinician)


PAGES = [NEW, LIST, "detail"]


def get_page(client, path: str, record: Interaction):
    return client.get(
        record.get_absolute_url() if path == "detail" else path, follow=True
    )


@pytest.mark.parametrize("path", PAGES)
def test_sandbox_banner_is_shown_in_sandbox_mode(
    clinician_client, settings, any_record, path
):
    settings.CORTI_SANDBOX = True

    response = get_page(clinician_client, path, any_record)

    assert response.status_code == 200
    assert "Sandbox: not connected to Corti" in page(response)


@pytest.mark.parametrize("path", PAGES)
def test_sandbox_banner_is_absent_when_connected_to_corti(
    clinician_client, settings, any_record, path
):
    settings.CORTI_SANDBOX = False
    settings.CORTI_TENANT_NAME = "clinic-tenant"

    response = get_page(clinician_client, path, any_record)

    assert response.status_code == 200
    assert "Sandbox" not in page(response)
    assert "Corti tenant: clinic-tenant." in page(response)


@pytest.mark.parametrize("sandbox", [True, False])
def test_sandbox_banner_follows_the_setting_on_the_sign_in_page(
    client, settings, sandbox
):
    settings.CORTI_SANDBOX = sandbox

    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert ("Sandbox: not connected to Corti" in page(response)) is sandbox


def test_every_page_names_the_clinic_time_zone(clinician_client):
    assert "Europe/Copenhagen" in page(clinician_client.get(LIST))


def test_health_check_answers_without_login(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"] == "ok"
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]
