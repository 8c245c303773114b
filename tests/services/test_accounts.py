import io
import stat

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from intake.management.commands import ensure_demo_accounts
from intake.services.accounts import (
    ADMINISTRATORS,
    CLINICIANS,
    ROLE_PERMISSIONS,
    demo_accounts_ensure,
    roles_ensure,
)

pytestmark = pytest.mark.django_db

User = get_user_model()


def permission_names(group: Group) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


@pytest.mark.parametrize("name", [CLINICIANS, ADMINISTRATORS])
def test_migrate_creates_each_role_with_exactly_its_permissions(name):
    group = Group.objects.get(name=name)

    assert permission_names(group) == set(ROLE_PERMISSIONS[name])


def test_roles_are_the_two_groups_the_app_knows():
    assert set(ROLE_PERMISSIONS) == {"Clinicians", "Administrators"}
    assert "intake.change_interaction" not in ROLE_PERMISSIONS[ADMINISTRATORS]
    assert "intake.delete_interaction" not in ROLE_PERMISSIONS[ADMINISTRATORS]


def test_roles_ensure_removes_permissions_granted_by_hand():
    group = Group.objects.get(name=CLINICIANS)
    group.permissions.add(Permission.objects.get(codename="delete_interaction"))

    roles_ensure()

    assert permission_names(group) == set(ROLE_PERMISSIONS[CLINICIANS])


def test_roles_ensure_recreates_a_deleted_group():
    Group.objects.filter(name=ADMINISTRATORS).delete()

    roles_ensure()

    group = Group.objects.get(name=ADMINISTRATORS)
    assert permission_names(group) == set(ROLE_PERMISSIONS[ADMINISTRATORS])


def assert_demo_accounts(password: str) -> None:
    clinician = User.objects.get(username="clinician")
    admin = User.objects.get(username="admin")
    assert clinician.is_active
    assert not clinician.is_staff
    assert not clinician.is_superuser
    assert admin.is_active
    assert admin.is_staff
    assert not admin.is_superuser
    assert {g.name for g in clinician.groups.all()} == {CLINICIANS}
    assert {g.name for g in admin.groups.all()} == {ADMINISTRATORS}
    assert clinician.check_password(password)
    assert admin.check_password(password)


def test_demo_accounts_are_created_in_their_roles():
    accounts = demo_accounts_ensure(password="demo-password-1")

    assert set(accounts) == {"clinician", "admin"}
    assert_demo_accounts("demo-password-1")


def test_demo_account_password_signs_in(client):
    demo_accounts_ensure(password="demo-password-1")

    def signs_in(username: str, password: str) -> bool:
        client.logout()
        client.post("/accounts/login/", {"username": username, "password": password})
        return "_auth_user_id" in client.session

    assert signs_in("clinician", "demo-password-1")
    assert signs_in("admin", "demo-password-1")
    assert not signs_in("admin", "wrong-password")


def test_demo_accounts_ensure_is_idempotent():
    demo_accounts_ensure(password="demo-password-1")
    demo_accounts_ensure(password="demo-password-1")

    assert User.objects.filter(username__in=["clinician", "admin"]).count() == 2
    assert_demo_accounts("demo-password-1")


def test_demo_accounts_ensure_repairs_an_edited_account():
    demo_accounts_ensure(password="demo-password-1")
    User.objects.filter(username="admin").update(is_staff=False, is_active=False)
    User.objects.get(username="clinician").groups.clear()

    demo_accounts_ensure(password="demo-password-2")

    assert_demo_accounts("demo-password-2")
    assert not User.objects.get(username="clinician").check_password("demo-password-1")


@pytest.fixture
def password_file(tmp_path, monkeypatch):
    path = tmp_path / ".demo-password"
    monkeypatch.setattr(ensure_demo_accounts, "PASSWORD_FILE", path)
    return path


def run_command() -> str:
    out = io.StringIO()
    call_command("ensure_demo_accounts", stdout=out)
    return out.getvalue()


def test_command_uses_demo_password_when_set(monkeypatch, password_file):
    monkeypatch.setenv("DEMO_PASSWORD", "from-the-environment-1")

    output = run_command()

    assert_demo_accounts("from-the-environment-1")
    assert "from-the-environment-1" in output
    assert not password_file.exists()


def test_command_generates_a_password_once_and_stores_it(monkeypatch, password_file):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)

    output = run_command()

    password = password_file.read_text(encoding="utf-8").strip()
    assert len(password) >= 12
    assert password in output
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert_demo_accounts(password)


def test_command_reuses_the_stored_password_on_the_next_run(monkeypatch, password_file):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    run_command()
    first = password_file.read_text(encoding="utf-8").strip()

    output = run_command()

    assert password_file.read_text(encoding="utf-8").strip() == first
    assert first in output
    assert_demo_accounts(first)


def test_command_replaces_an_empty_password_file(monkeypatch, password_file):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    password_file.write_text("\n", encoding="utf-8")

    run_command()

    password = password_file.read_text(encoding="utf-8").strip()
    assert password
    assert_demo_accounts(password)


def test_command_generates_a_different_password_for_each_installation(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    passwords = []
    for name in ("one", "two"):
        path = tmp_path / name
        monkeypatch.setattr(ensure_demo_accounts, "PASSWORD_FILE", path)
        run_command()
        passwords.append(path.read_text(encoding="utf-8").strip())

    assert passwords[0] != passwords[1]
