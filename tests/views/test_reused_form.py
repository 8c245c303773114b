"""A sent form is never silently reused for different data.

Defect 1 of the review: a second POST of a used form address (a bookmark,
a second tab, an old page, a crafted request) with another patient landed on
the first patient's interaction, and the second entry existed nowhere. Now it
is never sent, never dropped: it comes back in a fresh form (new key), the
attempt is on the first record, and the used address shows what was sent,
read-only.
"""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone
from django.utils.html import escape

from intake.enums import ErrorCode
from intake.models import CortiCall, Interaction, InteractionEvent
from tests.support.corti import create_attempts, fault, set_faults
from tests.support.factories import make_interaction
from tests.support.pages import (
    HTMX,
    NEW,
    form_values,
    non_field_errors,
    page,
    parse,
    post_form,
)

pytestmark = pytest.mark.django_db

ANNA = {
    "encounter_identifier": "ENC-6001",
    "encounter_status": "in-progress",
    "encounter_type": "consultation",
    "encounter_started_at": "2026-11-30T09:00",
    "patient_identifier": "PAT-6001",
    "patient_name": "Anna Berg",
}
BO = {
    **ANNA,
    "encounter_identifier": "ENC-6002",
    "patient_identifier": "PAT-6002",
    "patient_name": "Bo Carlsen",
}


def record_of(key) -> Interaction:
    return Interaction.objects.get(submission_key=key)


def corti_encounters(corti) -> list[str]:
    return sorted(i["encounter"]["identifier"] for i in corti.state()["interactions"])


def assert_kept_in_a_fresh_form(html: str, values: dict, old_key) -> str:
    """Every typed value in a form whose key is new; returns that key."""
    shown = form_values(html)
    for name, value in values.items():
        assert shown[name] == value, name
    new_key = shown["submission_key"]
    assert new_key and new_key != str(old_key)
    assert f"?key={new_key}" in html  # the form posts to its own new address
    return new_key


@pytest.fixture
def anna_sent(corti, clinician_client):
    key = uuid.uuid4()
    response = post_form(clinician_client, key, ANNA)
    assert response.status_code == 303
    assert record_of(key).outcome == Interaction.Outcome.CREATED
    return key


# --- the used address ---------------------------------------------------------


def test_used_address_shows_what_was_sent_read_only(clinician_client, anna_sent):
    html = page(clinician_client.get(NEW, {"key": anna_sent}))

    assert "This form was already sent" in html
    assert 'id="intake-form"' not in html
    document = parse(html)
    assert not document.one("main").find_all("input") or (
        not document.find_all(name="encounter_identifier")
    )
    assert "ENC-6001" in html and "Anna Berg" in html
    record = record_of(anna_sent)
    assert record.get_absolute_url() in html
    assert f'href="{NEW}"' in html  # "Start a new intake"


def test_start_new_intake_keeps_the_deep_link_but_not_the_key(
    clinician_client, anna_sent
):
    deep_link = {"key": anna_sent, "patient_identifier": "PAT-9", "patient_name": "Å"}
    response = clinician_client.get(NEW, deep_link, follow=True)
    html = page(response)
    # The address holds only the used key; the details were kept with it.
    assert response.redirect_chain[-1][0] == f"{NEW}?key={anna_sent}"
    link = parse(html).one(id="start-new").attrs["href"]
    assert link.startswith(f"{NEW}?key=") and str(anna_sent) not in link
    assert "PAT-9" not in link
    values = form_values(page(clinician_client.get(link)))
    assert (values["patient_identifier"], values["patient_name"]) == ("PAT-9", "Å")
    assert values["submission_key"] != str(anna_sent)


# --- POSTs of a used key -------------------------------------------------------


