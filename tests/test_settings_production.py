"""Production settings (config.settings.production), each in a fresh process.

The settings module is loaded in a subprocess, never in the test process:
it reads the environment when imported and must not leak into other tests.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.processes import BASE_DIR

# Each test starts a Python process with the production settings: ~25 s.
pytestmark = pytest.mark.slow

HOST = "intake.example.org"


def _dotenv_names() -> set[str]:
    dotenv = BASE_DIR / ".env"
    if not dotenv.is_file():
        return set()
    return {
        line.split("=", 1)[0].removeprefix("export ").strip()
        for line in dotenv.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A clean environment for production settings; None removes a variable."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "INTAKE_", "CORTI_", "AXES_"))
        and name != "DATABASE_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS=HOST,
        DATABASE_URL=f"sqlite:///{tmp_path / 'production.sqlite3'}",
        PYTHONDONTWRITEBYTECODE="1",
        # Production refuses to start without Corti credentials.
        CORTI_CLIENT_ID="intake-production-test",
        CORTI_CLIENT_SECRET=secrets.token_urlsafe(24),
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SETTINGS_SCRIPT = textwrap.dedent(
    """
    import json
    import django
    django.setup()
    from django.conf import settings as s
    names = [
        "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS",
        "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
        "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY",
        "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER", "SECURE_CONTENT_TYPE_NOSNIFF",
        "X_FRAME_OPTIONS", "STORAGES", "MIDDLEWARE",
        "AXES_CLIENT_IP_CALLABLE", "INTAKE_TRUSTED_PROXIES",
        "PASSWORD_HASHERS", "WHITENOISE_USE_FINDERS", "WHITENOISE_AUTOREFRESH",
        "CORTI_SANDBOX", "CORTI_API_URL", "CACHES", "INSTALLED_APPS",
    ]
    print(json.dumps({n: getattr(s, n, None) for n in names}))
    """
)


def production_settings(tmp_path: Path, **overrides: str | None) -> dict:
    result = run(["-c", SETTINGS_SCRIPT], production_env(tmp_path, **overrides))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _no_dotenv_surprises():
    names = _dotenv_names() & {
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DJANGO_BEHIND_PROXY",
        "DJANGO_SECURE_SSL_REDIRECT",
        "DJANGO_SECURE_HSTS_SECONDS",
        "DJANGO_PROXY_COUNT",
        "CORTI_CLIENT_ID",
        "CORTI_CLIENT_SECRET",
        "CORTI_SANDBOX",
        "REDIS_URL",
    }
    if names:
        pytest.skip(f".env sets {sorted(names)}; these tests need a clean environment")


# --- the simulator is not the product ---------------------------------------


def test_with_corti_credentials_the_sandbox_app_is_not_installed(tmp_path):
    settings = production_settings(tmp_path)

    assert settings["CORTI_SANDBOX"] is False
    assert "sandbox" not in settings["INSTALLED_APPS"]
    assert "intake" in settings["INSTALLED_APPS"]


def test_in_sandbox_mode_the_simulator_app_is_installed(tmp_path):
    settings = production_settings(
        tmp_path, CORTI_SANDBOX="true", CORTI_CLIENT_ID=None, CORTI_CLIENT_SECRET=None
    )

    assert settings["CORTI_SANDBOX"] is True
    assert "sandbox" in settings["INSTALLED_APPS"]


def test_without_the_sandbox_app_there_is_no_simulator_command(tmp_path):
    result = run(["manage.py", "help", "corti_simulator"], production_env(tmp_path))

    assert result.returncode != 0
    assert "Unknown command: 'corti_simulator'" in result.stderr


# --- check --deploy ----------------------------------------------------------


def test_check_deploy_reports_no_issue(tmp_path):
    result = run(["manage.py", "check", "--deploy"], production_env(tmp_path))

    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNINGS" not in output
    assert "security.W" not in output


def test_check_deploy_reports_no_issue_behind_a_proxy(tmp_path):
    env = production_env(tmp_path, DJANGO_BEHIND_PROXY="true")

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


# --- the secret key and hosts -----------------------------------------------


def test_missing_secret_key_refuses_to_start_and_names_it(tmp_path):
    env = production_env(tmp_path, DJANGO_SECRET_KEY=None)

    result = run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_secret_key_has_no_default(tmp_path):
    env = production_env(tmp_path, DJANGO_SECRET_KEY=None)

    result = run(["-c", SETTINGS_SCRIPT], env)

    assert result.returncode != 0
    assert "django-insecure" not in result.stdout


def test_secret_key_comes_from_the_environment(tmp_path):
    key = secrets.token_urlsafe(64)

    values = production_settings(tmp_path, DJANGO_SECRET_KEY=key)

    assert values["SECRET_KEY"] == key


def test_weak_secret_key_is_reported_by_check_deploy(tmp_path):
    env = production_env(tmp_path, DJANGO_SECRET_KEY="short")

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_missing_allowed_hosts_refuses_to_start_and_names_it(tmp_path):
    env = production_env(tmp_path, DJANGO_ALLOWED_HOSTS=None)

    result = run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_allowed_hosts_come_from_the_environment(tmp_path):
    values = production_settings(
        tmp_path, DJANGO_ALLOWED_HOSTS=f"{HOST},intake.internal"
    )

    assert values["ALLOWED_HOSTS"] == [HOST, "intake.internal"]


# --- Corti credentials and sandbox mode --------------------------------------


@pytest.mark.parametrize("sandbox", [None, "false", ""])
def test_missing_corti_credentials_refuse_to_start_and_say_how(tmp_path, sandbox):
    env = production_env(
        tmp_path, CORTI_CLIENT_ID=None, CORTI_CLIENT_SECRET=None, CORTI_SANDBOX=sandbox
    )

    result = run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CORTI_CLIENT_ID and CORTI_CLIENT_SECRET are not set" in result.stderr
    assert "set CORTI_SANDBOX=true" in result.stderr


def test_an_empty_client_id_is_missing_too(tmp_path):
    env = production_env(tmp_path, CORTI_CLIENT_ID="")

    result = run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "CORTI_CLIENT_ID and CORTI_CLIENT_SECRET are not set" in result.stderr


def test_sandbox_runs_only_when_asked_for_by_name(tmp_path):
    values = production_settings(
        tmp_path, CORTI_CLIENT_ID=None, CORTI_CLIENT_SECRET=None, CORTI_SANDBOX="true"
    )

    assert values["CORTI_SANDBOX"] is True
    assert values["CORTI_API_URL"].startswith("http://127.0.0.1:")


def test_sandbox_and_credentials_together_refuse_to_start(tmp_path):
    result = run(["manage.py", "check"], production_env(tmp_path, CORTI_SANDBOX="true"))

    assert result.returncode != 0
    assert "CORTI_SANDBOX=true and CORTI_CLIENT_ID are both set" in result.stderr


def test_credentials_mean_the_real_corti(tmp_path):
    values = production_settings(tmp_path)

    assert values["CORTI_SANDBOX"] is False
    assert values["CORTI_API_URL"] == "https://api.eu.corti.app/v2"


# --- the shared cache ---------------------------------------------------------------


def test_the_cache_is_a_database_table_without_redis(tmp_path):
    assert production_settings(tmp_path)["CACHES"] == {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "intake_cache",
        }
    }


def test_the_cache_is_redis_when_redis_url_is_set(tmp_path):
    url = "redis://cache.internal:6379/2"

    cache = production_settings(tmp_path, REDIS_URL=url)["CACHES"]["default"]

    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == url
    # A hanging Redis must not hang /readyz: short socket timeouts.
    assert cache["OPTIONS"]["socket_connect_timeout"] <= 1
    assert cache["OPTIONS"]["socket_timeout"] <= 1


# --- cookies, HTTPS, HSTS ---------------------------------------------------------


def test_production_is_never_in_debug_mode(tmp_path):
    assert production_settings(tmp_path)["DEBUG"] is False
    assert production_settings(tmp_path, DJANGO_DEBUG="true")["DEBUG"] is False


def test_cookies_are_secure_and_http_only(tmp_path):
    values = production_settings(tmp_path)

    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")


def test_https_is_enforced_with_hsts(tmp_path):
    values = production_settings(tmp_path)

    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"


def test_proxy_header_is_not_trusted_by_default(tmp_path):
    values = production_settings(tmp_path)

    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["AXES_CLIENT_IP_CALLABLE"] == "intake.client_address.client_address"
    assert values["INTAKE_TRUSTED_PROXIES"] == 0


@pytest.mark.parametrize("setting", ["false", "0", "no"])
def test_proxy_header_is_not_trusted_when_not_behind_a_proxy(tmp_path, setting):
    values = production_settings(
        tmp_path, DJANGO_BEHIND_PROXY=setting, DJANGO_PROXY_COUNT="2"
    )

    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["INTAKE_TRUSTED_PROXIES"] == 0


def test_proxy_headers_are_trusted_behind_a_proxy(tmp_path):
    values = production_settings(tmp_path, DJANGO_BEHIND_PROXY="true")

    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["AXES_CLIENT_IP_CALLABLE"] == "intake.client_address.client_address"
    assert values["INTAKE_TRUSTED_PROXIES"] == 1


def test_proxy_count_is_configurable(tmp_path):
    values = production_settings(
        tmp_path, DJANGO_BEHIND_PROXY="true", DJANGO_PROXY_COUNT="2"
    )

    assert values["INTAKE_TRUSTED_PROXIES"] == 2


@pytest.mark.parametrize("count", ["0", "-1"])
def test_no_proxies_behind_a_proxy_refuses_to_start(tmp_path, count):
    env = production_env(tmp_path, DJANGO_BEHIND_PROXY="true", DJANGO_PROXY_COUNT=count)

    result = run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_PROXY_COUNT" in result.stderr


# --- sign-in throttling behind proxies -------------------------------------------
# One process per proxy count, with the production settings: real sign-in
# posts as the last proxy passes them on (REMOTE_ADDR is that proxy; each proxy
# appended the address it saw to X-Forwarded-For, as nginx's
# $proxy_add_x_forwarded_for does).

PROXY_SIGN_IN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from django.conf import settings
    # This run is about addresses: fast hashing, static files from the source.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        },
    }
    settings.WHITENOISE_USE_FINDERS = True
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    from axes.models import AccessAttempt
    from django.contrib.auth import get_user_model
    from django.test import Client

    host, proxy, scenarios = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    get_user_model().objects.create_user("clin", password="pw-clinician-1")

    def sign_in(password, forwarded):
        extra = {"REMOTE_ADDR": proxy, "HTTP_X_FORWARDED_PROTO": "https"}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        response = Client(HTTP_HOST=host).post(
            "/accounts/login/",
            {"username": "clin", "password": password},
            **extra,
        )
        return response.status_code

    results = {}
    for name, attempts in scenarios.items():
        AccessAttempt.objects.all().delete()
        statuses = [sign_in(password, forwarded) for password, forwarded in attempts]
        addresses = sorted(
            {str(a) for a in AccessAttempt.objects.values_list("ip_address", flat=True)}
        )
        results[name] = {"statuses": statuses, "addresses": addresses}
    print(json.dumps(results))
    """
)
PROXY = "10.0.0.2"  # the last proxy, as the app sees it
CLIENT = "203.0.113.66"
ELSEWHERE = "192.0.2.10"
WRONG = "Wr0ng-Pa55word"
RIGHT = "pw-clinician-1"
LIMIT = 5


