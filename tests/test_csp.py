"""Content Security Policy: nothing inline, no unsafe-inline, no unsafe-eval.

Every page answers with a strict policy, and no page (nor any template) holds
what that policy would block: inline scripts, <style> elements, style
attributes, on...= handlers or htmx's hx-on.
"""

from __future__ import annotations

import json
import re
import uuid
from html.parser import HTMLParser

import pytest
from django.test import Client

from intake.models import Interaction
from tests.support.factories import make_interaction
from tests.support.pages import parse
from tests.support.processes import BASE_DIR

pytestmark = pytest.mark.django_db

TEMPLATES_DIR = BASE_DIR / "templates"
REQUIRED = {
    "default-src": {"'none'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
    "base-uri": {"'none'"},
    "object-src": {"'none'"},
}
NEVER = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*")
INVALID_FORM = {
    "submission_key": "0b0b2d0e-6a1c-4f0e-9d7a-2b0c3e4f5a6b",
    "encounter_identifier": "",
    "encounter_status": "nonsense",
    "encounter_type": "consultation",
    "encounter_started_at": "not a time",
    "assigned_user_id": "not-a-uuid",
}


# --- helpers -----------------------------------------------------------------


def policy(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy header"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_strict_policy(response) -> None:
    directives = policy(response)
    for name, sources in REQUIRED.items():
        assert set(directives.get(name, [])) == sources, (name, directives.get(name))
    for name, sources in directives.items():
        for source in sources:
            assert source not in NEVER, (name, source)


class _InlineFinder(HTMLParser):
    """Collects what a strict CSP would block in an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            kind = (attributes.get("type") or "").lower()
            if kind != "application/json":
                self.problems.append(f"inline <script {attrs}>")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs:
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>: {value!r}")
            elif name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
            elif name.startswith(("hx-on", "data-hx-on")):
                self.problems.append(f"{name} on <{tag}>")
            elif (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in {name} on <{tag}>")

    handle_startendtag = handle_starttag


def inline_problems(html: str) -> list[str]:
    finder = _InlineFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


# What a strict CSP blocks, found in template source (template tags and all).
SOURCE_PATTERNS = {
    "inline script": re.compile(
        r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I
    ),
    "style element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I | re.S),
    "event handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I | re.S),
    "hx-on": re.compile(r"hx-on", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


#: What the records of these tests have in common.
CSP_RECORD = {
    "encounter_identifier": "ENC-CSP",
    "time_zone": "UTC",
    "request_body": {"encounter": {"identifier": "ENC-CSP"}},
}


@pytest.fixture
def record(clinician):
    return make_interaction(clinician, **CSP_RECORD)


@pytest.fixture
def failed_record(clinician):
    return make_interaction(
        clinician,
        **{**CSP_RECORD, "encounter_identifier": "ENC-CSP-F"},
        outcome=Interaction.Outcome.FAILED,
        interaction_id=None,
        error_request_id="req-csp-1",
        error_problem={"status": 400, "title": "Bad Request"},
    )


def _client(user=None) -> Client:
    browser = Client()
    if user is not None:
        browser.force_login(user)
    return browser


@pytest.fixture
def pages(clinician, administrator, no_role_user, record, failed_record):
    """Every kind of page, rendered: name -> (response, expected status)."""

    def render():
        clinician_browser = _client(clinician)
        admin_browser = _client(administrator)
        anonymous = _client()
        form = clinician_browser.get("/interactions/new/", follow=True)
        locked = Client()
        for _ in range(6):
            lockout = locked.post(
                "/accounts/login/", {"username": "clin", "password": "wrong-pw"}
            )
        return {
            "sign-in": (anonymous.get("/accounts/login/"), 200),
            "sign-in with errors": (
                anonymous.post(
                    "/accounts/login/", {"username": "x", "password": "wrong"}
                ),
                200,
            ),
            "sign-in paused": (lockout, 429),
            "form": (form, 200),
            "form with errors": (
                clinician_browser.post(
                    f"/interactions/new/?key={INVALID_FORM['submission_key']}",
                    INVALID_FORM,
                ),
                200,
            ),
            "form with errors over htmx": (
                clinician_browser.post(
                    f"/interactions/new/?key={INVALID_FORM['submission_key']}",
                    INVALID_FORM,
                    headers={"HX-Request": "true"},
                ),
                200,
            ),
            "failed form": (
                clinician_browser.get(
                    f"/interactions/new/?key={failed_record.submission_key}"
                ),
                200,
            ),
            "list": (clinician_browser.get("/interactions/"), 200),
            "list filtered": (
                clinician_browser.get("/interactions/", {"q": "ENC", "outcome": "x"}),
                200,
            ),
            "detail": (clinician_browser.get(f"/interactions/{record.pk}/"), 200),
            "failed detail": (
                clinician_browser.get(f"/interactions/{failed_record.pk}/"),
                200,
            ),
            "password change": (
                clinician_browser.get("/accounts/password_change/"),
                200,
            ),
            "admin sign-in": (anonymous.get("/admin/login/", follow=True), 200),
            "admin index": (admin_browser.get("/admin/"), 200),
            "admin changelist": (admin_browser.get("/admin/intake/interaction/"), 200),
            "admin change": (
                admin_browser.get(f"/admin/intake/interaction/{record.pk}/change/"),
                200,
            ),
            "admin sign-in record": (
                admin_browser.get("/admin/axes/accessattempt/"),
                200,
            ),
            "admin users": (admin_browser.get("/admin/auth/user/"), 200),
            "403": (_client(no_role_user).get("/interactions/"), 403),
            "404": (
                clinician_browser.get(f"/interactions/{uuid.uuid4()}/"),
                404,
            ),
            "404 anywhere": (clinician_browser.get("/no/such/page/"), 404),
        }

    return render()


# --- the header ----------------------------------------------------------------


def test_every_page_has_a_strict_content_security_policy(pages):
    for name, (response, status) in pages.items():
        assert response.status_code == status, name
        assert "text/html" in response["Content-Type"], name
        assert_strict_policy(response)


def test_json_and_redirect_answers_carry_the_policy_too(clinician_client):
    for response in (
        clinician_client.get("/accounts/session/"),
        clinician_client.get("/interactions/new/"),
        clinician_client.get("/healthz"),
    ):
        assert_strict_policy(response)


def test_policy_setting_has_no_unsafe_sources(settings):
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for name, sources in directives.items():
        for source in sources:
            assert source not in NEVER, (name, source)
            assert not source.startswith(("'nonce-", "'sha")), (name, source)


# --- the pages -------------------------------------------------------------------


def test_no_page_has_inline_script_or_style(pages):
    for name, (response, _status) in pages.items():
        problems = inline_problems(response.content.decode())
        assert problems == [], name


def test_inline_finder_finds_what_csp_blocks():
    assert inline_problems("<script>alert(1)</script>")
    assert inline_problems('<p style="color: red">x</p>')
    assert inline_problems("<style>p {}</style>")
    assert inline_problems('<button onclick="go()">x</button>')
    assert inline_problems('<form hx-on::after-request="x()"></form>')
    assert inline_problems('<a href="javascript:go()">x</a>')
    assert not inline_problems('<script src="/static/app.js" defer></script>')
    assert not inline_problems('<script type="application/json">{"a": 1}</script>')
    assert not inline_problems('<p data-style="x" class="once">online</p>')


def test_no_template_holds_inline_script_or_style():
    templates = sorted(TEMPLATES_DIR.rglob("*.html"))
    assert len(templates) >= 10
    for template in templates:
        source = template.read_text()
        for what, pattern in SOURCE_PATTERNS.items():
            match = pattern.search(source)
            assert match is None, f"{what} in {template.relative_to(BASE_DIR)}"


def test_pages_load_scripts_and_styles_from_our_own_static_files(pages):
    html = pages["form"][0].content.decode()

    document = parse(html)
    scripts = [script.attrs["src"] for script in document.find_all("script", src=True)]
    styles = [
        link.attrs["href"] for link in document.find_all("link", rel="stylesheet")
    ]
    assert scripts
    assert styles
    for url in scripts + styles:
        assert url.startswith("/static/"), url


# --- htmx without inline styles or eval ------------------------------------------


def _htmx_config(html: str) -> dict:
    meta = parse(html).find("meta", name="htmx-config")
    assert meta, "no htmx-config meta"
    return json.loads(meta.attrs["content"])


def test_htmx_does_not_inject_its_indicator_styles(pages):
    for name in ("sign-in", "form", "list"):
        config = _htmx_config(pages[name][0].content.decode())
        assert config["includeIndicatorStyles"] is False, name
        assert config["allowEval"] is False, name


def test_base_template_turns_off_htmx_indicator_styles_and_eval():
    config = _htmx_config((TEMPLATES_DIR / "base.html").read_text())

    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False


def test_stylesheet_styles_the_htmx_indicator_itself():
    css = (BASE_DIR / "static" / "css" / "app.css").read_text()

    hidden = re.search(r"(?<![\w.-])\.htmx-indicator\s*\{([^}]*)\}", css)
    assert hidden, "app.css has no .htmx-indicator rule"
    assert re.search(r"opacity\s*:\s*0\b", hidden.group(1))
    shown = re.search(r"\.htmx-request\s*\.htmx-indicator[^{]*\{([^}]*)\}", css)
    assert shown, "app.css does not show the indicator during a request"
    assert re.search(r"opacity\s*:\s*1\b", shown.group(1))
    assert re.search(r"\.htmx-request\.htmx-indicator", css)


SCRIPTS = sorted((BASE_DIR / "static" / "js").glob("*.js"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_our_script_uses_no_eval(path):
    script = path.read_text()

    assert not re.search(r"\beval\s*\(", script)
    assert not re.search(r"\bnew\s+Function\s*\(", script)
    assert not re.search(r"setTimeout\s*\(\s*[\"']", script)
    assert ".innerHTML" not in script
    assert not re.search(r"\.style\s*[.=\[]|setAttribute\(\s*[\"']style", script)