def test_same_details_again_is_the_same_answer_as_before(
    corti, clinician_client, anna_sent
):
    response = post_form(clinician_client, anna_sent, ANNA)

    assert response.status_code == 303
    assert response["Location"] == record_of(anna_sent).get_absolute_url()
    assert create_attempts(corti.state()) == 1
    followed = page(clinician_client.get(response["Location"]))
    assert "This form was already sent" in followed


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_other_details_are_not_sent_and_come_back_in_a_fresh_form(
    corti, clinician_client, clinician, anna_sent, htmx
):
    response = post_form(clinician_client, anna_sent, BO, headers=HTMX if htmx else {})

    assert response.status_code == 200
    html = page(response)
    assert "This form was already used for ENC-6001 (PAT-6001)." in html
    assert "Your entry for ENC-6002 was not sent." in html
    new_key = assert_kept_in_a_fresh_form(html, BO, anna_sent)
    if htmx:
        assert response["HX-Replace-Url"] == f"{NEW}?key={new_key}"
    # Nothing reached Corti; Anna's record is untouched.
    assert corti_encounters(corti) == ["ENC-6001"]
    anna = record_of(anna_sent)
    assert (anna.encounter_identifier, anna.patient_name) == ("ENC-6001", "Anna Berg")
    # The attempt is on Anna's record.
    [event] = InteractionEvent.objects.filter(interaction=anna)
    assert event.kind == InteractionEvent.Kind.REUSED_FORM_REFUSED
    assert event.user == clinician
    assert event.detail["encounter_identifier"] == "ENC-6002"
    detail = page(clinician_client.get(anna.get_absolute_url()))
    assert "Form sent again with other details; not sent" in detail
    assert "ENC-6002" in detail

    # The fresh form sends Bo's entry as its own interaction.
    sent = post_form(clinician_client, new_key, BO)
    assert sent.status_code == 303
    assert corti_encounters(corti) == ["ENC-6001", "ENC-6002"]
    assert record_of(new_key).patient_name == "Bo Carlsen"


def test_a_crafted_post_of_another_clinicians_key_changes_nothing(
    corti, client, other_clinician, anna_sent
):
    client.force_login(other_clinician)

    html = page(post_form(client, anna_sent, BO))

    assert "Your entry for ENC-6002 was not sent." in html
    assert corti_encounters(corti) == ["ENC-6001"]
    assert record_of(anna_sent).submitted_by.username == "clin"


def test_other_details_while_the_first_post_is_in_flight(corti, clinician_client):
    key = uuid.uuid4()
    make_interaction(
        clinician_client.session and _user(clinician_client),
        outcome=Interaction.Outcome.PENDING,
        submission_key=key,
        encounter_identifier="ENC-6001",
        encounter_status="in-progress",
        encounter_type="consultation",
        encounter_started_at="2026-11-30T08:00:00Z",
        patient_identifier="PAT-6001",
        time_zone="UTC",
        request_body={"encounter": {"identifier": "ENC-6001"}},
    )

    response = post_form(clinician_client, key, BO)

    # No wait for the first answer: other details are refused at once.
    assert "Your entry for ENC-6002 was not sent." in page(response)
    assert create_attempts(corti.state()) == 0


def _user(client):
    from django.contrib.auth import get_user

    return get_user(client)


# --- correcting a failed submission ---------------------------------------------


@pytest.fixture
def anna_failed(corti, clinician_client):
    set_faults(corti, fault("403", count=1))
    key = uuid.uuid4()
    html = page(post_form(clinician_client, key, ANNA))
    assert "Not created in Corti" in html
    assert record_of(key).outcome == Interaction.Outcome.FAILED
    return key


def test_the_submitter_may_correct_a_failed_submission(
    corti, clinician_client, anna_failed
):
    html = page(clinician_client.get(NEW, {"key": anna_failed}))
    assert form_values(html)["patient_name"] == "Anna Berg"

    response = post_form(
        clinician_client, anna_failed, {**ANNA, "encounter_title": "Fix"}
    )

    assert response.status_code == 303
    record = record_of(anna_failed)
    assert (record.outcome, record.encounter_title) == (
        Interaction.Outcome.CREATED,
        "Fix",
    )
    assert corti_encounters(corti) == ["ENC-6001"]


def test_another_clinician_may_not_correct_or_resend_it(
    corti, client, other_clinician, anna_failed
):
    client.force_login(other_clinician)

    # The used address is read-only for them.
    html = page(client.get(NEW, {"key": anna_failed}))
    assert 'name="encounter_identifier"' not in html
    assert "only clin, who sent it, or an administrator" in html
    # A crafted POST with other details, or the same ones, changes nothing.
    for values in (BO, ANNA):
        html = page(post_form(client, anna_failed, values))
        assert "was not sent" in html
        assert_kept_in_a_fresh_form(html, values, anna_failed)
    # Nor does the retry address.
    record = record_of(anna_failed)
    response = client.post(f"/interactions/{record.pk}/retry/", follow=True)
    assert "Only clin, who submitted it, or an administrator" in page(response)

    record.refresh_from_db()
    assert (record.outcome, record.submitted_by.username) == (
        Interaction.Outcome.FAILED,
        "clin",
    )
    assert create_attempts(corti.state()) == 1  # the first, failed one
    assert record.events.count() == 2