def proxied_sign_ins(tmp_path: Path, count: int, scenarios: dict) -> dict:
    env = production_env(
        tmp_path, DJANGO_BEHIND_PROXY="true", DJANGO_PROXY_COUNT=str(count)
    )
    result = run(["-c", PROXY_SIGN_IN_SCRIPT, HOST, PROXY, json.dumps(scenarios)], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def spoofing(chain: str) -> list:
    """Twelve wrong passwords, each with another made-up left-most entry, then
    the right one; then the right one from another client."""
    wrong = [(WRONG, f"198.51.100.{n}, {chain}") for n in range(12)]
    return [*wrong, (RIGHT, f"198.51.100.99, {chain}")]


def test_one_proxy_counts_the_address_it_saw_not_the_one_claimed(tmp_path):
    results = proxied_sign_ins(
        tmp_path,
        1,
        {
            "spoofed": spoofing(CLIENT),
            "elsewhere": [(RIGHT, f"198.51.100.1, {ELSEWHERE}")],
            "single": [(WRONG, CLIENT)],
            "missing": [(WRONG, None)],
            "empty": [(WRONG, "")],
            "garbage": [(WRONG, "not-an-address")],
        },
    )

    spoofed = results["spoofed"]
    assert spoofed["statuses"] == [200] * (LIMIT - 1) + [429] * (14 - LIMIT)
    assert spoofed["addresses"] == [CLIENT]
    assert results["elsewhere"]["statuses"] == [302]
    assert results["single"]["addresses"] == [CLIENT]
    for name in ("missing", "empty", "garbage"):
        assert results[name]["addresses"] == [PROXY], name


def test_two_proxies_count_the_address_the_first_one_saw(tmp_path):
    first_proxy = "10.0.0.1"
    results = proxied_sign_ins(
        tmp_path,
        2,
        {
            "spoofed": spoofing(f"{CLIENT}, {first_proxy}"),
            "honest": [(WRONG, f"{CLIENT}, {first_proxy}")],
            "too_short": [(WRONG, CLIENT)],
        },
    )

    spoofed = results["spoofed"]
    assert spoofed["statuses"] == [200] * (LIMIT - 1) + [429] * (14 - LIMIT)
    assert spoofed["addresses"] == [CLIENT]
    assert results["honest"]["addresses"] == [CLIENT]
    assert results["too_short"]["addresses"] == [PROXY]


# --- static files -------------------------------------------------------------------


def test_static_files_are_compressed_and_hashed_by_whitenoise(tmp_path):
    values = production_settings(tmp_path)

    assert values["STORAGES"]["staticfiles"]["BACKEND"] == (
        "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )
    middleware = values["MIDDLEWARE"]
    whitenoise = middleware.index("whitenoise.middleware.WhiteNoiseMiddleware")
    # As whitenoise asks: after SecurityMiddleware, before all the rest.
    assert middleware.index("django.middleware.security.SecurityMiddleware") < (
        whitenoise
    )
    assert whitenoise < middleware.index(
        "django.contrib.sessions.middleware.SessionMiddleware"
    )
    assert not values["WHITENOISE_USE_FINDERS"]
    assert not values["WHITENOISE_AUTOREFRESH"]
    assert values["PASSWORD_HASHERS"][0].endswith(
        ("PBKDF2PasswordHasher", "Argon2PasswordHasher", "ScryptPasswordHasher")
    )


# One process: collect static files into a scratch folder, then serve pages
# and static files with the production settings through Django's test client.
SERVE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import django
    from django.conf import settings
    settings.STATIC_ROOT = sys.argv[1]
    django.setup()
    from django.core.management import call_command
    call_command("collectstatic", interactive=False, verbosity=0)
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.test import Client

    host = sys.argv[2]
    client = Client(HTTP_HOST=host)
    plain = client.get("/accounts/login/")
    proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    secure = client.get("/accounts/login/", secure=True)
    css_url = staticfiles_storage.url("css/app.css")
    css = client.get(css_url, secure=True, HTTP_ACCEPT_ENCODING="gzip")
    css_body = b"".join(css.streaming_content) if css.streaming else css.content
    print(json.dumps({
        "plain": [plain.status_code, plain.get("Location")],
        "proxied": [proxied.status_code, proxied.get("Location")],
        "secure": secure.status_code,
        "hsts": secure.get("Strict-Transport-Security"),
        "csp": secure.get("Content-Security-Policy"),
        "cookies": {
            name: {
                "secure": bool(morsel["secure"]),
                "httponly": bool(morsel["httponly"]),
            }
            for name, morsel in secure.cookies.items()
        },
        "page": secure.content.decode(),
        "css_url": css_url,
        "css": [css.status_code, css.get("Content-Encoding"),
                css.get("Cache-Control"), len(css_body)],
    }))
    """
)


def serve(tmp_path: Path, **overrides: str | None) -> dict:
    static_root = tmp_path / "static-root"
    result = run(
        ["-c", SERVE_SCRIPT, str(static_root), HOST],
        production_env(tmp_path, **overrides),
    )
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout.strip().splitlines()[-1])
    served["static_root"] = static_root
    return served


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    return serve(tmp_path_factory.mktemp("production"))


def test_plain_http_is_redirected_to_https(served):
    status, location = served["plain"]

    assert status == 301
    assert location == f"https://{HOST}/accounts/login/"


def test_forwarded_proto_is_ignored_when_not_behind_a_proxy(served):
    assert served["proxied"][0] == 301


def test_forwarded_proto_is_trusted_behind_a_proxy(tmp_path):
    behind = serve(tmp_path, DJANGO_BEHIND_PROXY="true")

    assert behind["proxied"] == [200, None]
    assert behind["plain"][0] == 301


def test_https_answers_carry_hsts(served):
    assert served["secure"] == 200
    assert served["hsts"] == "max-age=31536000; includeSubDomains; preload"


def test_cookies_sent_over_https_are_secure_and_http_only(served):
    cookies = served["cookies"]

    assert "csrftoken" in cookies
    for name, flags in cookies.items():
        assert flags == {"secure": True, "httponly": True}, name


def test_pages_link_hashed_static_files(served):
    page = served["page"]
    css_url = served["css_url"]

    assert css_url != "/static/css/app.css"
    assert css_url.startswith("/static/css/app.")
    assert f'href="{css_url}"' in page
    assert 'src="/static/vendor/htmx-2.0.11.min.js"' not in page
    assert "/static/vendor/htmx-2.0.11." in page


def test_collectstatic_writes_hashed_and_compressed_copies(served):
    static_root = served["static_root"]
    manifest = json.loads((static_root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["css/app.css"]

    assert hashed != "css/app.css"
    assert (static_root / hashed).is_file()
    assert (static_root / f"{hashed}.gz").is_file()
    # The page's own scripts, as base.html names them: hashed, compressed and
    # linked by their hashed names (plain scripts, no imports to rewrite).
    base_html = (BASE_DIR / "templates" / "base.html").read_text()
    scripts = re.findall(r"\{% static '(js/[^']+\.js)' %\}", base_html)
    assert scripts
    for script in scripts:
        assert manifest["paths"][script] != script
        assert (static_root / f"{manifest['paths'][script]}.gz").is_file()
        assert f'src="/static/{manifest["paths"][script]}"' in served["page"]


def test_whitenoise_serves_hashed_files_compressed_and_cached_forever(served):
    status, encoding, cache_control, length = served["css"]

    assert status == 200
    assert encoding == "gzip"
    assert "immutable" in cache_control
    assert "max-age=315360000" in cache_control
    assert length > 0
