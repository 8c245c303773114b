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
