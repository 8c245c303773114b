"""Thin views: parse the request, call a service or selector, render."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_not_required, permission_required
from django.contrib.auth.models import User
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from . import charts, sessions
from .exports import interactions_csv
from .fields import InteractionDetails
from .forms import (
    CorrectionForm,
    EndForm,
    HistoryFilterForm,
    IntakeForm,
    PasswordChangeForm,
    ProfileForm,
    SignInForm,
    form_for_record,
    prefill_from_query,
    shown_details,
)
from .keys import FORM_KEY_PARAM, uuid_or_none
from .models import (
    ENCOUNTER_STATUS_CHOICES,
    ENCOUNTER_TYPE_CHOICES,
    Interaction,
    InteractionChange,
    Recording,
)
from .notices import answer_notice, life_notice, retry_notice
from .search import TEXT_AND_ID_PREFIX, id_prefix_range
from .selectors import (
    COUNT_LIMIT,
    SORTS,
    HistoryCursor,
    HistoryPage,
    HistorySort,
    count_up_to,
    interaction_by_submission_key,
    interaction_calls,
    interaction_changes,
    interaction_events,
    interaction_get,
    interaction_page,
    interaction_recordings,
    people_with_profiles,
    profile_corti_user_id,
    submissions_per_day,
    submissions_per_user,
    users_by_name,
)
from .selectors import interaction_list as interaction_list_select
from .selectors import my_day as my_day_select
from .services import lifecycle, readiness, recording
from .services.accounts import profile_set_corti_user_id
from .services.audit import Action, audit_record, history_detail
from .services.interactions import (
    Refusal,
    Submission,
    interaction_likely_duplicate,
    interaction_may_resend,
    interaction_submit,
)
from .services.interactions import interaction_retry as interaction_retry_service
from .services.lifecycle import LifeResult
from .services.reconciliation import interaction_nudge

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
# A day: the icon seldom changes, and a new one shows within a day.
FAVICON_MAX_AGE = 24 * 60 * 60
# The button that creates one more interaction despite a likely duplicate.
CONFIRM_DUPLICATE_PARAM = "confirm_duplicate"
# Live validation of one field also refreshes the fields whose rules read it.
DEPENDENT_FIELDS = {"encounter_started_at": ["encounter_ended_at"]}


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class SignedInHttpRequest(HtmxHttpRequest):
    """A request LoginRequiredMiddleware let through: its user signed in."""

    user: User


@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    """A clinician's home is their day; a reader's, the history."""
    if request.user.has_perm("intake.add_interaction"):
        if request.user.has_perm("intake.follow_interaction"):
            return redirect("intake:my_day")
        return redirect("intake:interaction_create")
    return redirect("intake:interaction_list")


@permission_required("intake.add_interaction", raise_exception=True)
@require_GET
def my_day(request: SignedInHttpRequest) -> HttpResponse:
    """The clinician's own submissions of today on the clinic's clocks:
    planned and in progress first, each with End (one press) and Open."""
    today = timezone.localdate()
    now = timezone.now()
    rows = my_day_select(user=request.user, day=today)
    return render(
        request,
        "intake/my_day.html",
        {
            "rows": [
                (
                    row,
                    lifecycle.changeable(row)
                    and row.encounter_status not in ENDED_STATUSES
                    # One planned for later cannot end now.
                    and row.encounter_started_at <= now
                    and lifecycle.interaction_may_change(user=request.user, record=row),
                )
                for row in rows
            ],
            "today": today,
        },
    )


@require_http_methods(["GET", "POST"])
def profile(request: SignedInHttpRequest, user_id: int | None = None) -> HttpResponse:
    """A user's Corti user ID: their own, or anyone's for administrators."""
    person = request.user
    if user_id is not None and user_id != request.user.pk:
        if not request.user.has_perm("intake.change_any_profile"):
            raise PermissionDenied
        person = get_object_or_404(User, pk=user_id, is_active=True)
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            profile_set_corti_user_id(
                user=person, corti_user_id=form.cleaned_data["corti_user_id"]
            )
            messages.success(
                request,
                _("Saved: new intake forms of %(user)s are assigned to %(id)s.")
                % {
                    "user": person.get_username(),
                    "id": form.cleaned_data["corti_user_id"] or _("no one"),
                }
                if form.cleaned_data["corti_user_id"]
                else _("Saved: %(user)s keeps no Corti user ID.")
                % {"user": person.get_username()},
            )
            if person == request.user:
                return _redirect(request, reverse("intake:profile"))
            return _redirect(request, reverse("intake:profiles"))
        status = 400
    else:
        form = ProfileForm(
            initial={"corti_user_id": profile_corti_user_id(user=person)}
        )
        status = 200
    return render(
        request,
        "intake/profile.html",
        {"form": form, "person": person, "own": person == request.user},
        status=status,
    )


@permission_required("intake.change_any_profile", raise_exception=True)
@require_GET
def profiles(request: SignedInHttpRequest) -> HttpResponse:
    """Administrators: every user's Corti user ID, each with a link to set it."""
    return render(request, "intake/profiles.html", {"people": people_with_profiles()})


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the dashboard can serve requests, 503 when it cannot."""
    return _report(readiness.health_report())


@login_not_required
@require_GET
@cache_control(max_age=FAVICON_MAX_AGE, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Answer /favicon.ico with the site's icon.

    Pages link static/favicon.svg; a browser showing a JSON answer (/healthz)
    or a Django admin page asks for /favicon.ico instead, which was a 404 in
    the log each time.
    """
    icon = finders.find("favicon.svg")
    assert isinstance(icon, str)  # one of the site's own static files
    return HttpResponse(Path(icon).read_bytes(), content_type="image/svg+xml")


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when submissions can reach Corti, 503 (and why) when not.

    Checks the database, and reports the last sign-in check (at most one per
    half minute for all workers, in the background: services.readiness).
    """
    return _report(readiness.readiness_report())


def _report(report: readiness.Report) -> JsonResponse:
    return JsonResponse(report.as_json(), status=report.http_status)


class SignInView(LoginView):
    """Django's sign-in, saying why the user is here after being signed out."""

    authentication_form = SignInForm

    def form_valid(self, form):
        # Someone signing in over a session still signed in (a shared
        # computer, a bookmarked sign-in page): sign that session out first,
        # as its Sign out button would, so what it had under way (a
        # recording) is closed on the record as signed out.
        if self.request.user.is_authenticated:
            auth_logout(self.request)
        return super().form_valid(form)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["idle_signed_out"] = sessions.was_signed_out_idle(self.request)
        context["max_age_signed_out"] = sessions.was_signed_out_at_max_age(self.request)
        context["draft_kept"] = sessions.draft_pending(self.request) is not None
        context["idle_duration"] = sessions.idle_phrase()
        context["max_age_duration"] = sessions.max_age_phrase()
        return context