def test_an_administrator_may_correct_anyones_failed_submission(
    corti, client, administrator, anna_failed
):
    client.force_login(administrator)

    response = post_form(client, anna_failed, {**ANNA, "encounter_title": "By admin"})

    assert response.status_code == 303
    record = record_of(anna_failed)
    assert record.outcome == Interaction.Outcome.CREATED
    # Still the clinician's submission; the call says who sent it again.
    assert record.submitted_by.username == "clin"
    assert record.calls.filter(kind=CortiCall.Kind.CREATE).last().user == administrator


# --- a record Corti refused -----------------------------------------------------


@pytest.fixture
def anna_invalid(corti, clinician_client):
    set_faults(corti, fault("400", count=1))
    key = uuid.uuid4()
    post_form(clinician_client, key, ANNA)
    record = record_of(key)
    assert record.error_code == ErrorCode.INVALID
    return record


def test_an_invalid_record_is_not_resent_unchanged_through_its_retry_address(
    corti, clinician_client, anna_invalid
):
    response = clinician_client.post(
        f"/interactions/{anna_invalid.pk}/retry/", follow=True
    )

    assert "sending them unchanged cannot work" in page(response)
    assert create_attempts(corti.state()) == 1
    anna_invalid.refresh_from_db()
    assert anna_invalid.outcome == Interaction.Outcome.FAILED


def test_an_invalid_record_is_not_resent_unchanged_through_its_form(
    corti, clinician_client, anna_invalid
):
    html = page(post_form(clinician_client, anna_invalid.submission_key, ANNA))

    assert any(
        "Corti refused exactly these details" in e for e in non_field_errors(html)
    )
    assert create_attempts(corti.state()) == 1
    # Corrected, it goes.
    response = post_form(
        clinician_client,
        anna_invalid.submission_key,
        {**ANNA, "encounter_identifier": "ENC-6001-b"},
    )
    assert response.status_code == 303
    assert create_attempts(corti.state()) == 2


# --- the unknown outcome ----------------------------------------------------------


@pytest.fixture
def anna_lost(corti, clinician_client, settings):
    """Anna's form, sent; Corti's answer lost (a 504), not created."""
    settings.INTAKE_SETTLE_SECONDS = 120
    set_faults(corti, fault("504", count=1))
    key = uuid.uuid4()
    response = post_form(clinician_client, key, ANNA)
    assert response.status_code == 303
    record = record_of(key)
    assert record.outcome == Interaction.Outcome.UNKNOWN
    return record


def poll_address(client, record: Interaction) -> str:
    html = page(client.get(record.get_absolute_url()))
    return parse(html).find(hx_get=True).attrs["hx-get"]


def test_while_unknown_the_address_is_read_only_and_nothing_is_resent(
    corti, clinician_client, anna_lost
):
    key = anna_lost.submission_key
    detail = page(clinician_client.get(anna_lost.get_absolute_url()))
    assert "Checking with Corti" in detail
    assert "Retry" not in detail and "Correct and send again" not in detail

    html = page(clinician_client.get(NEW, {"key": key}))
    assert "checking with Corti" in html
    assert 'name="encounter_identifier"' not in html
    post_form(clinician_client, key, ANNA)
    html = page(post_form(clinician_client, key, BO))
    assert "Your entry for ENC-6002 was not sent." in html
    assert create_attempts(corti.state()) == 1


def test_detail_page_of_an_unknown_record_never_calls_corti(
    corti, clinician_client, anna_lost
):
    record = anna_lost
    Interaction.objects.filter(pk=record.pk).update(next_check_at=record.created_at)
    before = corti.state()["counts"]
    calls_before = record.calls.count()

    for _ in range(20):
        html = page(clinician_client.get(record.get_absolute_url()))
        assert "Checking with Corti" in html
        assert 'hx-trigger="every 3s"' in html

    assert corti.state()["counts"] == before
    assert record.calls.count() == calls_before
    from tests.support.tasks import queued

    # At most one task queued for all those views.
    assert len(queued("settle_interaction", record)) <= 2


