from django.apps import AppConfig
from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.db.models.signals import post_migrate


def _ensure_roles(sender, **kwargs):
    from intake.services.accounts import roles_ensure

    roles_ensure()


def _ensure_search_index(sender, using="default", **kwargs):
    from intake import search_index

    search_index.ensure(using)


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Corti intake"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # After every migrate: the role groups exist with their permissions.
        post_migrate.connect(_ensure_roles, sender=self)
        # ... and on SQLite the search's index with its triggers.
        post_migrate.connect(_ensure_search_index, sender=self)
        from intake.services.audit import on_sign_in_failed, on_signed_in
        from intake.sessions import on_sign_in

        user_logged_in.connect(on_sign_in, dispatch_uid="intake.sessions.on_sign_in")
        # The access trail: every sign-in, and every failed one.
        user_logged_in.connect(on_signed_in, dispatch_uid="intake.audit.signed_in")
        user_login_failed.connect(
            on_sign_in_failed, dispatch_uid="intake.audit.sign_in_failed"
        )
        from intake.services.recording import on_signed_out

        # A sign-out closes the recordings its session started.
        user_logged_out.connect(
            on_signed_out, dispatch_uid="intake.recording.signed_out"
        )
        _hide_task_queue_from_admin()
        _every_changelist_calendar_safe()


def _every_changelist_calendar_safe() -> None:
    """Every admin changelist (Django's users and groups too) answers a date
    beyond the calendar as a bad lookup, never a server error."""
    from django.contrib import admin

    from intake.admin import CalendarSafeChangelist

    for model, model_admin in list(admin.site._registry.items()):
        if isinstance(model_admin, CalendarSafeChangelist):
            continue
        safe = type(
            model_admin.__class__.__name__,
            (CalendarSafeChangelist, model_admin.__class__),
            {"__module__": model_admin.__class__.__module__},
        )
        # In place, so the admin's order of apps (and its URLs) stays as is.
        admin.site._registry[model] = safe(model, admin.site)


def _hide_task_queue_from_admin() -> None:
    """No admin pages for the background queue (django-tasks-db adds them).

    It holds record ids only, and a submission's own page shows how its
    settling goes; pages that could edit or delete queued work are not needed.
    Done here because every app's admin module is loaded by now.
    """
    from django.contrib import admin
    from django_tasks_db.models import DBTaskResult

    if admin.site.is_registered(DBTaskResult):
        admin.site.unregister(DBTaskResult)
