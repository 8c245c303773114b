from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.db import models
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache

from .exports import access_csv
from .fields import Section, section_names
from .models import (
    AccessEntry,
    CortiCall,
    Interaction,
    InteractionChange,
    InteractionEvent,
    Recording,
)
from .services.audit import audit_record, search_kind

admin.site.site_header = "Corti Intake administration"
admin.site.site_title = "Corti Intake admin"
admin.site.index_title = "Review"
# The admin is small; its side menu only repeats the index in tiny links.
admin.site.enable_nav_sidebar = False


@never_cache
@login_not_required
def admin_sign_in(request, extra_context=None):
    """The admin has no sign-in form of its own: everyone uses /accounts/login/.

    One sign-in page means one set of protections (throttling, the idle
    notice) and one place to look after.
    """
    if admin.site.has_permission(request):
        return redirect("admin:index")
    return redirect_to_login(
        request.GET.get("next") or reverse("admin:index"), settings.LOGIN_URL
    )


# Replaced on this one site; django-stubs types `login` as a method, which a
# plain assignment may not replace.
admin.site.login = admin_sign_in  # type: ignore[method-assign]


class CalendarSafeChangelist(admin.ModelAdmin):
    """A changelist that answers dates beyond the calendar as bad lookups.

    Django's date hierarchy and date filters turn a year past 9999 (or one so
    large it overflows), or a day before year 1 once moved to UTC, into an
    OverflowError or ValueError: a server error for any query string. Django
    answers other bad lookups by showing the list again with `?e=1`; these
    go the same way.
    """

    def get_changelist_instance(self, request):
        try:
            return super().get_changelist_instance(request)
        except (OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class SignInAttemptAdmin(CalendarSafeChangelist, AccessAttemptAdmin):
    """django-axes' attempts, without its bulk clean-up action.

    The action deletes records with view permission alone (and fails on this
    version); expired attempts are cleaned up at each sign-in, and a
    superuser lifts a lockout with `manage.py axes_reset_username`.
    """

    actions = None


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, SignInAttemptAdmin)


class SignInLogAdmin(CalendarSafeChangelist, AccessLogAdmin):
    """django-axes' sign-ins and sign-outs, dates checked."""


class SignInFailureLogAdmin(CalendarSafeChangelist, AccessFailureLogAdmin):
    """django-axes' failed sign-ins, dates checked."""


