"""The sign-in requirement, for plain and htmx requests."""

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_anonymous_htmx_request_sends_the_whole_page_to_sign_in(client):
    response = client.post(
        reverse("intake:interaction_validate"),
        {"_field": "encounter_identifier"},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://testserver/interactions/new/?patient_identifier=P1",
        },
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == (
        "/accounts/login/?next=/interactions/new/%3Fpatient_identifier%3DP1"
    )
    assert b"<form" not in response.content


@pytest.mark.django_db
def test_anonymous_htmx_request_without_current_url_returns_to_the_request_path(
    client,
):
    response = client.get(
        reverse("intake:interaction_list"), {"q": "x"}, headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == "/accounts/login/?next=/interactions/%3Fq%3Dx"


@pytest.mark.django_db
def test_anonymous_plain_request_is_redirected_to_sign_in(client):
    response = client.get(reverse("intake:interaction_list"))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/interactions/"
    assert "HX-Redirect" not in response
