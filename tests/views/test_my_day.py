"""A clinician's own day (issue 15, part 6): My day, and the Corti user ID
the intake form's assigned user defaults to."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.utils import timezone

from intake.models import Interaction
from tests.support.factories import make_interaction
from tests.support.pages import page
from tests.support.records import submit

pytestmark = pytest.mark.django_db

CORTI_USER = uuid.UUID("6b0d6f8e-4a8b-4c35-9a53-2c2b1f8e0a11")


def rows_of(html: str) -> list[str]:
    return re.findall(r'<span class="clamp clamp-1" title="(ENC-[^"]+)"', html)


@pytest.mark.usefixtures("clinic_zone")
def test_my_day_lists_my_submissions_of_today_open_ones_first(
    clinician_client, clinician, other_clinician
):
    now = timezone.now()
    make_interaction(
        clinician,
        encounter_identifier="ENC-DONE",
        encounter_status="completed",
        created_at=now - dt.timedelta(minutes=1),
    )
    make_interaction(
        clinician,
        encounter_identifier="ENC-PLANNED",
        encounter_status="planned",
        created_at=now - dt.timedelta(minutes=30),
    )
    make_interaction(
        clinician,
        encounter_identifier="ENC-GOING",
        encounter_status="in-progress",
        created_at=now - dt.timedelta(minutes=5),
    )
    make_interaction(
        clinician,
        encounter_identifier="ENC-YESTERDAY",
        created_at=now - dt.timedelta(days=1, hours=1),
    )
    make_interaction(other_clinician, encounter_identifier="ENC-OTHERS")

    html = page(clinician_client.get("/my-day/"))

    assert rows_of(html) == ["ENC-GOING", "ENC-PLANNED", "ENC-DONE"]
    # One press to end each open one; none for the completed one.
    assert html.count('aria-label="End the encounter') == 2
    assert html.count(">Open</a>") == 3


def test_end_from_my_day_comes_back_to_it(corti, clinician_client, clinician):
    record = submit(clinician).record

    response = clinician_client.post(
        f"/interactions/{record.pk}/end/", {"next": "/my-day/"}
    )

    assert response.status_code == 303 and response["Location"] == "/my-day/"
    html = page(clinician_client.get("/my-day/"))
    assert "ENC-42: Encounter ended in Corti at" in html
    record.refresh_from_db()
    assert record.encounter_status == "completed"


def test_only_my_day_is_a_place_to_come_back_to(corti, clinician_client, clinician):
    record = submit(clinician).record

    response = clinician_client.post(
        f"/interactions/{record.pk}/end/", {"next": "https://evil.example/"}
    )

    assert response["Location"] == record.get_absolute_url()


def test_an_empty_day_says_so_and_offers_a_new_intake(clinician_client):
    html = page(clinician_client.get("/my-day/"))

    assert "Nothing submitted today yet." in html
    assert 'href="/interactions/new/"' in html


def test_home_is_my_day_for_clinicians(clinician_client):
    assert clinician_client.get("/")["Location"] == "/my-day/"


# --- the Corti user ID -----------------------------------------------------


def test_a_user_keeps_their_corti_user_id_and_new_forms_assign_it(clinician_client):
    response = clinician_client.post("/profile/", {"corti_user_id": str(CORTI_USER)})
    assert response.status_code == 303

    form = page(clinician_client.get("/interactions/new/", follow=True))

    assert f'value="{CORTI_USER}"' in form
    # The rarely used group stays closed over the clinician's own ID.
    [group] = re.findall(r'<details class="more-details" id="more-details"[^>]*>', form)
    assert not group.endswith(" open>"), group


def test_a_bad_corti_user_id_is_named_beside_its_field(clinician_client, clinician):
    response = clinician_client.post("/profile/", {"corti_user_id": "me"})

    assert response.status_code == 400
    html = page(response)
    assert "Enter a valid UUID" in html
    assert 'id="id_corti_user_id-errors"' in html
    assert 'value="me"' in html


def test_forgetting_the_corti_user_id(clinician_client, clinician):
    clinician_client.post("/profile/", {"corti_user_id": str(CORTI_USER)})
    clinician_client.post("/profile/", {"corti_user_id": ""})

    from intake.selectors import profile_corti_user_id

    assert profile_corti_user_id(user=clinician) is None


def test_administrators_set_anyones_clinicians_only_their_own(
    client, clinician, other_clinician, administrator
):
    client.force_login(clinician)
    assert client.get(f"/profile/{other_clinician.pk}/").status_code == 403
    assert (
        client.post(
            f"/profile/{other_clinician.pk}/", {"corti_user_id": str(CORTI_USER)}
        ).status_code
        == 403
    )
    assert client.get("/profiles/").status_code == 403

    client.force_login(administrator)
    response = client.post(
        f"/profile/{other_clinician.pk}/", {"corti_user_id": str(CORTI_USER)}
    )
    assert response["Location"] == "/profiles/"
    listing = page(client.get("/profiles/"))
    assert str(CORTI_USER) in listing and other_clinician.get_username() in listing

    from intake.selectors import profile_corti_user_id

    assert profile_corti_user_id(user=other_clinician) == CORTI_USER
    assert Interaction.objects.count() == 0