for _model, _admin_class in (
    (AccessLog, SignInLogAdmin),
    (AccessFailureLog, SignInFailureLogAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
        admin.site.register(_model, _admin_class)


class ReadOnly:
    """Shown in the admin, never added, changed or deleted there: the log,
    the calls and the trail are evidence, not a worksheet."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTable(ReadOnly, admin.TabularInline):
    """Related rows as a read-only table in a keyboard-scrollable region."""

    template = "admin/edit_inline/tabular_region.html"
    extra = 0
    can_delete = False


class CortiCallInline(ReadOnlyTable):
    """Every call made to Corti for the submission: who, when, what came back."""

    model = CortiCall
    fields = (
        "started_at",
        "finished_at",
        "kind",
        "trigger",
        "user",
        "result",
        "corti_id",
        "error_status",
        "error_code",
        "error_message",
        "error_request_id",
    )
    readonly_fields = fields
    ordering = ("started_at", "id")


class InteractionEventInline(ReadOnlyTable):
    """What else happened to the submission: refused reuses of its form, flags."""

    model = InteractionEvent
    fields = ("at", "kind", "user", "detail")
    readonly_fields = fields
    ordering = ("at", "id")
    verbose_name_plural = "Other events"


class InteractionChangeInline(ReadOnlyTable):
    """Every change of the created interaction: who, when, before and after."""

    model = InteractionChange
    fields = ("at", "kind", "by", "before", "after", "request_id")
    readonly_fields = fields
    ordering = ("at", "id")
    verbose_name_plural = "Changes"


class RecordingInline(ReadOnlyTable):
    """Every recording of the consultation: who started it, the patient's
    consent they confirmed (when, in which words), how long, how it ended.
    A kept transcript is on the interaction's page, not here."""

    model = Recording
    fields = (
        "started_at",
        "started_by",
        "consent_at",
        "consent_wording",
        "language",
        "mode",
        "state",
        "why_it_stopped",
        "accepted_at",
        "finished_at",
        "seconds_recorded",
        "seconds_lost",
        "reconnects",
        "tokens_issued",
    )
    readonly_fields = fields
    ordering = ("started_at", "id")

    def has_view_permission(self, request, obj=None):
        # No recording, no table: an empty table of fourteen columns is only
        # a region to scroll sideways on a phone, with nothing in it to focus.
        return super().has_view_permission(request, obj) and (
            obj is None or obj.recordings.exists()
        )

    @admin.display(description="why it stopped")
    def why_it_stopped(self, obj: Recording) -> str:
        return obj.failure_text if obj.failure else ""


class AuditedViews(admin.ModelAdmin):
    """A record page shown, or a search of the list run, goes in the access
    trail (intake.services.audit), as in the dashboard's own pages."""

    def audited_record(self, obj) -> Interaction | None:
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        context = getattr(response, "context_data", None) or {}
        shown = context.get("original")
        if response.status_code == 200 and shown is not None:
            audit_record(
                request,
                AccessEntry.Action.VIEWED,
                record=self.audited_record(shown),
                page="admin",
            )
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        q = request.GET.get("q", "")
        if response.status_code == 200 and q.strip():
            audit_record(
                request,
                AccessEntry.Action.SEARCHED,
                search=search_kind(q),
                page="admin",
                model=self.model._meta.model_name,
            )
        return response


@admin.register(Interaction)
class InteractionAdmin(
    ReadOnly, AuditedViews, CalendarSafeChangelist, admin.ModelAdmin
):
    """The whole history, read-only: the log is evidence, not a worksheet."""

    inlines = (
        CortiCallInline,
        InteractionChangeInline,
        RecordingInline,
        InteractionEventInline,
    )

    list_display = (
        "created_at",
        "outcome",
        "submitted_by",
        "encounter_identifier",
        "encounter_status",
        "encounter_type",
        "patient_identifier",
        "interaction_id",
    )
    list_filter = (
        "needs_attention",
        "outcome",
        "encounter_status",
        "encounter_type",
        "submitted_by",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = (
        "=interaction_id",
        "encounter_identifier",
        "patient_identifier",
        "patient_name",
        "submitted_by__username",
        "error_request_id",
        "=submission_key",
        "calls__error_request_id",
    )
    date_hierarchy = "created_at"
    list_select_related = ("submitted_by",)
    show_full_result_count = False
    ordering = ("-created_at",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "submission_key",
                    "outcome",
                    "submitted_by",
                    "created_at",
                    "updated_at",
                    "last_attempt_at",
                    "may_exist_in_corti",
                    "needs_attention",
                )
            },
        ),
        (
            "Settling a lost answer",
            {
                "fields": (
                    "answer_lost_at",
                    "checks_made",
                    "last_checked_at",
                    "next_check_at",
                ),
                "classes": ("collapse",),
            },
        ),
        # The details as intake.fields declares them, in the form's order.
        ("Encounter", {"fields": (*section_names(Section.ENCOUNTER), "time_zone")}),
        ("Patient", {"fields": section_names(Section.PATIENT)}),
        (
            "Corti",
            {
                "fields": (
                    "interaction_id",
                    "websocket_url",
                    "completed_at",
                    "request_body",
                    "error_code",
                    "error_status",
                    "error_message",
                    "error_request_id",
                    "error_problem",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(AccessEntry)
class AccessEntryAdmin(ReadOnly, CalendarSafeChangelist, admin.ModelAdmin):
    """The access trail, read-only: who viewed, searched, exported, retried,
    corrected, signed in or failed to, when and from where."""

    list_display = (
        "at",
        "action",
        "username",
        "address",
        "patient_identifier",
        "interaction",
        "detail",
    )
    list_filter = (
        "action",
        ("user", admin.RelatedOnlyFieldListFilter),
        ("at", admin.DateFieldListFilter),
    )
    # A patient identifier exactly, or its start; a username; an address.
    search_fields = ("patient_identifier", "=username", "=address")
    search_help_text = "A patient identifier (or its start), a username or an address."
    date_hierarchy = "at"
    list_select_related = ("user", "interaction")
    show_full_result_count = False
    ordering = ("-at", "-id")
    actions = ("export_csv",)
    readonly_fields = [field.name for field in AccessEntry._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        # Prefixes, not "contains": each is answered from an index.
        term = search_term.strip()
        if not term:
            return queryset, False
        match = models.Q(patient_identifier__startswith=term) | models.Q(username=term)
        if _is_address(term):
            match |= models.Q(address=term)
        return queryset.filter(match), False

    @admin.action(description="Export the selected entries as CSV")
    def export_csv(self, request, queryset):
        audit_record(request, AccessEntry.Action.EXPORTED, trail=True)
        response = StreamingHttpResponse(
            access_csv(queryset.order_by("-at", "-id").iterator(chunk_size=2000)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="access-trail.csv"'
        return response


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@admin.register(CortiCall)
class CortiCallAdmin(ReadOnly, AuditedViews, CalendarSafeChangelist, admin.ModelAdmin):
    """Every call made to Corti, for every submission: read-only. A call's
    page shows what was sent (patient details): it is a view of its
    submission in the access trail."""

    def audited_record(self, obj) -> Interaction | None:
        return obj.interaction

    list_display = (
        "started_at",
        "kind",
        "trigger",
        "user",
        "result",
        "error_status",
        "error_request_id",
        "interaction",
    )
    list_filter = (
        "kind",
        "result",
        "trigger",
        ("started_at", admin.DateFieldListFilter),
    )
    # A Corti request id or interaction ID, whole (each has its index or is
    # read from the interaction's).
    search_fields = ("=error_request_id", "=corti_id")
    search_help_text = "A Corti request id or a Corti interaction ID, whole."
    date_hierarchy = "started_at"
    list_select_related = ("user", "interaction")
    show_full_result_count = False
    ordering = ("-started_at", "-id")
    readonly_fields = [field.name for field in CortiCall._meta.fields]
