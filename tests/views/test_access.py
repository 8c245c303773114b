"""Least privilege: every URL pattern of the project, every role, one policy.

`POLICY` has one row per URL pattern that Django resolves (the project's own
pages, the Django admin and every ModelAdmin registered in it), keyed by the
pattern's full route. A row names the pattern and lists the requests to make
to it; each request says what anonymous visitors, clinicians, administrators
and signed-in users without a role must get back.

`test_every_url_pattern_has_a_policy` walks the URL resolver: a new URL without
a row fails it, and so does a row whose URL is gone. `test_access_policy`
makes every request as every role and checks the answer, that nothing was
written and that nothing reached Corti.

An answer marked `bug=` is the answer least privilege asks for, which the
application does not give yet: the case is `xfail(strict=True)`, so it passes
the day the bug is fixed only once its mark is removed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from intake.models import CortiCall, Interaction

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "clinician", "administrator", "no_role_user")

# Placeholders a request's URL, data or redirect target may hold; see `values`.
#   {id}       an existing interaction (pending, just created)
#   {key}      a submission key no form has sent yet
#   {user}     an existing user (the clinician)
#   {group}    an existing group (Clinicians)
#   {attempt}  an existing django-axes AccessAttempt (expired)
#   {log}      an existing django-axes AccessLog
#   {failure}  an existing django-axes AccessFailureLog
#   {ct}       the content type of Interaction
UNSENT_KEY = "3c6f1a8e-0f4b-4d52-9a77-2b1f0d9e5c41"


# --- Answers ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a role gets back: the status, and for a redirect where it leads.

    `to` is formatted with the placeholders; one ending in "=" is completed
    with the requested address (a sign-in page's `next`), one ending in "*"
    only has to start the Location. `bug` says why today's answer is wrong.
    """

    status: int
    to: str | None = None
    content_type: str | None = None
    json: dict | None = None
    bug: str | None = None

    def but(self, bug: str) -> Answer:
        return Answer(self.status, self.to, self.content_type, self.json, bug)


OK = Answer(200)
FORBIDDEN = Answer(403)
NOT_FOUND = Answer(404)
NOT_ALLOWED = Answer(405)
# The dashboard's sign-in page, then back to the page asked for.
SIGN_IN = Answer(302, "/accounts/login/?next=")
# The Django admin's own sign-in page (for a user who is not staff).
ADMIN_SIGN_IN = Answer(302, "/admin/login/?next=")
# The intake form's address with a freshly made submission key.
FRESH_FORM = Answer(302, "/interactions/new/?key=*")


def roles(*, anonymous: Answer, clinician: Answer, administrator: Answer,
          no_role_user: Answer) -> dict[str, Answer]:  # fmt: skip
    """One answer per role; every role must be named."""
    return {
        "anonymous": anonymous,
        "clinician": clinician,
        "administrator": administrator,
        "no_role_user": no_role_user,
    }


def signed_in(answer: Answer, *, anonymous: Answer = SIGN_IN) -> dict:
    """Any signed-in user gets `answer`; anonymous visitors sign in first."""
    return roles(
        anonymous=anonymous,
        clinician=answer,
        administrator=answer,
        no_role_user=answer,
    )


def intake(answer: Answer) -> dict:
    """A page of the intake: clinicians and administrators, no one else."""
    return roles(
        anonymous=SIGN_IN,
        clinician=answer,
        administrator=answer,
        no_role_user=FORBIDDEN,
    )


def admin(answer: Answer, *, anonymous: Answer = SIGN_IN) -> dict:
    """A Django admin page: only administrators (staff) get in, to `answer`."""
    return roles(
        anonymous=anonymous,
        clinician=ADMIN_SIGN_IN,
        administrator=answer,
        no_role_user=ADMIN_SIGN_IN,
    )


def public(answer: Answer) -> dict:
    return roles(
        anonymous=answer,
        clinician=answer,
        administrator=answer,
        no_role_user=answer,
    )


# --- Requests and rows ------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    answers: dict[str, Answer]
    data: dict | None = None


@dataclass(frozen=True)
class Row:
    name: str | None  # the pattern's URL name, namespaced; None when unnamed
    requests: tuple[Req, ...]


def row(name: str | None, *requests: Req) -> Row:
    return Row(name, requests)


def GET(url: str, answers: dict[str, Answer]) -> Req:  # noqa: N802
    return Req("get", url, answers)


