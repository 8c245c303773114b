from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


def _ensure_roles(sender, **kwargs):
    from intake.services.accounts import roles_ensure

    roles_ensure()


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Corti intake"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # After every migrate: the role groups exist with their permissions.
        post_migrate.connect(_ensure_roles, sender=self)
        from intake.sessions import on_sign_in

        user_logged_in.connect(on_sign_in, dispatch_uid="intake.sessions.on_sign_in")
        _hide_task_queue_from_admin()


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
