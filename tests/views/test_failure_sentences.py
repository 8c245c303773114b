"""Messages that agree with themselves (issue 11, item 2).

Each kind of failure gets one accurate sentence: Corti answered with an
error, did not answer, its answer was cut off, or could not be reached; the
request id is shown only when Corti gave one.
"""

from __future__ import annotations

import pytest

from intake.corti import clear_clients
from intake.enums import ErrorCode
from intake.models import Interaction
from tests.support.corti import fault, pointing_at_a_closed_port, set_faults
from tests.support.pages import page, parse, post_new_form

pytestmark = pytest.mark.django_db

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
    """Send VALUES once; the page shown after, and the record."""
    response, key = post_new_form(client, VALUES, follow=True)
    return page(response), Interaction.objects.get(submission_key=key)


def test_a_server_error_says_corti_answered_and_shows_its_request_id(
    corti, clinician_client
):
    set_faults(corti, fault("500", count=1))

    html, record = post(clinician_client)

    assert "Corti answered with a server error" in html
    assert "never came" not in html
    assert record.error_request_id
    assert f"<code>{record.error_request_id}</code>" in html


@pytest.mark.slow  # waits out a read timeout: ~0.3 s
def test_no_answer_in_time_says_so_and_shows_no_request_id(
    corti, clinician_client, settings
):
    settings.CORTI_TIMEOUT = 0.3
    clear_clients()
    set_faults(corti, fault("hang", delay=1.0, count=1))

    html, record = post(clinician_client)

    assert "Corti did not answer in time." in html
    assert record.error_request_id == ""
    document = parse(html)
    calls = document.one(id="calls-heading")
    assert [
        term
        for term in document.find_all("dt")
        if term.end <= calls.start and term.raw_text.endswith("Corti request id")
    ] == []


def test_a_dropped_connection_says_so(corti, clinician_client):
    set_faults(corti, fault("drop", count=1))

    html, _ = post(clinician_client)

    assert "The connection to Corti dropped before its answer arrived." in html


@pytest.mark.slow  # a closed port, retried within the retry budget: ~0.5 s
def test_no_connection_says_nothing_was_sent_and_shows_no_request_id(
    corti, clinician_client, settings
):
    with pointing_at_a_closed_port(settings):
        html, record = post(clinician_client)

    assert "Corti cannot be reached right now, so nothing was sent." in html
    assert record.error_request_id == ""
    assert "Corti request id, for support" not in html
