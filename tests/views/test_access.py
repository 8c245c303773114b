"""Least privilege: every URL pattern of the project, every role, one policy.

`POLICY` has one row per URL pattern Django resolves (the project's pages, the
Django admin's own views and those of every registered ModelAdmin), keyed by
the pattern's full route as `ResolverMatch.route` spells it. A row names the
pattern and lists requests to make to it; each request says what an anonymous
visitor, a clinician, an administrator and a signed-in user without a role get.

`test_every_url_pattern_has_a_policy` walks the URL resolver: a URL without a
row fails it, and so does a row whose URL is gone. `test_access_policy` makes
every request as every role and checks the answer, that it wrote nothing and
that nothing reached Corti.

An answer with `bug=` is the one least privilege asks for and the application
does not give yet: its case is `xfail(strict=True)`, so fixing the bug fails
the test until the mark is removed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from intake.models import CortiCall, Interaction
from tests.support.factories import make_interaction

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "clinician", "administrator", "no_role_user")

# Placeholders in a request's URL and data, and in an expected answer:
#   {id}               an existing interaction (pending, just created)
#   {key}              a submission key no form has sent yet
#   {user}             an existing user (the clinician)
#   {group}            an existing group (Clinicians)
#   {attempt}          an existing django-axes AccessAttempt
#   {expired_attempt}  an AccessAttempt whose cool-off is long over
#   {log}              an existing django-axes AccessLog
#   {failure}          an existing django-axes AccessFailureLog
#   {ct}               the content type of Interaction
UNSENT_KEY = "3c6f1a8e-0f4b-4d52-9a77-2b1f0d9e5c41"


# --- Answers ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a role gets back: the status and, for a redirect, where it leads.

    `to` is the Location with its placeholders filled in; one ending in "="
    is completed with the requested address (a sign-in page's `next`), one
    ending in "*" only has to start it. `bug` says why today's answer differs.
    """

    status: int
    to: str | None = None
    content_type: str | None = None
    json: dict | None = None
    bug: str | None = None

    def but(self, bug: str) -> Answer:
        return replace(self, bug=bug)


OK = Answer(200)
FORBIDDEN = Answer(403)
NOT_FOUND = Answer(404)
NOT_ALLOWED = Answer(405)
# The dashboard's sign-in page, and back to the page asked for.
SIGN_IN = Answer(302, "/accounts/login/?next=")
# The Django admin's own sign-in page, and back.
ADMIN_SIGN_IN = Answer(302, "/admin/login/?next=")
# The intake form's address with a freshly made submission key.
FRESH_FORM = Answer(302, "/interactions/new/?key=*")


def roles(
    *,
    anonymous: Answer,
    clinician: Answer,
    administrator: Answer,
    no_role_user: Answer,
) -> dict[str, Answer]:
    """One answer per role; every role must be named."""
    return {
        "anonymous": anonymous,
        "clinician": clinician,
        "administrator": administrator,
        "no_role_user": no_role_user,
    }


def everyone(answer: Answer) -> dict[str, Answer]:
    """A public page: the same answer, signed in or not."""
    return roles(
        anonymous=answer, clinician=answer, administrator=answer, no_role_user=answer
    )


def signed_in(answer: Answer) -> dict[str, Answer]:
    """Any signed-in user gets `answer`; anonymous visitors sign in first."""
    return roles(
        anonymous=SIGN_IN, clinician=answer, administrator=answer, no_role_user=answer
    )


def intake(answer: Answer) -> dict[str, Answer]:
    """The intake: clinicians and administrators get `answer`, no one else."""
    return roles(
        anonymous=SIGN_IN,
        clinician=answer,
        administrator=answer,
        no_role_user=FORBIDDEN,
    )


def admin(answer: Answer, *, anonymous: Answer = SIGN_IN) -> dict[str, Answer]:
    """The Django admin: only administrators (staff) get in, to `answer`.

    The ModelAdmins' pages send anonymous visitors to the dashboard's sign-in
    page; the admin site's own views to the admin's.
    """
    return roles(
        anonymous=anonymous,
        clinician=ADMIN_SIGN_IN,
        administrator=answer,
        no_role_user=ADMIN_SIGN_IN,
    )


# Administrators read a ModelAdmin's pages ...
ADMIN_READ = admin(OK)
# ... and write nothing through them: only a superuser would.
ADMIN_WRITE = admin(FORBIDDEN)
# The admin site's own pages, for administrators.
ADMIN_SITE = admin(OK, anonymous=ADMIN_SIGN_IN)


