"""Sign-in protection: django-axes pauses a username from one address.

After INTAKE_SIGNIN_FAILURE_LIMIT (5) failures for one username from one
address, that pair is refused for INTAKE_SIGNIN_LOCKOUT_MINUTES (15) with a
429 "Sign-in paused" page, even with the right password. Wrong current
passwords at the password change count the same way. The address is the
socket's, or behind trusted proxies the one they recorded, never one the
client chose. Every attempt is on record (axes' tables, read-only in the
admin) and never carries the password, nor the request's query or form.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.test import Client

from tests.support.pages import page, parse

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
LIMIT = 5
WRONG = "Wr0ng-Pa55word-never-logged-71"
RIGHT = "pw-clinician-1"
ADMIN_RIGHT = "pw-administrator-1"
OTHER_ADDRESS = "203.0.113.9"


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
    assert settings.AXES_CLIENT_IP_CALLABLE == "intake.client_address.client_address"
    assert settings.INTAKE_TRUSTED_PROXIES == 0
    assert settings.AXES_HANDLER == "intake.throttling.SignInRecordHandler"


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


def test_paused_page_names_the_username_to_lift_the_pause_for(client, clinician):
    fail(client, "clin", LIMIT)

    html = page(attempt(client, "clin", RIGHT))

    assert "<code>python manage.py axes_reset_username clin</code>" in html


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


# --- the address behind proxies ---------------------------------------------------
# Each trusted proxy appends the address it saw to X-Forwarded-For; the last
# one is REMOTE_ADDR. Anything left of the proxies' entries is the client's own.

PROXY = "10.0.0.2"
FIRST_PROXY = "10.0.0.1"
CLIENT = "203.0.113.66"
ATTACKER = "198.51.100.200"


def via_proxy(forwarded: str | None) -> dict[str, str]:
    extra = {"REMOTE_ADDR": PROXY}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return extra


@pytest.mark.parametrize(
    ("proxies", "forwarded", "counted"),
    [
        # No proxy trusted: the header is the client's to make up.
        (0, f"198.51.100.7, {CLIENT}", PROXY),
        (1, f"198.51.100.7, {CLIENT}", CLIENT),
        (1, CLIENT, CLIENT),
        (1, f"198.51.100.7,{CLIENT} ", CLIENT),
        (1, "2001:DB8::1", "2001:db8::1"),
        (2, f"198.51.100.7, {CLIENT}, {FIRST_PROXY}", CLIENT),
        (2, f"{CLIENT}, {FIRST_PROXY}", CLIENT),
        # Missing, empty, malformed, or fewer entries than proxies: the socket.
        (1, None, PROXY),
        (1, "", PROXY),
        (1, "not-an-address", PROXY),
        (1, f"{CLIENT}, unknown", PROXY),
        (1, f"{CLIENT}, ", PROXY),
        (2, CLIENT, PROXY),
        (2, f"{CLIENT}, ,", PROXY),
    ],
)
def test_failures_count_against_the_address_the_proxies_saw(
    client, clinician, settings, proxies, forwarded, counted
):
    settings.INTAKE_TRUSTED_PROXIES = proxies

    attempt(client, "clin", WRONG, **via_proxy(forwarded))

    assert AccessAttempt.objects.get(username="clin").ip_address == counted
    assert AccessFailureLog.objects.get(username="clin").ip_address == counted


def test_a_made_up_left_most_entry_does_not_dodge_the_pause_behind_a_proxy(
    clinician, settings
):
    settings.INTAKE_TRUSTED_PROXIES = 1
    statuses = [
        attempt(
            Client(), "clin", WRONG, **via_proxy(f"198.51.100.{n}, {CLIENT}")
        ).status_code
        for n in range(LIMIT)
    ]

    response = attempt(Client(), "clin", RIGHT, **via_proxy(f"192.0.2.1, {CLIENT}"))

    assert statuses == [200] * (LIMIT - 1) + [429]
    assert_paused(response)
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [CLIENT]


def test_a_pause_behind_a_proxy_stays_with_the_address_that_earned_it(
    clinician, settings
):
    # Neither sends a header of its own: the proxy's has one entry each.
    settings.INTAKE_TRUSTED_PROXIES = 1
    fail(Client(), "clin", LIMIT, **via_proxy(ATTACKER))
    assert_paused(attempt(Client(), "clin", RIGHT, **via_proxy(ATTACKER)))

    response = attempt(Client(), "clin", RIGHT, **via_proxy(CLIENT))

    assert response.status_code == 302
    assert AccessAttempt.objects.get(username="clin").ip_address == ATTACKER


def test_a_successful_sign_in_behind_a_proxy_is_recorded_with_its_address(
    client, clinician, settings
):
    settings.INTAKE_TRUSTED_PROXIES = 2

    attempt(client, "clin", RIGHT, **via_proxy(f"{CLIENT}, {FIRST_PROXY}"))

    assert AccessLog.objects.get(username="clin").ip_address == CLIENT


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


# A clinician follows an EHR's deep link, is asked to sign in, and mistypes.
PATIENT = {
    "patient_name": "Ada Lovelace-Byron",
    "patient_identifier": "PAT-DEEP-5521",
    "patient_birth_date": "1815-12-10",
}
DEEP_LINK = (
    f"/interactions/new/?{urlencode({'encounter_identifier': 'ENC-9', **PATIENT})}"
)


def test_a_deep_link_leaves_no_patient_details_in_the_sign_in_record(
    client, clinician, administrator
):
    sign_in_page = client.get(DEEP_LINK, follow=True).redirect_chain[-1][0]
    assert sign_in_page.startswith(f"{LOGIN}?next=")
    # As the browser posts the sign-in form: `next` in its address and its body.
    for _ in range(LIMIT + 1):
        client.post(
            sign_in_page, {"username": "clin", "password": WRONG, "next": DEEP_LINK}
        )
    client.post(
        ADMIN_LOGIN + f"?{urlencode({'next': DEEP_LINK})}",
        {"username": "boss", "password": WRONG, "next": DEEP_LINK, **PATIENT},
    )
    browser = Client()
    browser.post(
        f"{LOGIN}?{urlencode({'next': DEEP_LINK})}",
        {"username": "boss", "password": ADMIN_RIGHT, "next": DEEP_LINK},
    )

    assert AccessAttempt.objects.filter(username="clin").exists()
    assert AccessFailureLog.objects.filter(username="clin", locked_out=True).exists()
    assert AccessLog.objects.filter(username="boss").exists()
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        for value in _all_field_values(model):
            for detail in PATIENT.values():
                assert detail not in value, model.__name__
    for record in AccessAttempt.objects.all():
        # Nothing but axes' separators between repeated failures.
        assert set(record.get_data) <= set("-\n"), record.get_data
        assert set(record.post_data) <= set("-\n"), record.post_data
    record_page = browser.get(
        f"/admin/axes/accessattempt/{AccessAttempt.objects.first().pk}/change/"
    )
    assert record_page.status_code == 200
    assert PATIENT["patient_name"] not in page(record_page)


def test_the_sign_in_form_refused_keeps_its_way_back(client, clinician):
    """What axes is not given, the page shown again still has."""
    response = client.post(
        f"{LOGIN}?{urlencode({'next': DEEP_LINK})}",
        {"username": "clin", "password": WRONG, "next": DEEP_LINK},
    )

    assert response.status_code == 200
    assert f'name="next" value="{html.escape(DEEP_LINK)}"' in page(response)
    assert 'value="clin"' in page(response)


def test_paused_page_shows_no_password(client, clinician):
    fail(client, "clin", LIMIT)

    response = attempt(client, "clin", RIGHT)

    html = page(response)
    assert RIGHT not in html
    assert WRONG not in html
    assert not [
        box
        for box in parse(html).find_all("input", type="password")
        if box.attrs.get("value")
    ]
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


# --- the password change -----------------------------------------------------------

PASSWORD_CHANGE = "/accounts/password_change/"
NEW = "A-new-long-passphrase-42"


def change_password(client: Client, old: str, **extra):
    return client.post(
        PASSWORD_CHANGE,
        {"old_password": old, "new_password1": NEW, "new_password2": NEW},
        **extra,
    )


def assert_change_paused(response, duration: str = "15 minutes") -> None:
    assert response.status_code == 429
    html = page(response)
    assert "<h1>Password change paused</h1>" in html
    assert f"paused for {duration}." in html
    assert f"({LIMIT} in a row, failed sign-ins included)" in html
    assert "axes_reset_username clin" in html
    assert 'name="old_password"' not in html


def test_wrong_current_passwords_pause_the_password_change(clinician_client, clinician):
    statuses = [change_password(clinician_client, WRONG).status_code for _ in range(12)]

    response = change_password(clinician_client, RIGHT)

    assert statuses == [200] * (LIMIT - 1) + [429] * (12 - LIMIT + 1)
    assert_change_paused(response)
    clinician.refresh_from_db()
    assert clinician.check_password(RIGHT)
    assert not clinician.check_password(NEW)


def test_a_wrong_current_password_is_refused_with_the_reason(clinician_client):
    response = change_password(clinician_client, WRONG)

    assert response.status_code == 200
    assert "Your old password was entered incorrectly." in page(response)
    assert WRONG not in page(response)


def test_password_change_failures_are_on_record(clinician_client):
    for _ in range(LIMIT):
        change_password(clinician_client, WRONG)

    attempt_record = AccessAttempt.objects.get(username="clin")
    assert attempt_record.failures_since_start == LIMIT
    assert attempt_record.path_info == PASSWORD_CHANGE
    assert AccessFailureLog.objects.filter(
        username="clin", path_info=PASSWORD_CHANGE, locked_out=True
    ).exists()
    for value in _all_field_values(AccessAttempt):
        assert WRONG not in value
        assert NEW not in value


def test_a_changed_password_resets_the_count(clinician_client, clinician):
    before = [
        change_password(clinician_client, WRONG).status_code for _ in range(LIMIT - 1)
    ]

    changed = change_password(clinician_client, RIGHT)

    assert before == [200] * (LIMIT - 1)
    assert changed.status_code == 302
    assert changed["Location"] == f"{PASSWORD_CHANGE}done/"
    assert not AccessAttempt.objects.filter(username="clin").exists()
    # Without the reset the first of these would already be paused.
    after = [
        clinician_client.post(
            PASSWORD_CHANGE,
            {"old_password": WRONG, "new_password1": RIGHT, "new_password2": RIGHT},
        ).status_code
        for _ in range(LIMIT - 1)
    ]
    assert after == [200] * (LIMIT - 1)
    clinician.refresh_from_db()
    assert clinician.check_password(NEW)


def test_password_change_and_sign_in_failures_add_up(client, clinician):
    fail(client, "clin", LIMIT - 1)
    client.force_login(clinician)

    response = change_password(client, WRONG)

    assert_change_paused(response)
    client.post("/accounts/logout/")
    assert_paused(attempt(client, "clin", RIGHT))


def test_the_password_change_pause_applies_to_one_address_only(clinician):
    here, elsewhere = Client(), Client()
    here.force_login(clinician)
    elsewhere.force_login(clinician)
    for _ in range(LIMIT):
        change_password(here, WRONG)

    response = change_password(elsewhere, RIGHT, REMOTE_ADDR=OTHER_ADDRESS)

    assert response.status_code == 302


def test_password_change_works_again_after_the_pause(clinician_client, clinician):
    for _ in range(LIMIT):
        change_password(clinician_client, WRONG)
    assert_change_paused(change_password(clinician_client, RIGHT))

    move_attempts_back(16)
    response = change_password(clinician_client, RIGHT)

    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.check_password(NEW)


def test_password_change_pause_follows_the_settings(clinician_client, settings):
    settings.AXES_COOLOFF_TIME = 0.5
    settings.AXES_FAILURE_LIMIT = 3
    statuses = [change_password(clinician_client, WRONG).status_code for _ in range(3)]

    response = change_password(clinician_client, RIGHT)

    assert statuses == [200, 200, 429]
    assert response.status_code == 429
    assert "paused for 30 minutes." in page(response)
    assert "(3 in a row, failed sign-ins included)" in page(response)
