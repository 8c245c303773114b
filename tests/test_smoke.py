import datetime as dt

import pytest
from django.urls import reverse

from intake.models import Interaction


@pytest.mark.django_db
def test_whole_flow_creates_in_simulator(corti, clinician_client):
    response = clinician_client.post(
        reverse("intake:interaction_create"),
        {
            "encounter_identifier": "ENC-1",
            "encounter_status": "planned",
            "encounter_type": "consultation",
            "encounter_started_at": "2026-03-29T01:30",
        },
    )
    assert response.status_code == 303, response.content[:2000]
    record = Interaction.objects.get()
    assert record.outcome == "created"
    assert corti.state()["counts"]["created"] == 1
    assert record.encounter_started_at == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