def test_polling_an_unchanged_record_answers_204(corti, clinician_client, anna_lost):
    record = anna_lost
    poll = poll_address(clinician_client, record)

    assert clinician_client.get(poll, headers=HTMX).status_code == 204
    Interaction.objects.filter(pk=record.pk).update(
        outcome=Interaction.Outcome.CREATED,
        interaction_id=uuid.uuid4(),
        updated_at=timezone.now(),
    )
    swapped = clinician_client.get(poll, headers=HTMX)
    assert swapped.status_code == 200
    assert "Created in Corti" in page(swapped)
    assert "every 3s" not in page(swapped)


def test_escaped_everywhere(corti, clinician_client, anna_sent):
    hostile = {**BO, "patient_name": "<script>alert(1)</script>"}
    html = page(post_form(clinician_client, anna_sent, hostile))
    assert "<script>alert(1)</script>" not in html
    assert escape("<script>alert(1)</script>") in html


def test_polling_does_not_count_as_activity(corti, clinician_client, anna_lost):
    """A page left open on "Checking with Corti…" must still sign out when idle."""
    from intake import sessions

    record = anna_lost
    poll = poll_address(clinician_client, record)
    session = clinician_client.session
    session[sessions.LAST_SEEN] = session[sessions.LAST_SEEN] - 600
    session.save()
    idle_since = clinician_client.session[sessions.LAST_SEEN]

    assert clinician_client.get(poll, headers=HTMX).status_code == 204

    assert clinician_client.session[sessions.LAST_SEEN] == idle_since
    # An ordinary page view does count.
    clinician_client.get(record.get_absolute_url())
    assert clinician_client.session[sessions.LAST_SEEN] > idle_since


def test_the_refused_attempt_is_in_the_admin_record(
    corti, clinician_client, client, administrator, anna_sent
):
    post_form(clinician_client, anna_sent, BO)
    client.force_login(administrator)

    html = page(
        client.get(f"/admin/intake/interaction/{record_of(anna_sent).pk}/change/")
    )

    assert "Other events" in html
    assert "Form sent again with other details; not sent" in html
    assert "ENC-6002" in html


def test_typing_kept_over_a_sign_out_for_a_form_sent_meanwhile_comes_back_fresh(
    corti, clinician_client
):
    """Two tabs on one form; the second's typing was kept over an idle sign-out.

    The first tab sent the form meanwhile: what the second had typed comes
    back in a new form, never over the first's record.
    """
    from intake import sessions

    response = clinician_client.get(NEW, follow=True)
    key = form_values(page(response))["submission_key"]
    assert post_form(clinician_client, key, ANNA).status_code == 303  # the first tab
    session = clinician_client.session
    session[sessions.LAST_SEEN] -= sessions.idle_timeout() + 5
    session.save()
    # The second tab posts as the session ends: kept, not sent.
    assert post_form(clinician_client, key, BO).status_code == 302
    clinician_client.post(
        "/accounts/login/",
        {"username": "clin", "password": "pw-clinician-1", "next": f"{NEW}?key={key}"},
    )

    html = page(clinician_client.get(NEW, {"key": key}))

    assert "You were signed out at" in html
    assert "the form you had open was sent meanwhile, for ENC-6001 (PAT-6001)" in html
    assert "Your entry for ENC-6002 was not sent." in html
    assert_kept_in_a_fresh_form(html, BO, key)
    assert corti_encounters(corti) == ["ENC-6001"]
    assert record_of(key).patient_name == "Anna Berg"


def test_the_no_javascript_refresh_is_not_activity_either(
    corti, clinician_client, anna_lost
):
    from intake import sessions

    html = page(clinician_client.get(anna_lost.get_absolute_url()))
    content = parse(html).one("meta", http_equiv="refresh").attrs["content"]
    assert content.startswith("5; url="), content
    refresh = content.removeprefix("5; url=")
    session = clinician_client.session
    session[sessions.LAST_SEEN] -= 600
    session.save()
    idle_since = clinician_client.session[sessions.LAST_SEEN]

    assert clinician_client.get(refresh).status_code == 200

    assert clinician_client.session[sessions.LAST_SEEN] == idle_since
