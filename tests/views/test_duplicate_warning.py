"""Warn before a likely duplicate (issue 11, item 1).

A second interaction for an encounter identifier that already has a created
one, or for the same patient with an encounter started within the hour, is
asked about first; one press on "Create another one" goes on. Nothing is
sent to Corti before that press, and nothing ever blocks a deliberate second
interaction.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from intake.models import Interaction
from tests.support.corti import create_attempts, fault, set_faults
from tests.support.pages import HTMX, form_values, page, post_new_form

pytestmark = pytest.mark.django_db

#: The answer to "Create another one?".
CONFIRMED = {"confirm_duplicate": "1"}

FIRST = {
    "encounter_identifier": "ENC-4001",
    "encounter_status": "in-progress",
    "encounter_type": "consultation",
    "encounter_started_at": "2026-11-30T10:00",
    "patient_identifier": "PAT-4001",
    "patient_name": "Ada Lovelace",
}


@pytest.fixture
def first(corti, clinician_client):
    response, key = post_new_form(clinician_client, FIRST)
    assert response.status_code == 303
    return Interaction.objects.get(submission_key=key)


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_the_same_encounter_again_is_asked_about_and_nothing_is_sent(
    corti, clinician_client, first, htmx
):
    response, key = post_new_form(clinician_client, FIRST, headers=HTMX if htmx else {})

    assert response.status_code == 200
    html = page(response)
    assert "An interaction for ENC-4001 already exists, created " in html
    assert "by clin (" in html
    assert f'href="{first.get_absolute_url()}">open it</a>' in html
    assert "Create another one?" in html
    assert 'name="confirm_duplicate" value="1"' in html
    # Everything typed is still in the form, with the same key.
    values = form_values(html)
    assert values["submission_key"] == str(key)
    assert values["patient_name"] == "Ada Lovelace"
    assert create_attempts(corti.state()) == 1
    assert not Interaction.objects.filter(submission_key=key).exists()


def test_one_press_on_create_another_one_creates_it(corti, clinician_client, first):
    _, key = post_new_form(clinician_client, FIRST)

    response, _ = post_new_form(clinician_client, {**FIRST, **CONFIRMED}, key=key)

    assert response.status_code == 303
    second = Interaction.objects.get(submission_key=key)
    assert second.outcome == Interaction.Outcome.CREATED
    assert second.interaction_id != first.interaction_id
    assert create_attempts(corti.state()) == 2


def test_the_same_patient_within_the_hour_is_asked_about(
    corti, clinician_client, first
):
    later = {**FIRST, "encounter_identifier": "ENC-4002"}
    later["encounter_started_at"] = "2026-11-30T10:45"

    response, _ = post_new_form(clinician_client, later)

    html = page(response)
    assert "An interaction for patient PAT-4001 with an encounter started " in html
    assert "(ENC-4001) already exists" in html
    assert create_attempts(corti.state()) == 1


@pytest.mark.parametrize(
    "change",
    [
        {
            "encounter_identifier": "ENC-4002",
            "encounter_started_at": "2026-11-30T11:01",
        },
        {"encounter_identifier": "ENC-4002", "patient_identifier": "PAT-9"},
        {
            "encounter_identifier": "ENC-4002",
            "patient_identifier": "",
            "patient_name": "",
        },
    ],
    ids=["same patient, an hour later", "another patient", "no patient"],
)
def test_no_question_when_nothing_looks_the_same(
    corti, clinician_client, first, change
):
    response, _ = post_new_form(clinician_client, {**FIRST, **change})

    assert response.status_code == 303
    assert create_attempts(corti.state()) == 2


@pytest.mark.parametrize("outcome", ["failed", "unknown", "pending"])
def test_only_a_created_interaction_counts(corti, clinician_client, first, outcome):
    Interaction.objects.filter(pk=first.pk).update(outcome=outcome)

    response, _ = post_new_form(clinician_client, FIRST)

    assert response.status_code == 303


def test_the_same_form_sent_again_is_never_asked_about(corti, clinician_client, first):
    response, _ = post_new_form(clinician_client, FIRST, key=first.submission_key)

    assert response.status_code == 303
    assert response["Location"] == first.get_absolute_url()
    assert create_attempts(corti.state()) == 1


def test_a_failed_first_try_then_corrected_is_never_asked_about_itself(
    corti, clinician_client
):
    set_faults(corti, fault("403", count=1))
    _, key = post_new_form(clinician_client, FIRST)

    response, _ = post_new_form(clinician_client, FIRST, key=key)

    assert response.status_code == 303
    assert Interaction.objects.get(submission_key=key).outcome == "created"


def test_the_check_is_one_query_on_three_indexes(corti, clinician_client, first):
    from django.db import transaction

    from intake.fields import InteractionDetails
    from intake.services.interactions import interaction_likely_duplicate

    started = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    with CaptureQueriesContext(connection) as queries:
        interaction_likely_duplicate(
            submission_key=uuid.uuid4(),
            details=InteractionDetails(
                encounter_identifier="ENC-NONE",
                encounter_status="in-progress",
                encounter_type="consultation",
                patient_identifier="PAT-NONE",
                encounter_started_at=started,
            ),
        )
    # The key, the encounter and the patient, asked at once.
    assert len(queries) == 1
    sql = queries[0]["sql"]
    # Each OR-ed term is answered from its own index, never by walking the
    # created rows (the outcome index), whatever the history's size.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A near-empty table would be read whole: ask for the indexed plan.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = " ".join(str(row) for row in cursor.fetchall())
    for index in ("interaction_encounter_idx", "interaction_patient_idx"):
        assert index in plan, plan
    assert "submission_key" in plan, plan
    assert "interaction_outcome_idx" not in plan
    assert "interaction_settle_idx" not in plan
