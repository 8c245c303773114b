"""Messages that agree with themselves (issue 11, item 2).

Each kind of failure gets one accurate sentence: Corti answered with an
error, did not answer, its answer was cut off, or could not be reached; the
request id is shown only when Corti gave one.
"""

from __future__ import annotations

import uuid

import pytest

from intake.corti import clear_clients
from intake.enums import ErrorCode
from intake.models import Interaction
from tests.services.support import fault, pointing_at_a_closed_port, set_faults

pytestmark = pytest.mark.django_db

NEW = "/interactions/new/"
VALUES = {
    "encounter_identifier": "ENC-9001",
    "encounter_status": "in-progress",
    "encounter_type": "consultation",
    "encounter_started_at": "2026-11-30T09:00",
}
NEVER = ("answer never came", "did not answer", "dropped", "cut off")


@pytest.mark.parametrize(
    ("code", "sentence"),
    [
        (ErrorCode.SERVER_ERROR, "Corti answered with a server error"),
        (ErrorCode.TIMEOUT, "Corti did not answer in time."),
        (ErrorCode.DISCONNECTED, "The connection to Corti dropped"),
        (ErrorCode.BAD_RESPONSE, "Corti's answer was cut off or could not be read."),
        (ErrorCode.INTERRUPTED, "The dashboard stopped before"),
    ],
)
@pytest.mark.parametrize("outcome", ["unknown", "failed"])
def test_each_lost_answer_kind_has_its_own_sentence(code, sentence, outcome):
    record = Interaction(outcome=outcome, error_code=code)

    text = record.failure_explanation

    assert text.startswith(sentence)
    others = [s for s in NEVER if s not in sentence.lower()]
    assert not any(other in text.lower() for other in others), text
    if outcome == "failed":
        assert "safe to send it again" in text
    else:
        assert "checking with Corti" in text


def post(client):
    key = uuid.uuid4()
    response = client.post(
        f"{NEW}?key={key}", {"submission_key": str(key), **VALUES}, follow=True
    )
    return response.content.decode(), Interaction.objects.get(submission_key=key)


def test_a_server_error_says_corti_answered_and_shows_its_request_id(
    corti, clinician_client
):
    set_faults(corti, fault("500", count=1))

    html, record = post(clinician_client)

    assert "Corti answered with a server error" in html
    assert "never came" not in html
    assert record.error_request_id
    assert f"<code>{record.error_request_id}</code>" in html


def test_no_answer_in_time_says_so_and_shows_no_request_id(
    corti, clinician_client, settings
):
    settings.CORTI_TIMEOUT = 0.3
    clear_clients()
    set_faults(corti, fault("hang", delay=1.0, count=1))

    html, record = post(clinician_client)

    assert "Corti did not answer in time." in html
    assert record.error_request_id == ""
    assert "Corti request id</dt>" not in html.split("Calls to Corti")[0]


def test_a_dropped_connection_says_so(corti, clinician_client):
    set_faults(corti, fault("drop", count=1))

    html, _ = post(clinician_client)

    assert "The connection to Corti dropped before its answer arrived." in html


def test_no_connection_says_nothing_was_sent_and_shows_no_request_id(
    corti, clinician_client, settings
):
    with pointing_at_a_closed_port(settings):
        html, record = post(clinician_client)

    assert "Corti cannot be reached right now, so nothing was sent." in html
    assert record.error_request_id == ""
    assert "Corti request id, for support" not in html