def admin_redirect(to: str) -> dict[str, Answer]:
    """A record's old address: administrators are sent on to its page."""
    return admin(Answer(302, to))


# --- Requests and rows ------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    answers: dict[str, Answer]
    data: dict | None = None


@dataclass(frozen=True)
class Row:
    name: str | None  # the pattern's URL name, with namespace; None if unnamed
    requests: tuple[Req, ...]


def row(name: str | None, *requests: Req) -> Row:
    return Row(name, requests)


def GET(url: str, answers: dict[str, Answer]) -> Req:
    return Req("get", url, answers)


def POST(url: str, answers: dict[str, Answer], data: dict | None = None) -> Req:
    return Req("post", url, answers, data or {})


def delete_action(obj: str) -> dict:
    """A changelist POST running Django's "delete selected" on `obj`."""
    return {"action": "delete_selected", "_selected_action": obj}


# Deleting is not offered to administrators. Where a ModelAdmin offers no
# action at all, such a POST shows the changelist again; where it offers
# others, it says "No action selected" and goes back to the changelist.
NO_ACTIONS = ADMIN_READ
# The attempts' changelist offers no action at all: a posted one only shows
# the list again, and nothing is deleted.
ATTEMPTS_ACTION_REFUSED = admin(OK)
# The access trail offers one action (its CSV export): any other posted one
# is "No action selected", back to the list, and nothing is deleted.
TRAIL_ACTION_REFUSED = admin(Answer(302, "/admin/intake/accessentry/"))


