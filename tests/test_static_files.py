"""Static files as production serves them: hashed, compressed, cached for good,
and all our own (nothing from a CDN)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.test import Client, override_settings

from tests.support.processes import BASE_DIR

PRODUCTION_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# The files every page of ours loads, and the vendored htmx.
OURS = [
    "css/app.css",
    *(f"js/{path.name}" for path in sorted((BASE_DIR / "static/js").glob("*.js"))),
    "vendor/htmx-2.0.11.min.js",
]


# `db`: a request ends with Django closing stale connections, which touches
# the database connection an earlier test in this process may have opened.
def get_static(url: str, accept: str):
    """GET a static file, reading and closing its streamed body."""
    response = Client().get(url, HTTP_ACCEPT_ENCODING=accept)
    response.body = b"".join(response.streaming_content)
    response.close()
    return response


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """collectstatic with the production storage into a scratch folder; while
    the fixture lasts, whitenoise serves from there as in production."""
    static_root = tmp_path_factory.mktemp("static-root")
    with override_settings(
        STATIC_ROOT=static_root,
        STORAGES=PRODUCTION_STORAGES,
        WHITENOISE_USE_FINDERS=False,
        WHITENOISE_AUTOREFRESH=False,
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        manifest = json.loads((static_root / "staticfiles.json").read_text())
        yield static_root, manifest["paths"]


@pytest.mark.slow
@pytest.mark.parametrize("name", OURS)
def test_collectstatic_writes_brotli_and_gzip_copies(collected, name):
    static_root, paths = collected
    hashed = paths[name]

    assert hashed != name
    for suffix in ("", ".br", ".gz"):
        assert (static_root / f"{hashed}{suffix}").is_file(), f"{hashed}{suffix}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("accept", "encoding"), [("br, gzip", "br"), ("gzip", "gzip"), ("", None)]
)
def test_whitenoise_serves_hashed_files_compressed_and_immutable(
    collected, db, accept, encoding
):
    url = staticfiles_storage.url("css/app.css")

    response = get_static(url, accept)

    assert url.startswith("/static/css/app.") and url != "/static/css/app.css"
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response.get("Content-Encoding") == encoding
    assert response["Vary"] == "Accept-Encoding"
    assert response.body
    # A policy governs documents, not the files they load
    # (CONTENT_SECURITY_POLICY["EXCLUDE_URL_PREFIXES"]).
    assert "Content-Security-Policy" not in response


@pytest.mark.slow
def test_unhashed_names_are_not_cached_for_good(collected, db):
    response = get_static("/static/css/app.css", "br")

    assert response.status_code == 200
    assert "immutable" not in response["Cache-Control"]


# --- nothing from another origin ---------------------------------------------

TEMPLATES = sorted((BASE_DIR / "templates").rglob("*.html"))
STYLESHEETS = sorted((BASE_DIR / "static").rglob("*.css"))
# http://, https:// or protocol-relative //: anything not served by us.
EXTERNAL = r"""(?:https?:)?//"""
TAG = re.compile(r"<(?:script|link|img|iframe)\b[^>]*>", re.IGNORECASE)
EXTERNAL_ATTRIBUTE = re.compile(
    rf"""\b(?:src|href|srcset)\s*=\s*["']?\s*{EXTERNAL}""", re.IGNORECASE
)
EXTERNAL_CSS = re.compile(
    rf"""(?:@import\s+["']\s*{EXTERNAL}|url\(\s*["']?\s*{EXTERNAL})""",
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    "template", TEMPLATES, ids=lambda p: str(p.relative_to(BASE_DIR / "templates"))
)
def test_templates_load_no_script_stylesheet_or_font_from_elsewhere(template):
    for tag in TAG.findall(template.read_text()):
        assert not EXTERNAL_ATTRIBUTE.search(tag), tag


@pytest.mark.parametrize("stylesheet", STYLESHEETS, ids=lambda p: p.name)
def test_stylesheets_import_no_stylesheet_or_font_from_elsewhere(stylesheet):
    assert not EXTERNAL_CSS.search(stylesheet.read_text())


@pytest.mark.parametrize(
    "tag",
    [
        '<script src="https://cdn.example.org/htmx.js"></script>',
        "<link rel=stylesheet href=//fonts.example.org/css>",
        "<link rel='preload' as='font' href='http://example.org/a.woff2'>",
    ],
)
def test_an_external_reference_would_be_found(tag):
    assert EXTERNAL_ATTRIBUTE.search(TAG.findall(tag)[0])


@pytest.mark.parametrize(
    "css",
    [
        "@import 'https://fonts.example.org/css';",
        '@font-face { src: url("//example.org/a.woff2"); }',
    ],
)
def test_an_external_import_would_be_found(css):
    assert EXTERNAL_CSS.search(css)