def POST(url: str, answers: dict[str, Answer], data: dict | None = None) -> Req:  # noqa: N802
    return Req("post", url, answers, data or {})


def model_admin(
    model: str, name: str, obj: str, *, changelist_action: Answer
) -> dict[str, Row]:
    """The six patterns of a registered ModelAdmin, read-only for administrators.

    Administrators may view every record and its history; adding, changing and
    deleting answers 403 and writes nothing. A changelist POST asking for the
    delete action (which the administrator does not have) writes nothing.
    """
    base = f"/admin/{model}/"
    one = f"{base}{obj}/"
    prefix = f"admin/{model}/"
    return {
        prefix: row(
            f"admin:{name}_changelist",
            GET(base, admin(OK)),
            POST(
                base,
                admin(changelist_action),
                {"action": "delete_selected", "_selected_action": obj},
            ),
        ),
        f"{prefix}add/": row(
            f"admin:{name}_add",
            GET(f"{base}add/", admin(FORBIDDEN)),
            POST(f"{base}add/", admin(FORBIDDEN)),
        ),
        f"{prefix}<path:object_id>/history/": row(
            f"admin:{name}_history",
            GET(f"{one}history/", admin(OK)),
        ),
        f"{prefix}<path:object_id>/delete/": row(
            f"admin:{name}_delete",
            GET(f"{one}delete/", admin(FORBIDDEN)),
            POST(f"{one}delete/", admin(FORBIDDEN), {"post": "yes"}),
        ),
        f"{prefix}<path:object_id>/change/": row(
            f"admin:{name}_change",
            # The read-only view of the record.
            GET(f"{one}change/", admin(OK)),
            POST(f"{one}change/", admin(FORBIDDEN)),
        ),
        # The old address of a record's page, kept as a redirect.
        f"{prefix}<path:object_id>/": row(
            None,
            GET(one, admin(Answer(302, f"{one}change/"))),
        ),
    }


# Django's answer to an action the user may not run: back to the changelist.
NO_ACTION = Answer(302, "*")

