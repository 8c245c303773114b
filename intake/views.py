"""Thin views: parse the request, call a service or selector, render."""

from __future__ import annotations

import json
import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db import DatabaseError, connection
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from . import sessions
from .corti import get_client
from .corti.errors import CortiError
from .exports import interactions_csv
from .forms import (
    IntakeForm,
    SignInForm,
    form_for_record,
    initial_from_record,
    prefill_from_query,
    uuid_or_none,
)
from .models import (
    ENCOUNTER_STATUS_CHOICES,
    ENCOUNTER_TYPE_CHOICES,
    CortiCall,
    Interaction,
)
from .selectors import (
    interaction_by_submission_key,
    interaction_calls,
    interaction_get,
)
from .selectors import interaction_list as interaction_list_select
from .services.interactions import interaction_retry as interaction_retry_service
from .services.interactions import interaction_submit
from .services.reconciliation import interaction_reconcile, is_due

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
# The query parameter that carries the form's submission key.
FORM_KEY_PARAM = "key"
# Live validation of one field also refreshes the fields whose rules read it.
DEPENDENT_FIELDS = {"encounter_started_at": ["encounter_ended_at"]}


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    if request.user.has_perm("intake.add_interaction"):
        return redirect("intake:interaction_create")
    return redirect("intake:interaction_list")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the dashboard can serve requests, 503 when it cannot."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("Health check: the database is unreachable")
        return JsonResponse({"status": "unavailable", "database": "error"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when submissions can reach Corti, 503 (and why) when not.

    Checks the database, and signs in to Corti afresh: the sign-in service
    answers and accepts the credentials. If that fails while this worker still
    holds a valid token, submissions keep working for now: 200, "degraded".
    """
    checks: dict[str, str] = {"database": "ok", "corti": "ok"}
    ready, degraded = True, False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("Readiness check: the database is unreachable")
        checks["database"] = "error"
        ready = False
    client = get_client()
    try:
        client.check_sign_in()
    except CortiError as exc:
        logger.warning("Readiness check: Corti sign-in failed (%s)", exc.code)
        checks["corti"] = exc.code
        checks["corti_detail"] = exc.message
        if client.has_usable_token():
            degraded = True
        else:
            ready = False
    status = "unavailable" if not ready else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, **checks}, status=200 if ready else 503)


class SignInView(LoginView):
    """Django's sign-in, saying why the user is here after an idle sign-out."""

    authentication_form = SignInForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["idle_signed_out"] = sessions.was_signed_out_idle(self.request)
        context["draft_kept"] = sessions.draft_pending(self.request) is not None
        context["idle_duration"] = sessions.idle_phrase()
        return context


def signin_locked_out(request: HttpRequest, credentials=None, *args, **kwargs):
    """django-axes' answer to a locked-out sign-in: why, and for how long."""
    # AXES_COOLOFF_TIME is in hours.
    seconds = round(settings.AXES_COOLOFF_TIME * 3600)
    return render(
        request,
        "registration/locked_out.html",
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "username": (credentials or {}).get("username", ""),
            "lockout_duration": sessions.duration_phrase(seconds),
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
def interaction_create(request: HtmxHttpRequest) -> HttpResponse:
    """Show the intake form; on a valid POST create the interaction in Corti.

    The form's page address carries its submission key (`?key=`): a reload,
    the back button or a bookmark shows the same form, and sending it again
    reaches the same record. A key already sent shows what became of it,
    filled in; a failed one can be corrected and sent again from there.
    """
    if request.method == "GET":
        key = uuid_or_none(request.GET.get(FORM_KEY_PARAM))
        if key is None:
            params = request.GET.copy()
            # Back from an idle sign-out by any route: to the form kept for them.
            kept = sessions.draft_key_for_user(request)
            params[FORM_KEY_PARAM] = kept or str(uuid.uuid4())
            return redirect(f"{request.path}?{params.urlencode()}")
        record = interaction_by_submission_key(key=key)
        draft = sessions.draft_take(request, key=key)
        if draft is not None and (
            record is None
            or record.outcome
            in (Interaction.Outcome.FAILED, Interaction.Outcome.UNKNOWN)
        ):
            messages.info(
                request,
                _(
                    "You were signed out after %(duration)s without "
                    "activity. What you had typed is back below; nothing was sent "
                    "to Corti. Check it and create the interaction."
                )
                % {"duration": sessions.idle_phrase()},
            )
            return _render_form(request, IntakeForm(initial=draft))
        if record is None:
            initial = prefill_from_query(request.GET)
            initial["submission_key"] = key
            initial.setdefault(
                "encounter_started_at",
                timezone.now().replace(second=0, microsecond=0),
            )
            return _render_form(request, IntakeForm(initial=initial))
        if record.outcome in (Interaction.Outcome.FAILED, Interaction.Outcome.UNKNOWN):
            return _render_failed(request, form_for_record(record), record)
        form = IntakeForm(initial=initial_from_record(record))
        return _render_form(request, form, sent=record)

    form = IntakeForm(request.POST)
    if not form.is_valid():
        return _render_form(request, form)
    submission = interaction_submit(submitted_by=request.user, **form.cleaned_data)
    record = submission.record
    if record.outcome in (Interaction.Outcome.FAILED, Interaction.Outcome.UNKNOWN):
        return _render_failed(request, form, record)
    if record.outcome == Interaction.Outcome.PENDING:
        messages.info(
            request,
            _(
                "This form was already sent and Corti has not answered yet. "
                "Nothing was sent twice; this page shows the answer when it comes."
            ),
        )
    elif submission.changes_not_sent:
        messages.warning(
            request,
            _(
                "Corti had created this interaction from the earlier version of "
                "the form after all, so your later changes were not sent. Nothing "
                "was created twice; make the changes in Corti if they matter."
            ),
        )
    elif submission.replayed:
        messages.info(
            request,
            _(
                "This form was already sent: this is the interaction it created. "
                "Nothing was sent to Corti again."
            ),
        )
    else:
        messages.success(request, _("Interaction created in Corti."))
    return _redirect(request, record.get_absolute_url())


@permission_required("intake.add_interaction", raise_exception=True)
@require_POST
def interaction_retry(request: HtmxHttpRequest, key: uuid.UUID) -> HttpResponse:
    """Send a failed submission to Corti again, as it was; no retyping."""
    record = interaction_get(key=key)
    was = record.outcome
    record = interaction_retry_service(record=record, user=request.user)
    if record.outcome == Interaction.Outcome.CREATED:
        if was == Interaction.Outcome.CREATED:
            messages.info(request, _("This submission was already created."))
        else:
            messages.success(request, _("Interaction created in Corti."))
    elif record.outcome == Interaction.Outcome.PENDING:
        messages.info(request, _("This submission is already being sent."))
    elif record.outcome == Interaction.Outcome.UNKNOWN:
        messages.warning(
            request,
            _("Still not known whether Corti created it: %(why)s")
            % {"why": record.failure_explanation},
        )
    else:
        messages.error(
            request,
            _("Not created in Corti: %(why)s") % {"why": record.failure_explanation},
        )
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
    filters = _list_filters(request)
    page = Paginator(interaction_list_select(**filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "filters": filters,
        "status_choices": ENCOUNTER_STATUS_CHOICES,
        "type_choices": ENCOUNTER_TYPE_CHOICES,
        "outcome_choices": Interaction.Outcome.choices,
    }
    template = "intake/interaction_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


@permission_required(
    ["intake.view_interaction", "intake.export_interaction"], raise_exception=True
)
@never_cache
@require_GET
def interaction_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """Download the submissions the list shows (same search and filters) as CSV."""
    filters = _list_filters(request)
    records = interaction_list_select(**filters).iterator(chunk_size=2000)
    # Who exported, never what: the filters can hold a patient's name.
    logger.info(
        "User %s exported interactions (%s)",
        request.user.pk,
        "filtered" if any(filters.values()) else "all",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        interactions_csv(records), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="interactions-{stamp}.csv"'
    return response


@permission_required("intake.view_interaction", raise_exception=True)
@require_GET
def interaction_detail(request: HtmxHttpRequest, key: uuid.UUID) -> HttpResponse:
    """Show one submission: Corti's answer and everything that was sent."""
    record = interaction_get(key=key)
    if is_due(record):
        # Left pending by a worker that died, or its answer was lost: ask Corti.
        record = interaction_reconcile(
            record=record, user=request.user, trigger=CortiCall.Trigger.OPENED
        )
    return render(
        request,
        "intake/interaction_detail.html",
        {
            "interaction": record,
            "calls": interaction_calls(record=record),
            "request_body_json": json.dumps(record.request_body, indent=2),
            "problem_json": json.dumps(record.error_problem, indent=2)
            if record.error_problem
            else "",
        },
    )


def _list_filters(request: HttpRequest) -> dict[str, str]:
    return {
        "q": request.GET.get("q", "")[:255],
        "encounter_status": request.GET.get("status", ""),
        "encounter_type": request.GET.get("type", ""),
        "outcome": request.GET.get("outcome", ""),
    }


def _render_failed(
    request: HtmxHttpRequest, form: IntakeForm, record: Interaction
) -> HttpResponse:
    """The form as typed, Corti's field messages beside their fields."""
    form.add_corti_errors((record.error_problem or {}).get("validationErrors") or [])
    return _render_form(request, form, failed=record)


def _redirect(request: HtmxHttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseSeeOther(url)


def _render_form(
    request: HtmxHttpRequest,
    form: IntakeForm,
    *,
    failed: Interaction | None = None,
    sent: Interaction | None = None,
) -> HttpResponse:
    template = "intake/interaction_form.html"
    if request.htmx and request.method == "POST":
        template += "#form"
    return render(request, template, {"form": form, "failed": failed, "sent": sent})


class HttpResponseSeeOther(HttpResponseRedirect):
    """303: the browser follows with a GET, so a reload never re-posts."""

    status_code = 303