class ThrottledPasswordChangeView(PasswordChangeView):
    """Django's password change; wrong current passwords count as failed
    sign-ins and are paused the same way."""

    form_class = PasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        # The change gives the session a new key: recordings it started
        # follow, so its sign-out still closes them.
        before = self.request.session.session_key
        response = super().form_valid(form)
        recording.recordings_follow_session(
            before=before, after=self.request.session.session_key
        )
        return response


def signin_locked_out(
    request: HttpRequest, response=None, credentials=None, *args, **kwargs
):
    """django-axes' answer to a locked-out sign-in or password change: why,
    and for how long."""
    # AXES_COOLOFF_TIME is in hours.
    seconds = round(settings.AXES_COOLOFF_TIME * 3600)
    match = request.resolver_match
    password_change = match is not None and match.view_name == "password_change"
    return render(
        request,
        "registration/locked_out.html",
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "username": (credentials or {}).get("username", ""),
            "lockout_duration": sessions.duration_phrase(seconds),
            "password_change": password_change,
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def session(request: HtmxHttpRequest) -> JsonResponse:
    """GET: seconds left before the idle sign-out. POST: stay signed in.

    Reading it does not count as activity; posting does (the middleware
    restarts the idle clock on every other request).
    """
    if not request.user.is_authenticated:
        # 200: the page asks this as a question; "no" is an answer, not an error.
        return JsonResponse({"signed_in": False})
    return JsonResponse(
        {
            "signed_in": True,
            "expires_in": round(sessions.seconds_left(request)),
            "warning": settings.INTAKE_SESSION_WARNING,
        }
    )


@permission_required("intake.add_interaction", raise_exception=True)
@require_http_methods(["GET", "POST"])
def interaction_create(request: SignedInHttpRequest) -> HttpResponse:
    """Show the intake form; on a valid POST create the interaction in Corti.

    The form's page address carries its submission key (`?key=`): a reload or
    the back button shows the same form, and sending it again reaches the
    same record. Once a key was sent its address shows what was sent,
    read-only; only a failed submission can be corrected there, by its
    submitter or an Administrator.
    """
    if request.method == "GET":
        return _create_page(request)
    form = IntakeForm(request.POST)
    if not form.is_valid():
        return _render_form(request, form)
    duplicate = _unconfirmed_duplicate(request, form)
    if duplicate is not None:
        # Ask first; one press on "Create another one" goes on.
        return _render_form(request, form, duplicate=duplicate)
    submission = interaction_submit(
        submission_key=form.cleaned_data["submission_key"],
        submitted_by=request.user,
        details=form.details,
    )
    if submission.resent:
        action = Action.CORRECTED if submission.corrected else Action.RETRIED
        audit_record(request, action, record=submission.record)
    return _submission_answer(request, form, submission)


@permission_required("intake.add_interaction", raise_exception=True)
@require_POST
def interaction_retry(
    request: SignedInHttpRequest, record_id: uuid.UUID
) -> HttpResponse:
    """Send a failed submission to Corti again, as it was; no retyping.

    For a submission whose answer was lost: ask the worker to check Corti now.
    """
    record, result = interaction_retry_service(
        record=interaction_get(record_id=record_id), user=request.user
    )
    audit_record(request, Action.RETRIED, record=record, result=str(result.value))
    level, text = retry_notice(record, result)
    messages.add_message(request, level, text)
    return _redirect(request, record.get_absolute_url())


@permission_required("intake.add_interaction", raise_exception=True)
@require_POST
def interaction_validate(request: HtmxHttpRequest) -> HttpResponse:
    """Validate the posted form; render the errors of one field (htmx)."""
    form = IntakeForm(request.POST)
    form.is_valid()
    name = request.POST.get("_field", "")
    if name not in form.fields:
        return HttpResponse(status=400)
    return render(
        request,
        "intake/interaction_form.html#field-errors-live",
        {
            "field": form[name],
            "dependents": [form[n] for n in DEPENDENT_FIELDS.get(name, [])],
        },
    )


@permission_required("intake.view_interaction", raise_exception=True)
@require_GET
def interaction_list(request: HtmxHttpRequest) -> HttpResponse:
    """List submissions newest first, with search, filters and pages."""
    filters = _history_filters(request)
    found, ids_only = _history_found(filters)
    sort = filters.order()
    page = interaction_page(
        found,
        size=PAGE_SIZE,
        sort=sort,
        older_than=_cursor(request, "older", sort),
        newer_than=_cursor(request, "newer", sort),
    )
    _keep_cursor_values(request, sort, page)
    count = count_up_to(found, COUNT_LIMIT)
    if filters.narrowed():
        # Every search the page runs (typing runs one whenever it pauses),
        # and every page of it.
        turned = "older" if "older" in request.GET else ""
        turned = "newer" if "newer" in request.GET else turned
        audit_record(
            request,
            Action.SEARCHED,
            **history_detail(filters.selection(), found=count),
            page=turned or "first",
        )
    context = {
        "page": page,
        "ids_only": ids_only,
        "count": min(count, COUNT_LIMIT),
        "more_than_counted": count > COUNT_LIMIT,
        "filtered": filters.narrowed(),
        "sort": sort,
        "by_time": sort.column is None and sort.descending,
        "columns": _history_columns(sort),
        "filter_form": filters,
        "filters": _shown_filters(filters),
        "status_choices": ENCOUNTER_STATUS_CHOICES,
        "type_choices": ENCOUNTER_TYPE_CHOICES,
        "outcome_choices": Interaction.Outcome.choices,
    }
    template = "intake/interaction_list.html"
    # The results alone for htmx's swaps; the whole page when htmx restores
    # an address from history (the back button after a filter or a page).
    if request.htmx and not (
        request.htmx.boosted or request.htmx.history_restore_request
    ):
        template += "#results"
        context["oob_errors"] = True
    return render(request, template, context)


#: The overview's periods, in days.
OVERVIEW_PERIODS = (30, 90)
#: Users named on the per-user chart; the rest are summed as "others".
OVERVIEW_USERS = 20


@permission_required("intake.view_overview", raise_exception=True)
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Administrators' overview: submissions per day by type and by outcome,
    and per submitting user, over the last 30 or 90 days, as SVG and tables."""
    asked = request.GET.get("days", "")
    days = next((p for p in OVERVIEW_PERIODS if str(p) == asked), OVERVIEW_PERIODS[0])
    today = timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    every = 5 if days <= 30 else 15

    # Both charts from one pass over the days' rows.
    counted = submissions_per_day(
        first_day=first, days=days, by=("encounter_type", "outcome")
    )

    def per_day(by: str) -> list[tuple[str, dict[str, int]]]:
        return [(day.isoformat(), counted[by][day]) for day in sorted(counted[by])]

    by_type = charts.stacked(
        id="chart-types",
        title=f"Submissions per day by encounter type, last {days} days",
        caption="Each bar is one day on the clinic's clocks, its parts the types.",
        series=[(value, str(label)) for value, label in ENCOUNTER_TYPE_CHOICES],
        rows=per_day("encounter_type"),
        label_every=every,
    )
    by_outcome = charts.stacked(
        id="chart-outcomes",
        title=f"Submissions per day by outcome, last {days} days",
        caption="Each bar is one day, its parts what Corti answered.",
        series=[(value, str(label)) for value, label in Interaction.Outcome.choices],
        rows=per_day("outcome"),
        label_every=every,
    )
    totals = submissions_per_user(first_day=first, days=days)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    shown = ranked[:OVERVIEW_USERS]
    others = sum(count for _, count in ranked[OVERVIEW_USERS:])
    if others:
        shown.append((f"{len(ranked) - OVERVIEW_USERS} others", others))
    per_user = charts.horizontal(
        id="chart-users",
        title=f"Submissions per user, last {days} days",
        caption="Who submitted, most first.",
        label="Submissions",
        rows=shown,
    )
    return render(
        request,
        "intake/overview.html",
        {
            "days": days,
            "periods": OVERVIEW_PERIODS,
            "first": first,
            "today": today,
            "charts": [by_type, by_outcome],
            "per_user": per_user,
        },
    )


@permission_required(
    ["intake.view_interaction", "intake.export_interaction"], raise_exception=True
)
@never_cache
@require_GET
def interaction_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """Download the submissions the list shows (same search and filters) as CSV."""
    filters = _history_filters(request)
    found, _ = _history_found(filters)
    audit_record(
        request,
        Action.EXPORTED,
        **history_detail(filters.selection(), found=count_up_to(found, COUNT_LIMIT)),
    )
    records = found.order_by(*filters.order().order_by()).iterator(chunk_size=2000)
    # Who exported, never what: the filters can hold a patient's name.
    logger.info(
        "User %s exported interactions (%s)",
        request.user.pk,
        "filtered" if filters.narrowed() else "all",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        interactions_csv(records), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="interactions-{stamp}.csv"'
    return response


@permission_required("intake.view_interaction", raise_exception=True)
@require_GET
def interaction_detail(
    request: SignedInHttpRequest, record_id: uuid.UUID
) -> HttpResponse:
    """Show one submission: Corti's answer, what was sent, what Corti holds now.

    Never calls Corti: a submission whose check is due, or whose copy of
    Corti's state is older than INTAKE_REFRESH_SECONDS, gets a background task,
    and the page asks again every few seconds until that is done.
    """
    record = interaction_get(record_id=record_id)
    interaction_nudge(record=record)
    # htmx's own swaps of the live part; never a boosted link or a restore of
    # an address from history (they want the whole page).
    swap = bool(request.htmx) and not (
        request.htmx.boosted or request.htmx.history_restore_request
    )
    if swap and request.GET.get("part") == "recordings":
        # The recordings table, asked again by the recorder when a recording
        # started or ended on the page (it shows the consent, perhaps a kept
        # transcript: a view).
        audit_record(request, Action.VIEWED, record=record)
        return _recordings_part(request, record)
    if not swap:
        # Opening the page (not its polls) asks for a read of an old copy.
        lifecycle.interaction_refresh_soon(record=record)
    unchanged = request.GET.get("since") == dateformat.format(
        record.updated_at, "U.u"
    ) and request.GET.get("r", "0") == (
        "1" if lifecycle.refresh_queued(record) else "0"
    )
    if swap and unchanged:
        # Nothing changed since the page last asked: nothing to swap (and
        # nothing seen: not a view).
        return HttpResponse(status=204)
    # Anything that shows the record (the page, a swap of its new state).
    audit_record(request, Action.VIEWED, record=record)
    return _detail_page(request, record, live_only=swap)


def _detail_page(
    request: SignedInHttpRequest,
    record: Interaction,
    *,
    live_only: bool = False,
    end_form: EndForm | None = None,
    stream_grant: recording.StreamGrant | None = None,
    status: int = 200,
) -> HttpResponse:
    template = "intake/interaction_detail.html"
    if live_only:
        template += "#live"
    may_change = lifecycle.interaction_may_change(user=request.user, record=record)
    changeable = lifecycle.changeable(record)
    recordings = list(interaction_recordings(record=record))
    may_record, may_stream = recording.recorder_on_page(
        user=request.user, record=record, recordings=recordings
    )
    response = render(
        request,
        template,
        {
            **_recording_context(may_record=may_record, may_stream=may_stream),
            "recordings": recordings,
            "stream_grant": stream_grant,
            "interaction": record,
            "calls": interaction_calls(record=record),
            "events": interaction_events(record=record),
            "changes": list(interaction_changes(record=record)),
            "comparison": record.comparison_rows() if record.corti_read_at else [],
            **_pending(record),
            "refreshing": lifecycle.refresh_queued(record),
            "refresh_failed_at": lifecycle.refresh_failed_at(record),
            "may_change": may_change and changeable,
            "may_refresh": may_change and lifecycle.refresh_allowed(record),
            "may_delete": changeable
            and lifecycle.interaction_may_delete(user=request.user),
            "end_form": end_form or EndForm(started_at=record.encounter_started_at),
            "ended": record.encounter_status in ENDED_STATUSES,
            "can_resend": record.is_failed
            and interaction_may_resend(user=request.user, record=record),
            # Names as written (Søren, not S\u00f8ren); the template escapes.
            "request_body_json": json.dumps(
                record.request_body, indent=2, ensure_ascii=False
            ),
            "problem_json": json.dumps(
                record.error_problem, indent=2, ensure_ascii=False
            )
            if record.error_problem
            else "",
        },
        status=status,
    )
    if may_stream:
        # The page opens Corti's streams socket: that origin, and only it.
        response._csp_update = {  # type: ignore[attr-defined]
            "connect-src": [settings.CORTI_STREAM_ORIGIN]
        }
    return response


def _recordings_part(request: SignedInHttpRequest, record: Interaction) -> HttpResponse:
    recordings = list(interaction_recordings(record=record))
    may_record, may_stream = recording.recorder_on_page(
        user=request.user, record=record, recordings=recordings
    )
    return render(
        request,
        "intake/interaction_detail.html#recordings",
        {
            **_recording_context(may_record=may_record, may_stream=may_stream),
            "recordings": recordings,
            "interaction": record,
        },
    )


def _recording_context(*, may_record: bool, may_stream: bool) -> dict[str, Any]:
    return {
        "may_record": may_record,
        "may_stream": may_stream,
        "recording_languages": recording.LANGUAGES.items(),
        "recording_language": recording.default_language(),
        "consent_text": settings.INTAKE_RECORDING_CONSENT_TEXT,
        "keep_transcript": settings.INTAKE_RECORDING_KEEP_TRANSCRIPT,
        "buffer_seconds": settings.INTAKE_RECORDING_BUFFER_SECONDS,
        "request_seconds": recording.token_wait_seconds(),
    }


def _pending(record: Interaction) -> dict[str, Any]:
    """What the page says of a change whose answer was lost."""
    pending = record.pending_change or {}
    if not pending:
        return {}
    by = User.objects.filter(pk=pending.get("by") or 0).first()
    at = None
    try:
        at = dt.datetime.fromisoformat(str(pending.get("at")))
    except ValueError:
        at = None
    words = {
        str(InteractionChange.Kind.ENDED): _("Ending the encounter"),
        str(InteractionChange.Kind.CORRECTED): _("A correction"),
        str(InteractionChange.Kind.DELETED): _("Deleting it in Corti"),
    }
    return {
        "pending_what": words.get(str(pending.get("kind")), _("A change")),
        "pending_by": by.get_username() if by else "",
        "pending_at": at,
    }


#: The largest number a recording report may carry (seconds, reconnections).
MAX_REPORTED = 7 * 24 * 3600

#: Statuses after which "End the encounter" is not offered.
ENDED_STATUSES = frozenset({"completed", "cancelled", "deleted"})


def _changeable_record(
    request: SignedInHttpRequest, record_id: uuid.UUID
) -> Interaction:
    """The record, when this user may refresh, end and correct it."""
    record = interaction_get(record_id=record_id)
    if not lifecycle.interaction_may_change(user=request.user, record=record):
        raise PermissionDenied
    return record


@permission_required("intake.follow_interaction", raise_exception=True)
@require_POST
def interaction_refresh(
    request: SignedInHttpRequest, record_id: uuid.UUID
) -> HttpResponse:
    """Read what Corti holds for the interaction now, and keep it."""
    record = _changeable_record(request, record_id)
    result = lifecycle.interaction_refresh(record=record, user=request.user)
    messages.add_message(request, *life_notice("refresh", result, record))
    return _redirect(request, record.get_absolute_url())


@permission_required("intake.follow_interaction", raise_exception=True)
@require_POST
def interaction_end(request: SignedInHttpRequest, record_id: uuid.UUID) -> HttpResponse:
    """End the encounter in Corti: now, or at the time given."""
    record = _changeable_record(request, record_id)
    form = EndForm(request.POST, started_at=record.encounter_started_at)
    if not form.is_valid():
        # The record's page again, with the time's message: a view.
        audit_record(request, Action.VIEWED, record=record, page="end form")
        return _detail_page(request, record, end_form=form, status=400)
    result = lifecycle.interaction_end(
        record=record, user=request.user, ended_at=form.cleaned_data["ended_at"]
    )
    level, text = life_notice("end", result, record)
    # From My day, back to it (the only other place End is pressed).
    back = reverse("intake:my_day")
    if request.POST.get("next") == back:
        text = f"{record.encounter_identifier}: {text}"
        messages.add_message(request, level, text)
        return _redirect(request, back)
    messages.add_message(request, level, text)
    return _redirect(request, record.get_absolute_url())


@permission_required("intake.follow_interaction", raise_exception=True)
@require_http_methods(["GET", "POST"])
def interaction_edit(
    request: SignedInHttpRequest, record_id: uuid.UUID
) -> HttpResponse:
    """Correct a created interaction: the intake form's fields and rules;
    only what changed is sent, and every change is kept on the record."""
    record = _changeable_record(request, record_id)
    kept = {
        "had_patient": bool(record.patient_identifier),
        "had_assigned": record.assigned_user_id is not None,
    }
    if request.method == "POST":
        form = CorrectionForm(request.POST, **kept)
    if not lifecycle.changeable(record):
        text = life_notice("correct", LifeResult(ok=False), record)[1]
        if request.method == "POST" and record.pending_change:
            # Another change is not settled yet: keep what was typed.
            messages.error(request, text)
            return _edit_page(request, record, form, status=409)
        messages.error(request, text)
        return _redirect(request, record.get_absolute_url())
    if request.method == "GET":
        details = InteractionDetails.of(record)
        form = CorrectionForm(
            initial={**details.as_dict(), "shown": shown_details(details)}, **kept
        )
        audit_record(request, Action.VIEWED, record=record, page="correction form")
        return _edit_page(request, record, form)
    if not form.is_valid():
        return _edit_page(request, record, form, status=400)
    result = lifecycle.interaction_correct(
        record=record,
        user=request.user,
        details=InteractionDetails.from_values(form.cleaned_data),
        edited=form.edited(),
    )
    messages.add_message(request, *life_notice("correct", result, record))
    error = result.error
    problem = error.problem if error is not None else None
    if not result.ok and problem is not None and problem.validation_errors:
        # Corti's own messages, beside the fields they name.
        form.add_corti_errors(
            [{path: message} for path, message in problem.validation_errors]
        )
        return _edit_page(request, record, form, status=400)
    if not result.ok and not result.gone and not result.unsettled:
        # Refused (403, 409, 429, ...): the form again, as typed.
        return _edit_page(request, record, form, status=409)
    return _redirect(request, record.get_absolute_url())


def _edit_page(
    request: SignedInHttpRequest,
    record: Interaction,
    form: CorrectionForm,
    *,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "intake/interaction_edit.html",
        {"interaction": record, "form": form},
        status=status,
    )


def _may_record_or_json_403(view):
    """The recorder's own requests: without the permission, a JSON refusal
    the page can say in words (an HTML 403 is what a refused CSRF check, a
    session signed out meanwhile, answers)."""

    @functools.wraps(view)
    def checked(request, *args, **kwargs):
        if not request.user.has_perm("intake.follow_interaction"):
            if "recording_id" in kwargs:
                # Its own recording under way stops, and the record says why.
                recording.recording_close_refused(
                    recording_id=kwargs["recording_id"],
                    user=request.user,
                    failure="not_allowed",
                )
            return _refused(
                recording.RecordingRefused(
                    "Your account may no longer record consultations.",
                    code="forbidden",
                    status=403,
                )
            )
        return view(request, *args, **kwargs)

    return checked


@_may_record_or_json_403
@never_cache
@require_POST
@sensitive_variables()
def recording_start(request: SignedInHttpRequest, record_id: uuid.UUID) -> JsonResponse:
    """Start recording: the consent kept, a stream token for this page once
    (JSON: the address with the token, the config message, where to report)."""
    record = interaction_get(record_id=record_id)
    if request.headers.get("X-Requested-With") != "fetch":
        return _needs_script()
    try:
        grant = recording.recording_start(
            request=request,
            record=record,
            user=request.user,
            consent=request.POST.get("consent") == "on",
            language=request.POST.get("language", ""),
            mode=request.POST.get("mode", ""),
        )
    except recording.RecordingRefused as refused:
        return _refused(refused)
    return JsonResponse(grant.as_json(), status=201)


@_may_record_or_json_403
@never_cache
@require_POST
@sensitive_variables()
def recording_token(
    request: SignedInHttpRequest, record_id: uuid.UUID, recording_id: uuid.UUID
) -> JsonResponse:
    """A fresh stream token for a recording under way (renew, reconnect)."""
    record = interaction_get(record_id=record_id)
    if request.headers.get("X-Requested-With") != "fetch":
        return _needs_script()
    try:
        grant = recording.recording_token(
            request=request,
            recording=_recording(record, recording_id),
            user=request.user,
            purpose=request.POST.get("purpose", "renew"),
        )
    except recording.RecordingRefused as refused:
        return _refused(refused)
    return JsonResponse(grant.as_json())


@_may_record_or_json_403
@never_cache
@require_POST
def recording_report(
    request: SignedInHttpRequest, record_id: uuid.UUID, recording_id: uuid.UUID
) -> JsonResponse:
    """What the page says of its recording: accepted, progress, ended,
    failed (why), interrupted (a closed tab, sent as a beacon)."""
    record = interaction_get(record_id=record_id)

    def number(name: str) -> float | None:
        try:
            value = float(request.POST[name])
        except (KeyError, ValueError):
            return None
        # Only what a recording can be: never NaN, infinite or absurd.
        return value if math.isfinite(value) and 0 <= value <= MAX_REPORTED else None

    transcript = None
    if "transcript" in request.POST:
        try:
            transcript = json.loads(request.POST["transcript"])
        except ValueError:
            transcript = None
    reconnects = number("reconnects")
    try:
        kept = recording.recording_report(
            recording=_recording(record, recording_id),
            user=request.user,
            event=request.POST.get("event", ""),
            seconds=number("seconds"),
            lost=number("lost"),
            reconnects=int(reconnects) if reconnects is not None else None,
            failure=request.POST.get("failure", ""),
            transcript=transcript,
        )
    except recording.RecordingRefused as refused:
        return _refused(refused)
    return JsonResponse({"state": kept.state})


@permission_required("intake.follow_interaction", raise_exception=True)
@never_cache
@require_POST
@sensitive_variables()
def stream_url(request: SignedInHttpRequest, record_id: uuid.UUID) -> HttpResponse:
    """The interaction's websocket URL with a fresh stream token, for a
    desktop or device client; valid only minutes."""
    record = interaction_get(record_id=record_id)
    try:
        grant = recording.stream_url_issue(
            request=request, record=record, user=request.user
        )
    except recording.RecordingRefused as refused:
        if refused.status == 403:
            raise PermissionDenied from refused
        if request.htmx:
            # 200: htmx swaps only successful answers into the page.
            return render(
                request,
                "intake/partials/recorder.html#stream-url",
                {"stream_error": refused.message, "interaction": record},
            )
        messages.error(request, refused.message)
        return _redirect(request, record.get_absolute_url())
    if request.htmx:
        return render(
            request,
            "intake/partials/recorder.html#stream-url",
            {"stream_grant": grant, "interaction": record},
        )
    audit_record(request, Action.VIEWED, record=record, page="stream URL")
    return _detail_page(request, record, stream_grant=grant)


def _recording(record: Interaction, recording_id: uuid.UUID) -> Recording:
    try:
        return recording.recording_of(record=record, recording_id=recording_id)
    except Recording.DoesNotExist as exc:
        raise Http404 from exc


def _needs_script() -> JsonResponse:
    # A form posted without the page's script would show the token as text.
    return JsonResponse(
        {"error": _("Recording needs JavaScript turned on."), "code": "script"},
        status=400,
    )


def _refused(refused: recording.RecordingRefused) -> JsonResponse:
    return JsonResponse(
        {"error": refused.message, "code": refused.code}, status=refused.status
    )


@permission_required("intake.delete_in_corti", raise_exception=True)
@require_http_methods(["GET", "POST"])
def interaction_delete(
    request: SignedInHttpRequest, record_id: uuid.UUID
) -> HttpResponse:
    """Delete the interaction in Corti, after a confirmation that names it;
    the local record is kept and marked deleted."""
    record = interaction_get(record_id=record_id)
    if not lifecycle.changeable(record):
        messages.error(request, life_notice("delete", LifeResult(ok=False), record)[1])
        return _redirect(request, record.get_absolute_url())
    if request.method == "GET":
        audit_record(request, Action.VIEWED, record=record, page="delete confirmation")
        return render(
            request, "intake/interaction_delete.html", {"interaction": record}
        )
    result = lifecycle.interaction_delete(record=record, user=request.user)
    messages.add_message(request, *life_notice("delete", result, record))
    return _redirect(request, record.get_absolute_url())


#: The session keeps the sorted column's value of this many page edges.
CURSOR_VALUES_KEPT = 200
CURSOR_VALUES_KEY = "intake:history-cursor-values"


def _cursor(request: HttpRequest, name: str, sort: HistorySort) -> HistoryCursor | None:
    """The cursor in the address, with its row's column value as its page
    showed it (kept in the session, never in the address)."""
    cursor = HistoryCursor.parse(request.GET.get(name))
    if cursor is None or sort.column is None:
        return cursor
    kept = request.session.get(CURSOR_VALUES_KEY, {})
    value = kept.get(f"{sort.column}:{cursor.pk.hex}")
    return replace(cursor, value=value) if isinstance(value, str) else cursor


def _keep_cursor_values(
    request: HttpRequest, sort: HistorySort, page: HistoryPage
) -> None:
    """Remember the sorted column's value at the page's two edges, for its
    Next and Previous links."""
    if sort.column is None or not page.rows:
        return
    kept = dict(request.session.get(CURSOR_VALUES_KEY, {}))
    for row in (page.rows[0], page.rows[-1]):
        key = f"{sort.column}:{row.pk.hex}"
        kept.pop(key, None)
        kept[key] = str(getattr(row, sort.column))
    while len(kept) > CURSOR_VALUES_KEPT:
        kept.pop(next(iter(kept)))
    request.session[CURSOR_VALUES_KEY] = kept


def _history_filters(request: HttpRequest) -> HistoryFilterForm:
    """The history's filters from the address; invalid ones carry messages."""
    data = request.GET.copy()
    # A pasted essay is searched by its start, not refused.
    data["q"] = data.get("q", "")[:255]
    submitters = users_by_name() if request.user.is_staff else ()
    form = HistoryFilterForm(data, user=request.user, submitters=submitters)
    form.is_valid()
    return form


def _history_found(filters: HistoryFilterForm) -> tuple[QuerySet[Interaction], bool]:
    """What the history shows for these filters, and whether the search was
    read as the start of an interaction ID only.

    4 to 7 hex characters ("4711", "ebba") are searched as text; only when
    no text matches are they read as the start of an ID, and the page says
    so: a short prefix would otherwise list other patients' submissions
    beside the one searched for.
    """
    selection = filters.selection()
    found = interaction_list_select(**selection)
    q = selection["q"]
    short = id_prefix_range(q) and not id_prefix_range(q, shortest=TEXT_AND_ID_PREFIX)
    if short and not found.exists():
        return interaction_list_select(**selection, ids_only=True), True
    return found, False


@dataclass(frozen=True)
class HistoryColumn:
    """One column header of the history's table."""

    label: str
    #: Shown on wide screens only.
    secondary: bool = False
    #: The selector's column (HistorySort.column); "" for submission time;
    #: None for a column the list is not sorted by.
    column: str | None = None
    #: The order its header's link asks for, and what it says it does.
    link: str = ""
    action: str = ""
    #: aria-sort when the list is sorted by it.
    sorted: str = ""


def _history_columns(sort: HistorySort) -> list[HistoryColumn]:
    """The table's headers: each sortable one a link to its order (or, when
    the list is sorted by it already, to the reverse)."""
    plain = [
        HistoryColumn(_("Submitted"), column=""),
        HistoryColumn(_("Outcome"), column="outcome"),
        HistoryColumn(_("Encounter"), column="encounter_identifier"),
        HistoryColumn(_("Status"), secondary=True, column="encounter_status"),
        HistoryColumn(_("Type"), secondary=True, column="encounter_type"),
        HistoryColumn(_("Patient"), column="patient_identifier"),
        HistoryColumn(_("By"), secondary=True),
        HistoryColumn(_("Interaction ID"), secondary=True),
    ]
    columns = []
    for header in plain:
        if header.column is None:
            columns.append(header)
            continue
        mine = (sort.column or "") == header.column
        ways = [s for s in SORTS.values() if (s.column or "") == header.column]
        # The reverse of the current order, or this column's first order.
        link = next(s for s in ways if s != sort) if mine else ways[0]
        columns.append(
            replace(
                header,
                link=link.key,
                action=_("sort %(words)s") % {"words": link.words},
                sorted=("descending" if sort.descending else "ascending")
                if mine
                else "",
            )
        )
    return columns


def _shown_filters(form: HistoryFilterForm) -> dict[str, str]:
    """What the filter fields show: what was typed, valid or not."""
    data = form.data
    return {
        "q": form.cleaned_data.get("q", data.get("q", "")),
        "encounter_status": data.get("status", ""),
        "encounter_type": data.get("type", ""),
        "outcome": data.get("outcome", ""),
        "submitted_from": data.get("submitted_from", ""),
        "submitted_to": data.get("submitted_to", ""),
        "by": form.cleaned_data.get("by", form.default_by),
        "sort": form.cleaned_data.get("sort", ""),
    }


def _create_page(request: SignedInHttpRequest) -> HttpResponse:
    """The form at `?key=K`: new, restored, correctable, or what K sent."""
    given = uuid_or_none(request.GET.get(FORM_KEY_PARAM))
    key = given or _kept_or_new_key(request)
    if given is None or set(request.GET) != {FORM_KEY_PARAM}:
        # A deep link, or no key yet: keep its details with the form, and
        # answer with an address that holds only the form's key (no patient
        # data in the browser's history).
        sessions.prefill_keep(request, key=key, params=request.GET)
        return redirect(form_url(key))
    record = interaction_by_submission_key(key=key)
    if record is not None:
        # Its address shows what was sent: a view, as on its own page.
        audit_record(request, Action.VIEWED, record=record, page="form address")
    editable = record is None or (
        record.is_failed and interaction_may_resend(user=request.user, record=record)
    )
    draft = sessions.draft_take(request, key=key)
    if draft is not None:
        return _draft_page(request, draft, record, editable=editable)
    if record is None:
        return _new_form_page(request, key)
    if editable:
        return _render_failed(request, form_for_record(record), record)
    return render(
        request,
        "intake/interaction_form.html",
        {"sent": record, "new_intake_url": _new_intake_url(request, key)},
    )


def _kept_or_new_key(request: HtmxHttpRequest) -> uuid.UUID:
    """Back from an idle sign-out by any route: the form kept for them."""
    return uuid_or_none(sessions.draft_key_for_user(request)) or uuid.uuid4()


def _draft_page(
    request: HtmxHttpRequest,
    draft: sessions.Draft,
    record: Interaction | None,
    *,
    editable: bool,
) -> HttpResponse:
    """What was typed before an idle sign-out, back in its form."""
    if editable:
        messages.info(request, sessions.draft_restored_message(draft))
        return _render_form(request, IntakeForm(initial=draft))
    # That form was sent meanwhile (another tab): never over its record.
    assert record is not None
    form = IntakeForm(initial={**draft, "submission_key": uuid.uuid4()})
    return _render_fresh(
        request, form, record, why="draft", note=sessions.draft_restored_message(draft)
    )


def _new_form_page(request: HtmxHttpRequest, key: uuid.UUID) -> HttpResponse:
    """An empty form (or one a deep link prefilled), starting now."""
    initial: dict[str, Any] = prefill_from_query(sessions.prefill_for(request, key=key))
    initial["submission_key"] = key
    initial.setdefault(
        "encounter_started_at", timezone.now().replace(second=0, microsecond=0)
    )
    # Assigned to the clinician's own Corti user, when their profile has one.
    assigned = profile_corti_user_id(user=request.user)
    if assigned is not None:
        initial.setdefault("assigned_user_id", assigned)
    return _render_form(request, IntakeForm(initial=initial))


def _unconfirmed_duplicate(
    request: HtmxHttpRequest, form: IntakeForm
) -> Interaction | None:
    """A likely duplicate to ask about first, unless the user already said go."""
    if request.POST.get(CONFIRM_DUPLICATE_PARAM) == "1":
        return None
    return interaction_likely_duplicate(
        submission_key=form.cleaned_data["submission_key"], details=form.details
    )


def form_url(key: uuid.UUID) -> str:
    """The intake form's address: its key and nothing else."""
    return f"{reverse('intake:interaction_create')}?{FORM_KEY_PARAM}={key}"


def _new_intake_url(request: HttpRequest, used: uuid.UUID) -> str:
    """A new form, prefilled from the used form's deep link, if it had one."""
    prefill = sessions.prefill_for(request, key=used)
    if not prefill:
        return reverse("intake:interaction_create")
    key = uuid.uuid4()
    sessions.prefill_keep(request, key=key, params=prefill)
    return form_url(key)


def _submission_answer(
    request: HtmxHttpRequest, form: IntakeForm, submission: Submission
) -> HttpResponse:
    """The page after a valid POST of the form."""
    record = submission.record
    if submission.refused == Refusal.INVALID_UNCHANGED:
        form.add_error(
            None,
            _(
                "Nothing was sent: Corti refused exactly these details before. "
                "Correct the fields marked below, then submit again."
            ),
        )
        return _render_failed(request, form, record)
    if submission.refused is not None:
        # A QueryDict (django-stubs types form data as a read-only Mapping).
        data = form.data.copy()  # type: ignore[attr-defined]
        data["submission_key"] = str(uuid.uuid4())
        fresh = IntakeForm(data=data)
        fresh.is_valid()
        return _render_fresh(request, fresh, record, why=submission.refused)
    if record.is_failed:
        return _render_failed(request, form, record)
    level, text = answer_notice(record, replayed=submission.replayed)
    messages.add_message(request, level, text)
    return _redirect(request, record.get_absolute_url())


def _render_failed(
    request: HtmxHttpRequest, form: IntakeForm, record: Interaction
) -> HttpResponse:
    """The form as typed, Corti's field messages beside their fields."""
    form.add_corti_errors((record.error_problem or {}).get("validationErrors") or [])
    return _render_form(request, form, failed=record)


def _render_fresh(
    request: HtmxHttpRequest,
    form: IntakeForm,
    record: Interaction,
    *,
    why: str,
    note: str = "",
) -> HttpResponse:
    """What was typed, in a new form (new key), and why it was not sent."""
    response = _render_form(
        request, form, reused=record, reused_why=why, reused_note=note
    )
    if request.htmx:
        # The address bar follows the new form, so a reload shows it.
        response["HX-Replace-Url"] = form_url(form["submission_key"].value())
    return response


def _redirect(request: HtmxHttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseSeeOther(url)


def _render_form(
    request: HtmxHttpRequest,
    form: IntakeForm,
    *,
    failed: Interaction | None = None,
    reused: Interaction | None = None,
    reused_why: str = "",
    reused_note: str = "",
    duplicate: Interaction | None = None,
) -> HttpResponse:
    template = "intake/interaction_form.html"
    if request.htmx and request.method == "POST":
        template += "#form"
    form.assigned_default = profile_corti_user_id(user=request.user)
    return render(
        request,
        template,
        {
            "form": form,
            "failed": failed,
            "reused": reused,
            "reused_why": reused_why,
            "reused_note": reused_note,
            "duplicate": duplicate,
        },
    )


class HttpResponseSeeOther(HttpResponseRedirect):
    """303: the browser follows with a GET, so a reload never re-posts."""

    status_code = 303
