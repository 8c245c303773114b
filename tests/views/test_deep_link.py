"""Patient data out of the address bar (issue 11, item 4).

An EHR deep link carries the patient's name and identifier in its query
string. The dashboard reads them once, keeps them with the form (in the
session), and answers with an address that holds only the form's key, so
they stay out of history, bookmarks and screenshots of the address bar, with
JavaScript or without, signed in or not yet.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.corti import fault, set_faults
from tests.support.pages import form_values, page

pytestmark = pytest.mark.django_db

NEW = "/interactions/new/"
LINK = {
    "encounter_identifier": "ENC-8001",
    "patient_identifier": "PAT-8001",
    "patient_name": "Søren Ødegård",
    "patient_birth_date": "1961-02-03",
}


def only_key(location: str) -> str:
    query = parse_qs(urlsplit(location).query)
    assert list(query) == ["key"], location
    return query["key"][0]


def test_a_deep_link_is_answered_with_an_address_holding_only_the_key(
    clinician_client,
):
    response = clinician_client.get(NEW, LINK)

    assert response.status_code == 302
    key = only_key(response["Location"])
    for value in LINK.values():
        assert value not in response["Location"]
    html = page(clinician_client.get(response["Location"]))
    values = form_values(html)
    assert {name: values[name] for name in LINK} == LINK
    assert values["submission_key"] == key
    # Reload: still there (kept with the form, not in the address).
    again = form_values(page(clinician_client.get(response["Location"])))
    assert {name: again[name] for name in LINK} == LINK


def test_a_deep_link_with_a_key_keeps_that_key(clinician_client):
    key = str(uuid.uuid4())
    response = clinician_client.get(NEW, {"key": key, **LINK})

    assert only_key(response["Location"]) == key


def test_a_deep_link_opened_before_signing_in_never_shows_in_the_sign_in_address(
    client, clinician
):
    response = client.get(NEW, LINK)

    assert response.status_code == 302
    login = response["Location"]
    for value in ("PAT-8001", "ENC-8001", "S%C3%B8ren", "Søren", "1961"):
        assert value not in login
    next_url = parse_qs(urlsplit(login).query)["next"][0]
    key = only_key(next_url)
    signed_in = client.post(
        login, {"username": "clin", "password": "pw-clinician-1", "next": next_url}
    )
    assert signed_in["Location"] == next_url
    values = form_values(page(client.get(next_url)))
    assert {name: values[name] for name in LINK} == LINK
    assert values["submission_key"] == key


def test_a_failed_submit_does_not_put_them_back(corti, clinician_client):
    set_faults(corti, fault("403", count=1))
    location = clinician_client.get(NEW, LINK)["Location"]
    key = only_key(location)
    values = form_values(page(clinician_client.get(location)))
    values.update(encounter_status="planned", encounter_type="consultation")

    response = clinician_client.post(location, values)

    html = page(response)
    assert response.status_code == 200
    assert "Not created in Corti" in html
    # The form posts back to its key alone.
    assert f'action="{NEW}?key={key}"' in html
    assert "patient_name=" not in html


def test_the_page_script_replaces_any_other_address_with_the_key(clinician_client):
    """For an address the server never saw (a cached page, an old bookmark)."""
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "static/js/form.js").read_text()
    assert "history.replaceState" in script
    assert '"?key=" + key.value' in script
