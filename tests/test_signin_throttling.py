"""Sign-in protection: django-axes pauses a username from one address.

After INTAKE_SIGNIN_FAILURE_LIMIT (5) failures for one username from one
address, that pair is refused for INTAKE_SIGNIN_LOCKOUT_MINUTES (15) with a
429 "Sign-in paused" page, even with the right password. Every attempt is on
record (axes' tables, read-only in the admin) and never carries the password.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
LIMIT = 5
WRONG = "Wr0ng-Pa55word-never-logged-71"
RIGHT = "pw-clinician-1"
ADMIN_RIGHT = "pw-administrator-1"
OTHER_ADDRESS = "203.0.113.9"


def page(response) -> str:
    return response.content.decode()


def attempt(client: Client, username: str, password: str, **extra):
    return client.post(
        LOGIN, {"username": username, "password": password, "next": ""}, **extra
    )


def fail(client: Client, username: str, times: int, **extra) -> list[int]:
    return [attempt(client, username, WRONG, **extra).status_code for _ in range(times)]


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def assert_paused(response) -> None:
    assert response.status_code == 429
    html = page(response)
    assert "<h1>Sign-in paused</h1>" in html
    assert "15 minutes" in html
    assert f"({LIMIT} in a row)" in html


def move_attempts_back(minutes: float) -> None:
    """Pretend the recorded failures happened `minutes` earlier."""
    for record in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=record.pk).update(
            attempt_time=record.attempt_time - dt.timedelta(minutes=minutes)
        )


# --- settings ----------------------------------------------------------------


def test_throttling_settings(settings):
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert round(settings.AXES_COOLOFF_TIME * 60, 6) == 15
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AXES_HTTP_RESPONSE_CODE == 429
    assert settings.AXES_ENABLE_ACCESS_FAILURE_LOG is True
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AXES_IPWARE_META_PRECEDENCE_ORDER == ["REMOTE_ADDR"]


# --- lockout -------------------------------------------------------------------


def test_failures_below_the_limit_are_refused_normally(client, clinician):
    statuses = fail(client, "clin", LIMIT - 1)

    assert statuses == [200] * (LIMIT - 1)
    response = attempt(client, "clin", RIGHT)
    assert response.status_code == 302
    assert signed_in(client)


def test_five_failures_pause_sign_in_even_with_the_right_password(client, clinician):
    fail(client, "clin", LIMIT)

    response = attempt(client, "clin", RIGHT)

    assert_paused(response)
    assert not signed_in(client)


def test_fifth_failure_already_answers_with_the_pause(client, clinician):
    statuses = fail(client, "clin", LIMIT)

    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)
    assert statuses[-1] == 429


def test_paused_page_names_the_configured_duration(client, clinician, settings):
    settings.AXES_COOLOFF_TIME = 0.5
    fail(client, "clin", LIMIT)

    response = attempt(client, "clin", RIGHT)

    assert response.status_code == 429
    assert "30 minutes" in page(response)


def test_pause_for_one_username_leaves_other_usernames_alone(
    client, clinician, administrator
):
    fail(client, "clin", LIMIT)

    response = client.post(LOGIN, {"username": "boss", "password": ADMIN_RIGHT})

    assert response.status_code == 302
    assert signed_in(client)


def test_pause_applies_to_one_address_only(client, clinician):
    fail(client, "clin", LIMIT)

    elsewhere = Client()
    response = attempt(elsewhere, "clin", RIGHT, REMOTE_ADDR=OTHER_ADDRESS)

    assert response.status_code == 302
    assert signed_in(elsewhere)
    assert_paused(attempt(Client(), "clin", RIGHT))


def test_failures_from_several_addresses_do_not_add_up(client, clinician):
    fail(client, "clin", LIMIT - 1)
    fail(Client(), "clin", LIMIT - 1, REMOTE_ADDR=OTHER_ADDRESS)

    assert attempt(client, "clin", RIGHT).status_code == 302


def test_spoofed_forwarded_for_header_does_not_dodge_the_pause(client, clinician):
    for number in range(LIMIT):
        attempt(client, "clin", WRONG, HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")

    response = attempt(client, "clin", RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.99")

    assert_paused(response)


def test_success_before_the_limit_resets_the_count(clinician):
    browser = Client()
    fail(browser, "clin", LIMIT - 1)
    assert attempt(browser, "clin", RIGHT).status_code == 302

    browser = Client()
    assert fail(browser, "clin", LIMIT - 1) == [200] * (LIMIT - 1)
    response = attempt(browser, "clin", RIGHT)

    assert response.status_code == 302
    assert signed_in(browser)


def test_sign_in_works_again_after_the_pause(client, clinician):
    fail(client, "clin", LIMIT)
    assert_paused(attempt(client, "clin", RIGHT))

    move_attempts_back(16)
    response = attempt(client, "clin", RIGHT)

    assert response.status_code == 302
    assert signed_in(client)


def test_sign_in_is_still_paused_just_before_the_pause_ends(client, clinician):
    fail(client, "clin", LIMIT)

    move_attempts_back(14)

    assert_paused(attempt(client, "clin", RIGHT))


def test_lockout_duration_follows_the_setting(client, clinician, settings):
    settings.AXES_COOLOFF_TIME = 1 / 60  # one minute
    fail(client, "clin", LIMIT)
    assert attempt(client, "clin", RIGHT).status_code == 429

    move_attempts_back(2)

    assert attempt(client, "clin", RIGHT).status_code == 302


def test_admin_sign_in_cannot_be_used_to_guess_passwords(client, administrator):
    for _ in range(LIMIT + 1):
        response = client.post(ADMIN_LOGIN, {"username": "boss", "password": WRONG})
        assert response.status_code in (200, 302, 429)
        assert not signed_in(client)

    response = client.post(
        ADMIN_LOGIN, {"username": "boss", "password": ADMIN_RIGHT, "next": "/admin/"}
    )

    assert not signed_in(client)
    if response.status_code == 302:
        # The admin has no password form of its own: it sends to the one
        # (throttled) sign-in page.
        assert response["Location"].startswith(f"{LOGIN}?next=")
    else:
        assert_paused(response)


def test_admin_sign_in_cannot_dodge_a_pause(client, administrator):
    fail(client, "boss", LIMIT)

    response = client.post(
        ADMIN_LOGIN,
        {"username": "boss", "password": ADMIN_RIGHT, "next": "/admin/"},
        follow=True,
    )
    assert not signed_in(client)
    assert response.status_code in (200, 429)
    paused = client.post(
        LOGIN, {"username": "boss", "password": ADMIN_RIGHT, "next": "/admin/"}
    )

    assert_paused(paused)
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_administrators_sign_in_to_the_admin_through_the_sign_in_page(
    client, administrator
):
    response = client.get("/admin/", follow=True)
    last_url = response.redirect_chain[-1][0]
    assert response.status_code == 200
    assert 'name="password"' in page(response)

    signed = client.post(
        last_url, {"username": "boss", "password": ADMIN_RIGHT, "next": "/admin/"}
    )

    assert signed.status_code == 302
    assert signed["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert AccessLog.objects.filter(username="boss").count() == 1


def test_unknown_usernames_are_paused_like_real_ones(client, db):
    fail(client, "nobody-here", LIMIT)

    assert_paused(attempt(client, "nobody-here", WRONG))


# --- the record -----------------------------------------------------------------


def test_failures_are_recorded(client, clinician):
    fail(client, "clin", 3)

    attempt_record = AccessAttempt.objects.get(username="clin")
    assert attempt_record.failures_since_start == 3
    assert attempt_record.ip_address == "127.0.0.1"
    assert attempt_record.path_info == LOGIN
    failures = AccessFailureLog.objects.filter(username="clin")
    assert failures.count() == 3
    assert not failures.filter(locked_out=True).exists()


def test_lockout_is_recorded(client, clinician):
    fail(client, "clin", LIMIT)

    assert AccessAttempt.objects.get(username="clin").failures_since_start == LIMIT
    assert AccessFailureLog.objects.filter(username="clin", locked_out=True).exists()


def test_successful_sign_in_is_recorded(client, clinician):
    attempt(client, "clin", RIGHT, REMOTE_ADDR="192.0.2.44")

    entry = AccessLog.objects.get(username="clin")
    assert entry.ip_address == "192.0.2.44"
    assert entry.path_info == LOGIN


def test_failure_log_survives_the_reset_on_success(client, clinician):
    fail(client, "clin", 2)
    attempt(client, "clin", RIGHT)

    assert not AccessAttempt.objects.filter(username="clin").exists()
    assert AccessFailureLog.objects.filter(username="clin").count() == 2
    assert AccessLog.objects.filter(username="clin").count() == 1


# --- no password anywhere ----------------------------------------------------------


def _all_field_values(model) -> list[str]:
    values = []
    for row in model.objects.values():
        values.extend(str(value) for value in row.values())
    return values


def test_password_is_never_recorded(client, administrator, clinician, caplog):
    caplog.set_level(logging.DEBUG)
    fail(client, "clin", LIMIT)
    attempt(client, "clin", WRONG)
    attempt(client, "clin", RIGHT)
    client.post(ADMIN_LOGIN, {"username": "boss", "password": WRONG}, follow=True)
    attempt(Client(), "boss", ADMIN_RIGHT)

    assert AccessAttempt.objects.exists()
    assert AccessFailureLog.objects.exists()
    assert AccessLog.objects.exists()
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        for value in _all_field_values(model):
            for secret in (WRONG, RIGHT, ADMIN_RIGHT):
                assert secret not in value, model.__name__
    for record in AccessAttempt.objects.all():
        assert "password" not in record.post_data or "********" in record.post_data
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage()
        for secret in (WRONG, RIGHT, ADMIN_RIGHT):
            assert secret not in text, record.name


def test_password_in_the_query_string_is_not_recorded(client, clinician):
    client.post(f"{LOGIN}?password={WRONG}", {"username": "clin", "password": WRONG})

    record = AccessAttempt.objects.get(username="clin")
    assert WRONG not in record.get_data
    assert WRONG not in record.post_data


def test_paused_page_shows_no_password(client, clinician):
    fail(client, "clin", LIMIT)

    response = attempt(client, "clin", RIGHT)

    html = page(response)
    assert RIGHT not in html
    assert WRONG not in html
    assert not re.search(r'type="password"[^>]*value="[^"]', html)
    assert 'name="password"' not in html


def test_refused_sign_in_form_does_not_echo_the_password(client, clinician):
    html = page(attempt(client, "clin", WRONG))

    assert WRONG not in html


# --- the record in the admin ---------------------------------------------------------


RECORD_PAGES = (
    "/admin/axes/accessattempt/",
    "/admin/axes/accessfailurelog/",
    "/admin/axes/accesslog/",
)


@pytest.fixture
def recorded(client, clinician):
    """A few failures and one success, on record."""
    fail(client, "clin", 2)
    fail(Client(), "clin", LIMIT, REMOTE_ADDR=OTHER_ADDRESS)
    attempt(client, "clin", RIGHT)


def test_administrators_can_read_the_sign_in_record(recorded, admin_client_):
    for path, shows in zip(
        RECORD_PAGES, (OTHER_ADDRESS, OTHER_ADDRESS, "127.0.0.1"), strict=True
    ):
        response = admin_client_.get(path)
        assert response.status_code == 200, path
        assert shows in page(response), path
    attempt_record = AccessAttempt.objects.get()
    detail = admin_client_.get(f"/admin/axes/accessattempt/{attempt_record.pk}/change/")
    assert detail.status_code == 200
    assert OTHER_ADDRESS in page(detail)


def test_admin_index_lists_the_sign_in_record_for_administrators(admin_client_):
    html = page(admin_client_.get("/admin/"))

    for path in RECORD_PAGES:
        assert f'href="{path}"' in html, path


def test_administrators_cannot_delete_the_sign_in_record(recorded, admin_client_):
    counts = {
        model: model.objects.count()
        for model in (AccessAttempt, AccessFailureLog, AccessLog)
    }
    assert all(counts.values())
    for model, path in zip(counts, RECORD_PAGES, strict=True):
        pk = model.objects.first().pk
        assert admin_client_.get(f"{path}{pk}/delete/").status_code == 403, path
        assert admin_client_.post(
            f"{path}{pk}/delete/", {"post": "yes"}
        ).status_code == (403), path
        changelist = page(admin_client_.get(path))
        assert 'value="delete_selected"' not in changelist, path
        admin_client_.post(
            path,
            {
                "action": "delete_selected",
                "_selected_action": [str(pk)],
                "post": "yes",
            },
        )
    for model, count in counts.items():
        assert model.objects.count() == count, model.__name__


def test_administrators_cannot_change_the_sign_in_record(recorded, admin_client_):
    record = AccessFailureLog.objects.first()
    path = f"/admin/axes/accessfailurelog/{record.pk}/change/"

    html = page(admin_client_.get(path))
    admin_client_.post(path, {"username": "someone-else", "locked_out": "on"})

    assert 'name="username"' not in html
    record.refresh_from_db()
    assert record.username == "clin"


def test_clinicians_cannot_see_the_sign_in_record(client, clinician):
    client.force_login(clinician)

    for path in RECORD_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(ADMIN_LOGIN), path