# One row per URL pattern, keyed by its full route.
POLICY: dict[str, Row] = {
    # --- Signing in and the session (config/urls.py) ------------------------
    "accounts/login/": row(
        "login",
        GET("/accounts/login/", everyone(OK)),
    ),
    "accounts/session/": row(
        "session",
        # Public: how long the session has left, asked by every page.
        GET(
            "/accounts/session/",
            roles(
                anonymous=Answer(200, json={"signed_in": False}),
                clinician=Answer(200, json={"signed_in": True}),
                administrator=Answer(200, json={"signed_in": True}),
                no_role_user=Answer(200, json={"signed_in": True}),
            ),
        ),
        # Staying signed in: nothing to extend without a session, and saying
        # so is an answer (200), not an error the browser would log.
        POST(
            "/accounts/session/",
            roles(
                anonymous=Answer(200, json={"signed_in": False}),
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
        # Nothing valid posted: the form again with its errors.
        POST("/accounts/password_change/", signed_in(OK)),
    ),
    "accounts/password_change/done/": row(
        "password_change_done",
        GET("/accounts/password_change/done/", signed_in(OK)),
    ),
    # The site's icon where browsers look for it unasked: public.
    "favicon.ico": row(
        "favicon",
        GET("/favicon.ico", everyone(Answer(200, content_type="image/svg+xml"))),
        POST("/favicon.ico", everyone(NOT_ALLOWED)),
    ),
    # --- The intake (intake/urls.py) ----------------------------------------
    "": row(
        "intake:home",
        GET(
            "/",
            roles(
                anonymous=SIGN_IN,
                clinician=Answer(302, "/my-day/"),
                administrator=Answer(302, "/my-day/"),
                no_role_user=Answer(302, "/interactions/"),
            ),
        ),
    ),
    "my-day/": row(
        "intake:my_day",
        GET("/my-day/", intake(OK)),
        POST("/my-day/", intake(NOT_ALLOWED)),
    ),
    "profile/": row(
        "intake:profile",
        # Everyone signed in keeps their own Corti user ID (a POST saves it,
        # so the policy's no-write check asks only for the page).
        GET("/profile/", signed_in(OK)),
    ),
    "profile/<int:user_id>/": row(
        "intake:profile_of",
        # Someone else's: administrators only.
        GET(
            "/profile/{user}/",
            roles(
                anonymous=SIGN_IN,
                clinician=OK,  # {user} is the clinician: their own
                administrator=OK,
                no_role_user=FORBIDDEN,
            ),
        ),
    ),
    "profiles/": row(
        "intake:profiles",
        GET(
            "/profiles/",
            roles(
                anonymous=SIGN_IN,
                clinician=FORBIDDEN,
                administrator=OK,
                no_role_user=FORBIDDEN,
            ),
        ),
    ),
    "healthz": row(
        "intake:healthz",
        # Probes for the load balancer: no sign-in.
        GET("/healthz", everyone(Answer(200, json={"status": "ok"}))),
    ),
    "readyz": row(
        "intake:readyz",
        GET("/readyz", everyone(Answer(200, json={"status": "ok"}))),
    ),
    "interactions/": row(
        "intake:interaction_list",
        GET("/interactions/", intake(OK)),
    ),
    "overview/": row(
        "intake:overview",
        # Administrators only: the whole clinic's numbers, by user.
        GET(
            "/overview/",
            roles(
                anonymous=SIGN_IN,
                clinician=FORBIDDEN,
                administrator=OK,
                no_role_user=FORBIDDEN,
            ),
        ),
    ),
    "interactions/export.csv": row(
        "intake:interaction_export",
        # Needs the export permission as well: administrators only.
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
        # An empty form: shown again with its errors, nothing sent.
        POST("/interactions/new/?key={key}", intake(OK)),
    ),
    "interactions/new/validate/": row(
        "intake:interaction_validate",
        POST(
            "/interactions/new/validate/",
            intake(OK),
            {"_field": "encounter_identifier"},
        ),
        GET("/interactions/new/validate/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:record_id>/": row(
        "intake:interaction_detail",
        GET("/interactions/{id}/", intake(OK)),
    ),
    "interactions/<uuid:record_id>/retry/": row(
        "intake:interaction_retry",
        # `{id}` is pending: nothing is sent, the answer shows its detail page.
        POST("/interactions/{id}/retry/", intake(Answer(303, "/interactions/{id}/"))),
        GET("/interactions/{id}/retry/", intake(NOT_ALLOWED)),
    ),
    # An interaction's life (issue 15). `{id}` is pending: not in Corti yet,
    # so each answers with its page and a notice, and nothing is sent.
    "interactions/<uuid:record_id>/refresh/": row(
        "intake:interaction_refresh",
        POST("/interactions/{id}/refresh/", intake(Answer(303, "/interactions/{id}/"))),
        GET("/interactions/{id}/refresh/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:record_id>/end/": row(
        "intake:interaction_end",
        POST("/interactions/{id}/end/", intake(Answer(303, "/interactions/{id}/"))),
        GET("/interactions/{id}/end/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:record_id>/edit/": row(
        "intake:interaction_edit",
        GET("/interactions/{id}/edit/", intake(Answer(303, "/interactions/{id}/"))),
        POST("/interactions/{id}/edit/", intake(Answer(303, "/interactions/{id}/"))),
    ),
    # Recording (issue 16). `{id}` is pending: not in Corti, so nothing can
    # be recorded, no token is minted, and nothing is written.
    "interactions/<uuid:record_id>/recording/": row(
        "intake:recording_start",
        # Without the page's script (its header), no token: 400.
        POST(
            "/interactions/{id}/recording/",
            intake(Answer(400)),
            data={"consent": "on", "language": "en", "mode": "transcription"},
        ),
        GET("/interactions/{id}/recording/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:record_id>/recording/<uuid:recording_id>/token/": row(
        "intake:recording_token",
        POST(
            f"/interactions/{{id}}/recording/{UNSENT_KEY}/token/", intake(Answer(400))
        ),
        GET(f"/interactions/{{id}}/recording/{UNSENT_KEY}/token/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:record_id>/recording/<uuid:recording_id>/": row(
        "intake:recording_report",
        POST(
            f"/interactions/{{id}}/recording/{UNSENT_KEY}/",
            intake(NOT_FOUND),
            data={"event": "ended"},
        ),
        GET(f"/interactions/{{id}}/recording/{UNSENT_KEY}/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:record_id>/stream-url/": row(
        "intake:stream_url",
        POST(
            "/interactions/{id}/stream-url/",
            intake(Answer(303, "/interactions/{id}/")),
        ),
        GET("/interactions/{id}/stream-url/", intake(NOT_ALLOWED)),
    ),
    "interactions/<uuid:record_id>/delete/": row(
        "intake:interaction_delete",
        # Administrators only; clinicians may not delete in Corti.
        GET(
            "/interactions/{id}/delete/",
            roles(
                anonymous=SIGN_IN,
                clinician=FORBIDDEN,
                administrator=Answer(303, "/interactions/{id}/"),
                no_role_user=FORBIDDEN,
            ),
        ),
        POST(
            "/interactions/{id}/delete/",
            roles(
                anonymous=SIGN_IN,
                clinician=FORBIDDEN,
                administrator=Answer(303, "/interactions/{id}/"),
                no_role_user=FORBIDDEN,
            ),
        ),
    ),
    # --- The Django admin site's own views ----------------------------------
    "admin/": row(
        "admin:index",
        GET("/admin/", ADMIN_SITE),
    ),
    "admin/login/": row(
        "admin:login",
        GET(
            "/admin/login/",
            # The admin has no sign-in form of its own: one public sign-in page.
            roles(
                anonymous=Answer(302, "/accounts/login/?next=/admin/"),
                clinician=Answer(302, "/accounts/login/?next=/admin/"),
                administrator=Answer(302, "/admin/"),
                no_role_user=Answer(302, "/accounts/login/?next=/admin/"),
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
        GET("/admin/password_change/", ADMIN_SITE),
    ),
    "admin/password_change/done/": row(
        "admin:password_change_done",
        GET("/admin/password_change/done/", ADMIN_SITE),
    ),
    "admin/autocomplete/": row(
        "admin:autocomplete",
        # Usernames, which administrators may view anyway.
        GET(
            "/admin/autocomplete/?app_label=intake&model_name=interaction"
            "&field_name=submitted_by&term=cli",
            admin(
                Answer(200, json={"results": [{"id": "{user}", "text": "clin"}]}),
                anonymous=ADMIN_SIGN_IN,
            ),
        ),
    ),
    "admin/jsi18n/": row(
        "admin:jsi18n",
        GET("/admin/jsi18n/", ADMIN_SITE),
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
    "admin/(?P<app_label>auth|axes|intake)/$": row(
        "admin:app_list",
        GET("/admin/intake/", ADMIN_SITE),
        GET("/admin/auth/", ADMIN_SITE),
        GET("/admin/axes/", ADMIN_SITE),
    ),
    # Anything else under /admin/: not found, once signed in to the admin.
    "admin/(?P<url>.*)$": row(
        None,
        GET("/admin/no-such-page/", admin(NOT_FOUND, anonymous=ADMIN_SIGN_IN)),
    ),
    # --- Admin: intake Interaction (read-only for everyone) -----------------
    "admin/intake/interaction/": row(
        "admin:intake_interaction_changelist",
        GET("/admin/intake/interaction/", ADMIN_READ),
        POST("/admin/intake/interaction/", NO_ACTIONS, delete_action("{id}")),
    ),
    "admin/intake/interaction/add/": row(
        "admin:intake_interaction_add",
        GET("/admin/intake/interaction/add/", ADMIN_WRITE),
        POST("/admin/intake/interaction/add/", ADMIN_WRITE),
    ),
    "admin/intake/interaction/<path:object_id>/history/": row(
        "admin:intake_interaction_history",
        GET("/admin/intake/interaction/{id}/history/", ADMIN_READ),
    ),
    "admin/intake/interaction/<path:object_id>/delete/": row(
        "admin:intake_interaction_delete",
        GET("/admin/intake/interaction/{id}/delete/", ADMIN_WRITE),
        POST("/admin/intake/interaction/{id}/delete/", ADMIN_WRITE, {"post": "yes"}),
    ),
    "admin/intake/interaction/<path:object_id>/change/": row(
        "admin:intake_interaction_change",
        # GET shows the record read-only.
        GET("/admin/intake/interaction/{id}/change/", ADMIN_READ),
        POST("/admin/intake/interaction/{id}/change/", ADMIN_WRITE),
    ),
    "admin/intake/interaction/<path:object_id>/": row(
        None,
        GET(
            "/admin/intake/interaction/{id}/",
            admin_redirect("/admin/intake/interaction/{id}/change/"),
        ),
    ),
    # --- Admin: every call to Corti (read-only for everyone) ----------------
    "admin/intake/corticall/": row(
        "admin:intake_corticall_changelist",
        GET("/admin/intake/corticall/", ADMIN_READ),
        POST("/admin/intake/corticall/", NO_ACTIONS, delete_action("{call}")),
    ),
    "admin/intake/corticall/add/": row(
        "admin:intake_corticall_add",
        GET("/admin/intake/corticall/add/", ADMIN_WRITE),
        POST("/admin/intake/corticall/add/", ADMIN_WRITE),
    ),
    "admin/intake/corticall/<path:object_id>/history/": row(
        "admin:intake_corticall_history",
        GET("/admin/intake/corticall/{call}/history/", ADMIN_READ),
    ),
    "admin/intake/corticall/<path:object_id>/delete/": row(
        "admin:intake_corticall_delete",
        GET("/admin/intake/corticall/{call}/delete/", ADMIN_WRITE),
        POST("/admin/intake/corticall/{call}/delete/", ADMIN_WRITE, {"post": "yes"}),
    ),
    "admin/intake/corticall/<path:object_id>/change/": row(
        "admin:intake_corticall_change",
        GET("/admin/intake/corticall/{call}/change/", ADMIN_READ),
        POST("/admin/intake/corticall/{call}/change/", ADMIN_WRITE),
    ),
    "admin/intake/corticall/<path:object_id>/": row(
        None,
        GET(
            "/admin/intake/corticall/{call}/",
            admin_redirect("/admin/intake/corticall/{call}/change/"),
        ),
    ),
    # --- Admin: the access trail (read-only for everyone) ------------------
    "admin/intake/accessentry/": row(
        "admin:intake_accessentry_changelist",
        GET("/admin/intake/accessentry/", ADMIN_READ),
        POST(
            "/admin/intake/accessentry/",
            TRAIL_ACTION_REFUSED,
            delete_action("{entry}"),
        ),
    ),
    "admin/intake/accessentry/add/": row(
        "admin:intake_accessentry_add",
        GET("/admin/intake/accessentry/add/", ADMIN_WRITE),
        POST("/admin/intake/accessentry/add/", ADMIN_WRITE),
    ),
    "admin/intake/accessentry/<path:object_id>/history/": row(
        "admin:intake_accessentry_history",
        GET("/admin/intake/accessentry/{entry}/history/", ADMIN_READ),
    ),
    "admin/intake/accessentry/<path:object_id>/delete/": row(
        "admin:intake_accessentry_delete",
        GET("/admin/intake/accessentry/{entry}/delete/", ADMIN_WRITE),
        POST("/admin/intake/accessentry/{entry}/delete/", ADMIN_WRITE, {"post": "yes"}),
    ),
    "admin/intake/accessentry/<path:object_id>/change/": row(
        "admin:intake_accessentry_change",
        GET("/admin/intake/accessentry/{entry}/change/", ADMIN_READ),
        POST("/admin/intake/accessentry/{entry}/change/", ADMIN_WRITE),
    ),
    "admin/intake/accessentry/<path:object_id>/": row(
        None,
        GET(
            "/admin/intake/accessentry/{entry}/",
            admin_redirect("/admin/intake/accessentry/{entry}/change/"),
        ),
    ),
    # --- Admin: auth User (only a superuser manages accounts) ---------------
    "admin/auth/user/": row(
        "admin:auth_user_changelist",
        GET("/admin/auth/user/", ADMIN_READ),
        POST("/admin/auth/user/", NO_ACTIONS, delete_action("{user}")),
    ),
    "admin/auth/user/add/": row(
        "admin:auth_user_add",
        GET("/admin/auth/user/add/", ADMIN_WRITE),
        POST(
            "/admin/auth/user/add/",
            ADMIN_WRITE,
            {
                "username": "mallory",
                "password1": "x-Pw-12345",
                "password2": "x-Pw-12345",
            },
        ),
    ),
    "admin/auth/user/<id>/password/": row(
        "admin:auth_user_password_change",
        GET("/admin/auth/user/{user}/password/", ADMIN_WRITE),
        POST(
            "/admin/auth/user/{user}/password/",
            ADMIN_WRITE,
            {"password1": "taken-Over-1", "password2": "taken-Over-1"},
        ),
    ),
    "admin/auth/user/<path:object_id>/history/": row(
        "admin:auth_user_history",
        GET("/admin/auth/user/{user}/history/", ADMIN_READ),
    ),
    "admin/auth/user/<path:object_id>/delete/": row(
        "admin:auth_user_delete",
        GET("/admin/auth/user/{user}/delete/", ADMIN_WRITE),
        POST("/admin/auth/user/{user}/delete/", ADMIN_WRITE, {"post": "yes"}),
    ),
    "admin/auth/user/<path:object_id>/change/": row(
        "admin:auth_user_change",
        # GET shows the account read-only (the password hash masked).
        GET("/admin/auth/user/{user}/change/", ADMIN_READ),
        POST(
            "/admin/auth/user/{user}/change/",
            ADMIN_WRITE,
            {"username": "clin", "is_staff": "on", "is_superuser": "on"},
        ),
    ),
    "admin/auth/user/<path:object_id>/": row(
        None,
        GET(
            "/admin/auth/user/{user}/",
            admin_redirect("/admin/auth/user/{user}/change/"),
        ),
    ),
    # --- Admin: auth Group --------------------------------------------------
    "admin/auth/group/": row(
        "admin:auth_group_changelist",
        GET("/admin/auth/group/", ADMIN_READ),
        POST("/admin/auth/group/", NO_ACTIONS, delete_action("{group}")),
    ),
    "admin/auth/group/add/": row(
        "admin:auth_group_add",
        GET("/admin/auth/group/add/", ADMIN_WRITE),
        POST("/admin/auth/group/add/", ADMIN_WRITE, {"name": "Superheroes"}),
    ),
    "admin/auth/group/<path:object_id>/history/": row(
        "admin:auth_group_history",
        GET("/admin/auth/group/{group}/history/", ADMIN_READ),
    ),
    "admin/auth/group/<path:object_id>/delete/": row(
        "admin:auth_group_delete",
        GET("/admin/auth/group/{group}/delete/", ADMIN_WRITE),
        POST("/admin/auth/group/{group}/delete/", ADMIN_WRITE, {"post": "yes"}),
    ),
    "admin/auth/group/<path:object_id>/change/": row(
        "admin:auth_group_change",
        GET("/admin/auth/group/{group}/change/", ADMIN_READ),
        POST("/admin/auth/group/{group}/change/", ADMIN_WRITE, {"name": "Renamed"}),
    ),
    "admin/auth/group/<path:object_id>/": row(
        None,
        GET(
            "/admin/auth/group/{group}/",
            admin_redirect("/admin/auth/group/{group}/change/"),
        ),
    ),
    # --- Admin: django-axes AccessAttempt -----------------------------------
    "admin/axes/accessattempt/": row(
        "admin:axes_accessattempt_changelist",
        GET("/admin/axes/accessattempt/", ADMIN_READ),
        POST(
            "/admin/axes/accessattempt/",
            ATTEMPTS_ACTION_REFUSED,
            delete_action("{attempt}"),
        ),
        # django-axes' own clean-up action (it deletes attempts and asks only
        # for view permission) is not offered.
        POST(
            "/admin/axes/accessattempt/",
            ATTEMPTS_ACTION_REFUSED,
            {
                "action": "cleanup_expired_attempts",
                "_selected_action": "{expired_attempt}",
            },
        ),
    ),
    "admin/axes/accessattempt/add/": row(
        "admin:axes_accessattempt_add",
        GET("/admin/axes/accessattempt/add/", ADMIN_WRITE),
        POST("/admin/axes/accessattempt/add/", ADMIN_WRITE),
    ),
    "admin/axes/accessattempt/<path:object_id>/history/": row(
        "admin:axes_accessattempt_history",
        GET("/admin/axes/accessattempt/{attempt}/history/", ADMIN_READ),
    ),
    "admin/axes/accessattempt/<path:object_id>/delete/": row(
        "admin:axes_accessattempt_delete",
        # Unlocking someone is a superuser's job (or the cool-off's).
        GET("/admin/axes/accessattempt/{attempt}/delete/", ADMIN_WRITE),
        POST(
            "/admin/axes/accessattempt/{attempt}/delete/", ADMIN_WRITE, {"post": "yes"}
        ),
    ),
    "admin/axes/accessattempt/<path:object_id>/change/": row(
        "admin:axes_accessattempt_change",
        GET("/admin/axes/accessattempt/{attempt}/change/", ADMIN_READ),
        POST("/admin/axes/accessattempt/{attempt}/change/", ADMIN_WRITE),
    ),
    "admin/axes/accessattempt/<path:object_id>/": row(
        None,
        GET(
            "/admin/axes/accessattempt/{attempt}/",
            admin_redirect("/admin/axes/accessattempt/{attempt}/change/"),
        ),
    ),
    # --- Admin: django-axes AccessLog ---------------------------------------
    "admin/axes/accesslog/": row(
        "admin:axes_accesslog_changelist",
        GET("/admin/axes/accesslog/", ADMIN_READ),
        POST("/admin/axes/accesslog/", NO_ACTIONS, delete_action("{log}")),
    ),
    "admin/axes/accesslog/add/": row(
        "admin:axes_accesslog_add",
        GET("/admin/axes/accesslog/add/", ADMIN_WRITE),
        POST("/admin/axes/accesslog/add/", ADMIN_WRITE),
    ),
    "admin/axes/accesslog/<path:object_id>/history/": row(
        "admin:axes_accesslog_history",
        GET("/admin/axes/accesslog/{log}/history/", ADMIN_READ),
    ),
    "admin/axes/accesslog/<path:object_id>/delete/": row(
        "admin:axes_accesslog_delete",
        GET("/admin/axes/accesslog/{log}/delete/", ADMIN_WRITE),
        POST("/admin/axes/accesslog/{log}/delete/", ADMIN_WRITE, {"post": "yes"}),
    ),
    "admin/axes/accesslog/<path:object_id>/change/": row(
        "admin:axes_accesslog_change",
        GET("/admin/axes/accesslog/{log}/change/", ADMIN_READ),
        POST("/admin/axes/accesslog/{log}/change/", ADMIN_WRITE),
    ),
    "admin/axes/accesslog/<path:object_id>/": row(
        None,
        GET(
            "/admin/axes/accesslog/{log}/",
            admin_redirect("/admin/axes/accesslog/{log}/change/"),
        ),
    ),
    # --- Admin: django-axes AccessFailureLog --------------------------------
    "admin/axes/accessfailurelog/": row(
        "admin:axes_accessfailurelog_changelist",
        GET("/admin/axes/accessfailurelog/", ADMIN_READ),
        POST("/admin/axes/accessfailurelog/", NO_ACTIONS, delete_action("{failure}")),
    ),
    "admin/axes/accessfailurelog/add/": row(
        "admin:axes_accessfailurelog_add",
        GET("/admin/axes/accessfailurelog/add/", ADMIN_WRITE),
        POST("/admin/axes/accessfailurelog/add/", ADMIN_WRITE),
    ),
    "admin/axes/accessfailurelog/<path:object_id>/history/": row(
        "admin:axes_accessfailurelog_history",
        GET("/admin/axes/accessfailurelog/{failure}/history/", ADMIN_READ),
    ),
    "admin/axes/accessfailurelog/<path:object_id>/delete/": row(
        "admin:axes_accessfailurelog_delete",
        GET("/admin/axes/accessfailurelog/{failure}/delete/", ADMIN_WRITE),
        POST(
            "/admin/axes/accessfailurelog/{failure}/delete/",
            ADMIN_WRITE,
            {"post": "yes"},
        ),
    ),
    "admin/axes/accessfailurelog/<path:object_id>/change/": row(
        "admin:axes_accessfailurelog_change",
        GET("/admin/axes/accessfailurelog/{failure}/change/", ADMIN_READ),
        POST("/admin/axes/accessfailurelog/{failure}/change/", ADMIN_WRITE),
    ),
    "admin/axes/accessfailurelog/<path:object_id>/": row(
        None,
        GET(
            "/admin/axes/accessfailurelog/{failure}/",
            admin_redirect("/admin/axes/accessfailurelog/{failure}/change/"),
        ),
    ),
}


# --- Walking the URL resolver -----------------------------------------------


def _join_route(prefix: str, route: str) -> str:
    """Join two routes as Django's resolver does for ResolverMatch.route."""
    return prefix + route.removeprefix("^") if prefix else route


def url_patterns(resolver=None, prefix: str = "", namespace: str = ""):
    """(route, name) of every URLPattern the root URLconf reaches."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = _join_route(prefix, str(entry.pattern))
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from url_patterns(entry, route, inner)
        else:
            assert isinstance(entry, URLPattern), entry
            yield route, f"{namespace}{entry.name}" if entry.name else None


def test_every_url_pattern_has_a_policy():
    walked = list(url_patterns())
    routes = [route for route, _ in walked]
    shared = sorted({r for r in routes if routes.count(r) > 1})
    assert not shared, f"URL patterns sharing a route: {shared}"

    missing = [f"{r!r} (name {n!r})" for r, n in walked if r not in POLICY]
    assert not missing, "URL patterns without a POLICY row: " + ", ".join(missing)
    stale = sorted(set(POLICY) - set(routes))
    assert not stale, f"POLICY rows for URL patterns that do not exist: {stale}"
    renamed = [
        f"{r!r} is named {n!r}, POLICY says {POLICY[r].name!r}"
        for r, n in walked
        if POLICY[r].name != n
    ]
    assert not renamed, "; ".join(renamed)


def test_policy_answers_every_role_of_every_request():
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
    return make_interaction(
        clinician,
        encounter_identifier="ENC-ACCESS",
        time_zone="UTC",
        outcome=Interaction.Outcome.PENDING,
    )


@pytest.fixture
def placeholders(record, clinician):
    """What POLICY's placeholders stand for; call it after signing in.

    django-axes deletes expired attempts whenever someone signs in or out, so
    `{expired_attempt}` is made only for the request that names it.
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    from intake.models import AccessEntry, CortiCall

    seen = {"user_agent": "pytest", "ip_address": "192.0.2.7"}
    attempt = {"get_data": "", "post_data": "", "failures_since_start": 1}

    def make(*, expired_attempt: bool = False) -> dict:
        expired = None
        if expired_attempt:
            expired = AccessAttempt.objects.create(**seen, **attempt, username="old")
            # The cool-off is minutes.
            AccessAttempt.objects.filter(pk=expired.pk).update(
                attempt_time=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
            )
        return {
            "id": record.pk,
            "key": UNSENT_KEY,
            "user": clinician.pk,
            "group": Group.objects.get(name="Clinicians").pk,
            "attempt": AccessAttempt.objects.create(
                **seen, **attempt, username="clin"
            ).pk,
            "expired_attempt": expired.pk if expired else None,
            "log": AccessLog.objects.create(**seen, username="clin").pk,
            "failure": AccessFailureLog.objects.create(**seen, username="clin").pk,
            "ct": ContentType.objects.get_for_model(Interaction).pk,
            "entry": AccessEntry.objects.create(action="viewed", user=clinician).pk,
            "call": CortiCall.objects.create(
                interaction=record,
                kind="create",
                trigger="submit",
                started_at=dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC),
                result="created",
            ).pk,
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
    tables = {
        "interactions": Interaction.objects.values(),
        "calls": CortiCall.objects.values(),
        "users": user_model.objects.values(*user_fields),
        "user_groups": user_model.groups.through.objects.values(),
        "user_permissions": user_model.user_permissions.through.objects.values(),
        "groups": Group.objects.values(),
        "group_permissions": Group.permissions.through.objects.values(),
        "access_attempts": AccessAttempt.objects.values(),
        "access_failures": AccessFailureLog.objects.values(),
        "admin_log": LogEntry.objects.values(),
    }
    return {name: list(rows.order_by("pk")) for name, rows in tables.items()}


def _fill(data, values: dict):
    """`data` with its placeholders filled in, at any depth."""
    if isinstance(data, str):
        return data.format(**values)
    if isinstance(data, list):
        return [_fill(v, values) for v in data]
    if isinstance(data, dict):
        return {k: _fill(v, values) for k, v in data.items()}
    return data


@pytest.mark.parametrize(("route", "req", "role", "answer"), CASES)
@pytest.mark.slow  # every URL as every role: ~400 requests, ~25 s
def test_access_policy(client_as, corti, placeholders, route, req, role, answer):
    client = client_as(role)
    values = placeholders(expired_attempt="{expired_attempt}" in repr(req.data))
    url = req.url.format(**values)
    # The request reaches the row's own pattern, not a neighbour's.
    assert resolve(urlsplit(url).path).route == route
    before = _stored()

    response = getattr(client, req.method)(url, _fill(req.data or {}, values))

    got = f"{req.method.upper()} {url} as {role}: {response.status_code}"
    location = response.headers.get("Location")
    if location:
        got += f" to {location}"
    assert response.status_code == answer.status, got
    if answer.to is None:
        assert location is None, got
    elif answer.to.endswith("*"):
        assert location.startswith(answer.to[:-1].format(**values)), got
    elif answer.to.endswith("="):
        assert location == answer.to + quote(url, safe="/"), got
    else:
        assert location == answer.to.format(**values), got
    if answer == FRESH_FORM:
        assert uuid.UUID(location.removeprefix(FRESH_FORM.to[:-1])), got
    if answer.content_type:
        assert response["Content-Type"].startswith(answer.content_type), got
    if response.streaming:
        b"".join(response.streaming_content)
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
