"""The sign-in requirement for plain and htmx requests; NUL in query strings."""

import pytest
from django.urls import reverse

from tests.support.factories import make_interaction


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


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/interactions/?q=PAT%00-1&status=%00",
        "/interactions/export.csv?q=%00",
        "/admin/intake/interaction/?q=%00",
        "/admin/auth/user/?q=ad%00min",
        "/admin/axes/accessattempt/?q=%00",
    ],
)
def test_a_nul_in_a_search_is_dropped_not_a_server_error(admin_client_, url):
    # PostgreSQL refuses to compare text with a NUL: it must never reach a query.
    response = admin_client_.get(url)

    assert response.status_code == 200


@pytest.mark.django_db
def test_a_search_with_a_nul_finds_what_it_would_without(admin_client_, clinician):
    from intake.models import Interaction

    make_interaction(
        clinician,
        outcome=Interaction.Outcome.PENDING,
        encounter_identifier="ENC-NUL",
        patient_identifier="PAT-1",
        time_zone="UTC",
    )

    response = admin_client_.get("/interactions/?q=PAT%00-1")

    assert response.context["count"] == 1
    assert len(response.context["page"].rows) == 1
    assert response.context["filters"]["q"] == "PAT-1"
