"""Who may open what: one row per page and role, with the expected answer."""

import datetime as dt
import uuid
from urllib.parse import quote

import pytest

from intake.models import Interaction

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "clinician", "administrator", "no_role_user")
SIGN_IN = "/accounts/login/?next="
ADMIN_SIGN_IN = "/admin/login/?next="
# The intake form's address with a freshly made submission key.
FRESH_FORM = "/interactions/new/?key="
# A submission key no form has sent yet.
UNSENT_KEY = "3c6f1a8e-0f4b-4d52-9a77-2b1f0d9e5c41"

# path, method, and per role: the status and, for a redirect, where it leads.
# `{id}` (in a path or a target) is an existing interaction, `{key}` a
# submission key not sent yet; FRESH_FORM is the form's address with a new
# key; another target ending in "=" is completed with the requested path.
# Every row runs against the Corti simulator, so nothing reaches a real tenant.
POLICY = {
    ("/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (302, "/interactions/new/"),
        "administrator": (302, "/interactions/new/"),
        "no_role_user": (302, "/interactions/"),
    },
    ("/healthz", "get"): {
        "anonymous": (200, None),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (200, None),
    },
    ("/readyz", "get"): {
        # A probe for the load balancer: no sign-in.
        "anonymous": (200, None),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (200, None),
    },
    ("/interactions/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (403, None),
    },
    ("/interactions/new/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (302, FRESH_FORM),
        "administrator": (302, FRESH_FORM),
        "no_role_user": (403, None),
    },
    ("/interactions/new/?key={key}", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (403, None),
    },
    ("/interactions/new/validate/", "post"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (403, None),
    },
    ("/interactions/{id}/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (403, None),
    },
    ("/interactions/{id}/retry/", "post"): {
        # `{id}` is pending: nothing is sent, the answer shows its detail page.
        "anonymous": (302, SIGN_IN),
        "clinician": (303, "/interactions/{id}/"),
        "administrator": (303, "/interactions/{id}/"),
        "no_role_user": (403, None),
    },
    ("/interactions/{id}/retry/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (405, None),
        "administrator": (405, None),
        "no_role_user": (403, None),
    },
    ("/accounts/login/", "get"): {
        "anonymous": (200, None),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (200, None),
    },
    ("/accounts/logout/", "post"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (302, "/accounts/login/"),
        "administrator": (302, "/accounts/login/"),
        "no_role_user": (302, "/accounts/login/"),
    },
    ("/accounts/password_change/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (200, None),
        "administrator": (200, None),
        "no_role_user": (200, None),
    },
    ("/admin/", "get"): {
        # Django's admin sends its own index to its own sign-in page.
        "anonymous": (302, ADMIN_SIGN_IN),
        "clinician": (302, ADMIN_SIGN_IN),
        "administrator": (200, None),
        "no_role_user": (302, ADMIN_SIGN_IN),
    },
    ("/admin/intake/interaction/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (302, ADMIN_SIGN_IN),
        "administrator": (200, None),
        "no_role_user": (302, ADMIN_SIGN_IN),
    },
    ("/admin/intake/interaction/{id}/change/", "get"): {
        "anonymous": (302, SIGN_IN),
        "clinician": (302, ADMIN_SIGN_IN),
        "administrator": (200, None),
        "no_role_user": (302, ADMIN_SIGN_IN),
    },
}

CASES = [
    pytest.param(
        path, method, role, *POLICY[(path, method)][role], id=f"{method} {path}-{role}"
    )
    for path, method in POLICY
    for role in ROLES
]


@pytest.fixture
def record(clinician):
    return Interaction.objects.create(
        submitted_by=clinician,
        encounter_identifier="ENC-ACCESS",
        encounter_status="planned",
        encounter_type="consultation",
        encounter_started_at=dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC),
        time_zone="UTC",
    )


@pytest.fixture
def client_as(client, request):
    def sign_in(role: str):
        if role != "anonymous":
            client.force_login(request.getfixturevalue(role))
        return client

    return sign_in


def test_policy_covers_every_role_of_every_page():
    for answers in POLICY.values():
        assert set(answers) == set(ROLES)


@pytest.mark.parametrize(("path", "method", "role", "status", "target"), CASES)
def test_access_policy(client_as, corti, record, path, method, role, status, target):
    url = path.format(id=record.pk, key=UNSENT_KEY)
    client = client_as(role)
    data = {"_field": "encounter_identifier"} if method == "post" else None

    response = getattr(client, method)(url, data)

    assert response.status_code == status
    if target is None:
        assert not response.has_header("Location")
    elif target == FRESH_FORM:
        assert response["Location"].startswith(FRESH_FORM)
        assert uuid.UUID(response["Location"].removeprefix(FRESH_FORM))
    elif target.endswith("="):
        assert response["Location"] == target + quote(url, safe="/")
    else:
        assert response["Location"] == target.format(id=record.pk)
    # No page of the policy creates anything in Corti.
    assert corti.state()["counts"].get("create_requests", 0) == 0


def test_anonymous_is_sent_to_sign_in_and_back(client, clinician, record):
    url = f"/interactions/{record.pk}/"

    response = client.get(url, follow=True)

    assert response.redirect_chain == [(f"/accounts/login/?next={url}", 302)]
    signed_in = client.post(
        response.redirect_chain[0][0],
        {"username": "clin", "password": "pw-clinician-1", "next": url},
    )
    assert signed_in.status_code == 302
    assert signed_in["Location"] == url


def test_sign_in_with_the_wrong_password_is_refused(client, clinician):
    response = client.post(
        "/accounts/login/", {"username": "clin", "password": "wrong-password"}
    )

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_clinician_does_not_see_the_admin_link(client_as):
    html = client_as("clinician").get("/interactions/").content.decode()

    assert 'href="/admin/"' not in html


def test_administrator_sees_the_admin_link(client_as):
    html = client_as("administrator").get("/interactions/").content.decode()

    assert 'href="/admin/"' in html


def test_no_role_user_cannot_submit_to_corti(client_as, corti):
    response = client_as("no_role_user").post(
        "/interactions/new/",
        {
            "encounter_identifier": "ENC-1",
            "encounter_status": "planned",
            "encounter_type": "consultation",
            "encounter_started_at": "2026-01-15T10:00",
        },
    )

    assert response.status_code == 403
    assert Interaction.objects.filter(encounter_identifier="ENC-1").count() == 0
    assert corti.state()["counts"].get("create_requests", 0) == 0


def test_anonymous_post_to_the_form_sends_nothing(client, corti):
    response = client.post("/interactions/new/", {"encounter_identifier": "ENC-1"})

    assert response.status_code == 302
    assert response["Location"].startswith(SIGN_IN)
    assert corti.state()["counts"].get("create_requests", 0) == 0


def test_signing_out_ends_the_session(client_as):
    client = client_as("clinician")

    client.post("/accounts/logout/")

    assert client.get("/interactions/").status_code == 302


def test_signing_out_needs_post(client_as):
    client = client_as("clinician")

    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/interactions/").status_code == 200