# One row per URL pattern; the key is the pattern's full route.
POLICY: dict[str, Row] = {
    # --- Sign-in and the session (config/urls.py) ---------------------------
    "accounts/login/": row(
        "login",
        GET("/accounts/login/", public(OK)),
    ),
    "accounts/session/": row(
        "session",
        # Public: a page asks it how long its session has left.
        GET(
            "/accounts/session/",
            roles(
                anonymous=Answer(200, json={"signed_in": False}),
                clinician=Answer(200, json={"signed_in": True}),
                administrator=Answer(200, json={"signed_in": True}),
                no_role_user=Answer(200, json={"signed_in": True}),
            ),
        ),
        POST(
            "/accounts/session/",
            roles(
                anonymous=Answer(401, json={"signed_in": False}),
                clinician=Answer(200, json={"signed_in": True}),
                administrator=Answer(200, json={"signed_in": True}),
                no_role_user=Answer(200, json={"signed_in": True}),
            ),
        ),
    ),
    "accounts/logout/": row(
        "logout",
        POST("/accounts/logout/", signed_in(Answer(302, "/accounts/login/"))),
        GET("/accounts/logout/", signed_in(NOT_ALLOWED)),
    ),
    "accounts/password_change/": row(
        "password_change",
        # Everyone signed in may change their own password.
        GET("/accounts/password_change/", signed_in(OK)),
        # Nothing valid posted: the form again, nothing changed.
        POST("/accounts/password_change/", signed_in(OK)),
    ),
    "accounts/password_change/done/": row(
        "password_change_done",
        GET("/accounts/password_change/done/", signed_in(OK)),
    ),
    # --- The intake (intake/urls.py) ----------------------------------------
    "": row(
        "intake:home",
        GET(
            "/",
            roles(
                anonymous=SIGN_IN,
                clinician=Answer(302, "/interactions/new/"),
                administrator=Answer(302, "/interactions/new/"),
                no_role_user=Answer(302, "/interactions/"),
            ),
        ),
    ),
    "healthz": row(
        "intake:healthz",
        # A probe for the load balancer: no sign-in.
        GET("/healthz", public(Answer(200, json={"status": "ok"}))),
    ),
    "readyz": row(
        "intake:readyz",
        GET("/readyz", public(Answer(200, json={"status": "ok"}))),
    ),
    "interactions/": row(
        "intake:interaction_list",
        GET("/interactions/", intake(OK)),
    ),
    "interactions/export.csv": row(
        "intake:interaction_export",
        # Needs the export permission too: administrators only.
        GET(
            "/interactions/export.csv",
            roles(
                anonymous=SIGN_IN,
                clinician=FORBIDDEN,
                administrator=Answer(200, content_type="text/csv"),
                no_role_user=FORBIDDEN,
            ),
        ),
    ),
    "interactions/new/": row(
        "intake:interaction_create",
        GET("/interactions/new/", intake(FRESH_FORM)),
        GET("/interactions/new/?key={key}", intake(OK)),
        # An empty form: shown again with its errors; nothing is sent.
        POST(
            "/interactions/new/?key={key}",
            roles(
                # What was typed is kept for after the sign-in.
                anonymous=Answer(302, "/accounts/login/?next=/interactions/new/*"),
                clinician=OK,
                administrator=OK,
                no_role_user=FORBIDDEN,
            ),
        ),
    ),
    "interactions/new/validate/": row(
        "intake:interaction_validate",
        POST(
            "/interactions/new/validate/",
            roles(
                anonymous=Answer(302, "/accounts/login/?next=/interactions/new/*"),
                clinician=OK,
                administrator=OK,
                no_role_user=FORBIDDEN,
            ),
            {"_field": "encounter_identifier"},
        ),
        GET("/interactions/new/validate/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:key>/": row(
        "intake:interaction_detail",
        GET("/interactions/{id}/", intake(OK)),
    ),
    "interactions/<uuid:key>/retry/": row(
        "intake:interaction_retry",
        # `{id}` is pending: nothing is sent, the answer shows its detail page.
        POST("/interactions/{id}/retry/", intake(Answer(303, "/interactions/{id}/"))),
        GET("/interactions/{id}/retry/", intake(NOT_ALLOWED)),
    ),
    # --- The Django admin: the site's own views -----------------------------
    "admin/": row(
        "admin:index",
        GET("/admin/", admin(OK, anonymous=ADMIN_SIGN_IN)),
    ),
    "admin/login/": row(
        "admin:login",
        GET(
            "/admin/login/",
            roles(
                anonymous=Answer(302, "/accounts/login/*").but(
                    "the Django admin serves a second, public sign-in form; "
                    "the only public sign-in page is /accounts/login/"
                ),
                # Django's "signed in, but not allowed here" page.
                clinician=OK,
                administrator=Answer(302, "/admin/"),
                no_role_user=OK,
            ),
        ),
    ),
    "admin/logout/": row(
        "admin:logout",
        POST(
            "/admin/logout/",
            roles(
                anonymous=ADMIN_SIGN_IN,
                clinician=Answer(302, "/admin/"),
                administrator=Answer(302, "/accounts/login/"),
                no_role_user=Answer(302, "/admin/"),
            ),
        ),
    ),
    "admin/password_change/": row(
        "admin:password_change",
        GET("/admin/password_change/", admin(OK, anonymous=ADMIN_SIGN_IN)),
    ),
    "admin/password_change/done/": row(
        "admin:password_change_done",
        GET("/admin/password_change/done/", admin(OK, anonymous=ADMIN_SIGN_IN)),
    ),
    "admin/autocomplete/": row(
        "admin:autocomplete",
        # Usernames: administrators may view the users anyway.
        GET(
            "/admin/autocomplete/?app_label=intake&model_name=interaction"
            "&field_name=submitted_by&term=c",
            admin(Answer(200, json={"results": [{"id": "{user}", "text": "clin"}]}),
                  anonymous=ADMIN_SIGN_IN),
        ),
    ),
    "admin/jsi18n/": row(
        "admin:jsi18n",
        GET("/admin/jsi18n/", admin(OK, anonymous=ADMIN_SIGN_IN)),
    ),
    "admin/r/<path:content_type_id>/<path:object_id>/": row(
        "admin:view_on_site",
        GET(
            "/admin/r/{ct}/{id}/",
            admin(
                Answer(302, "http://testserver/interactions/{id}/"),
                anonymous=ADMIN_SIGN_IN,
            ),
        ),
    ),
    # --- The Django admin: one set of pages per registered model ------------
    **model_admin("intake/interaction", "intake_interaction", "{id}",
                  changelist_action=NO_ACTION),  # fmt: skip
    **model_admin("auth/user", "auth_user", "{user}", changelist_action=NO_ACTION),
    "admin/auth/user/<id>/password/": row(
        "admin:auth_user_password_change",
        # Only a superuser manages accounts.
        GET("/admin/auth/user/{user}/password/", admin(FORBIDDEN)),
        POST(
            "/admin/auth/user/{user}/password/",
            admin(FORBIDDEN),
            {"password1": "taken-Over-1", "password2": "taken-Over-1"},
        ),
    ),
    **model_admin("auth/group", "auth_group", "{group}", changelist_action=NO_ACTION),
    **model_admin("axes/accessattempt", "axes_accessattempt", "{attempt}",
                  changelist_action=NO_ACTION),  # fmt: skip
    **model_admin("axes/accesslog", "axes_accesslog", "{log}",
                  changelist_action=NO_ACTION),  # fmt: skip
    **model_admin("axes/accessfailurelog", "axes_accessfailurelog", "{failure}",
                  changelist_action=NO_ACTION),  # fmt: skip
    "admin/(?P<app_label>auth|axes|intake)/$": row(
        "admin:app_list",
        GET("/admin/intake/", admin(OK, anonymous=ADMIN_SIGN_IN)),
        GET("/admin/auth/", admin(OK, anonymous=ADMIN_SIGN_IN)),
        GET("/admin/axes/", admin(OK, anonymous=ADMIN_SIGN_IN)),
    ),
    # Anything else under /admin/: not found, after the admin's sign-in.
    "admin/(?P<url>.*)$": row(
        None,
        GET("/admin/no-such-page/", admin(NOT_FOUND, anonymous=ADMIN_SIGN_IN)),
    ),
}

# django-axes' "Clean up expired attempts" action needs no permission but view.
POLICY["admin/axes/accessattempt/"] = row(
    "admin:axes_accessattempt_changelist",
    *POLICY["admin/axes/accessattempt/"].requests,
    POST(
        "/admin/axes/accessattempt/",
        admin(
            NO_ACTION.but(
                "view-only administrators can run django-axes' 'Clean up expired "
                "attempts' action, which deletes AccessAttempt rows"
            )
        ),
        {"action": "cleanup_expired_attempts", "_selected_action": "{attempt}"},
    ),
)


# --- Walking the URL resolver -----------------------------------------------


def _join_route(prefix: str, route: str) -> str:
    """Join two routes as Django's resolver does (ResolverMatch.route)."""
    return prefix + route.removeprefix("^") if prefix else route


def url_patterns(resolver=None, prefix: str = "", namespace: str = ""):
    """Every URLPattern reachable from the root URLconf: (route, name)."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = _join_route(prefix, str(entry.pattern))
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}{entry.namespace}:"
            yield from url_patterns(entry, route, inner)
        else:
            assert isinstance(entry, URLPattern)
            yield route, f"{namespace}{entry.name}" if entry.name else None


def test_every_url_pattern_has_a_policy():
    walked = list(url_patterns())
    routes = [route for route, _ in walked]
    shared = sorted({r for r in routes if routes.count(r) > 1})
    assert not shared, f"two URL patterns share a route: {shared}"

    missing = [f"{r!r} (name {n!r})" for r, n in walked if r not in POLICY]
    assert not missing, "URL patterns without a row in POLICY: " + ", ".join(missing)
    stale = sorted(set(POLICY) - set(routes))
    assert not stale, f"POLICY rows for URL patterns that do not exist: {stale}"
    renamed = [
        f"{r!r}: walked {n!r}, POLICY says {POLICY[r].name!r}"
        for r, n in walked
        if POLICY[r].name != n
    ]
    assert not renamed, "URL names differ: " + "; ".join(renamed)


def test_policy_covers_every_role_of_every_request():
    for route, policy in POLICY.items():
        assert policy.requests, route
        for req in policy.requests:
            assert set(req.answers) == set(ROLES), (route, req)
            assert req.method in ("get", "post"), (route, req)


# --- Making every request as every role -------------------------------------


def _cases():
    for route, policy in POLICY.items():
        for req in policy.requests:
            label = f"{req.method.upper()} {req.url}"
            if req.data and "action" in req.data:
                label += f" action={req.data['action']}"
            for role in ROLES:
                answer = req.answers[role]
                marks = ()
                if answer.bug:
                    marks = pytest.mark.xfail(strict=True, reason=f"BUG: {answer.bug}")
                yield pytest.param(
                    route, req, role, answer, id=f"{label} as {role}", marks=marks
                )


CASES = list(_cases())


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
def placeholders(record, clinician):
    """What the placeholders of POLICY stand for; call it after signing in.

    django-axes deletes expired attempts whenever someone signs in, so the
    expired attempt is made only then.
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    def make() -> dict:
        seen = {"user_agent": "pytest", "ip_address": "192.0.2.7", "username": "x"}
        attempt = AccessAttempt.objects.create(
            **seen, get_data="", post_data="", failures_since_start=1
        )
        # Long expired: the cool-off is minutes.
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        )
        return {
            "id": record.pk,
            "key": UNSENT_KEY,
            "user": clinician.pk,
            "group": Group.objects.get(name="Clinicians").pk,
            "attempt": attempt.pk,
            "log": AccessLog.objects.create(**seen).pk,
            "failure": AccessFailureLog.objects.create(**seen).pk,
            "ct": ContentType.objects.get_for_model(Interaction).pk,
        }

    return make


@pytest.fixture
def client_as(client, request):
    def sign_in(role: str):
        if role != "anonymous":
            client.force_login(request.getfixturevalue(role))
        return client

    return sign_in


def _stored() -> dict[str, list]:
    """What no request of the policy may change: records, accounts, audit."""
    from axes.models import AccessAttempt, AccessFailureLog
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    user_fields = [
        f.attname for f in user_model._meta.concrete_fields if f.name != "last_login"
    ]
    return {
        "interactions": list(Interaction.objects.order_by("pk").values()),
        "calls": list(CortiCall.objects.order_by("pk").values()),
        "users": list(user_model.objects.order_by("pk").values(*user_fields)),
        "user_groups": list(
            user_model.groups.through.objects.order_by("pk").values()
        ),
        "user_permissions": list(
            user_model.user_permissions.through.objects.order_by("pk").values()
        ),
        "groups": list(Group.objects.order_by("pk").values()),
        "group_permissions": list(
            Group.permissions.through.objects.order_by("pk").values()
        ),
        "access_attempts": list(AccessAttempt.objects.order_by("pk").values()),
        "access_failures": list(AccessFailureLog.objects.order_by("pk").values()),
        "admin_log": list(LogEntry.objects.order_by("pk").values()),
    }


def _fill(data, values):
    """`data` with its placeholders filled in, at any depth."""
    if isinstance(data, str):
        return data.format(**values)
    if isinstance(data, list):
        return [_fill(v, values) for v in data]
    if isinstance(data, dict):
        return {k: _fill(v, values) for k, v in data.items()}
    return data


@pytest.mark.parametrize(("route", "req", "role", "answer"), CASES)
def test_access_policy(client_as, corti, placeholders, route, req, role, answer):
    client = client_as(role)
    values = placeholders()
    url = req.url.format(**values)
    # The row exercises its own pattern, not a neighbour's.
    assert resolve(urlsplit(url).path).route == route
    before = _stored()

    response = getattr(client, req.method)(url, _fill(req.data or {}, values))

    got = f"{req.method.upper()} {url} as {role}: {response.status_code}"
    if response.has_header("Location"):
        got += f" to {response['Location']}"
    assert response.status_code == answer.status, got
    if answer.to is None:
        assert not response.has_header("Location"), got
    elif answer.to.endswith("*"):
        assert response["Location"].startswith(answer.to[:-1].format(**values)), got
    elif answer.to.endswith("="):
        assert response["Location"] == answer.to + quote(url, safe="/"), got
    else:
        assert response["Location"] == answer.to.format(**values), got
    if answer.content_type:
        assert response["Content-Type"].startswith(answer.content_type), got
        b"".join(response.streaming_content if response.streaming else [])
    if answer.json is not None:
        assert _fill(answer.json, values).items() <= response.json().items(), got
    # Nothing was written, and nothing was created in Corti.
    assert _stored() == before, got
    assert corti.state()["counts"].get("create_requests", 0) == 0


# --- Signing in and out -----------------------------------------------------


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
    assert response["Location"].startswith("/accounts/login/?next=")
    assert corti.state()["counts"].get("create_requests", 0) == 0


def test_signing_out_ends_the_session(client_as):
    client = client_as("clinician")

    client.post("/accounts/logout/")

    assert client.get("/interactions/").status_code == 302


def test_signing_out_needs_post(client_as):
    client = client_as("clinician")

    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/interactions/").status_code == 200
