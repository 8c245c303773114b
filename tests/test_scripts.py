"""The page's own scripts: plain deferred scripts, one concern each, showing
only words the templates wrote.

Every sentence a script shows (the idle warning's countdown and its
announcement, the copy button's status) is rendered by Django in data-*
attributes; a script only fills in numbers and sets the result as text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.factories import make_interaction
from tests.support.pages import page, parse

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((BASE_DIR / "static" / "js").glob("*.js"))
LITERAL = re.compile(r""""((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)'""")
COMMENT = re.compile(r"(?:^|\s)//.*$", re.M)
# Words for a reader: two words side by side, or a word after a leading space
# (a unit glued to a number). Selectors like "button, a[href]" are code.
PROSE = re.compile(r"[A-Za-z]{2,} +[A-Za-z]{2,}|^ +[A-Za-z]")
SELECTOR = re.compile(r"[\[\]#>=]")
DIRECTIVES = {"use strict"}


def literals(path: Path) -> list[str]:
    code = COMMENT.sub("", path.read_text())
    return [a or b for a, b in LITERAL.findall(code)]


def dataset_names(path: Path, dataset: str) -> set[str]:
    """The data-* attributes a script reads through `dataset` (an expression)."""
    code = path.read_text()
    names = re.findall(rf"\b{re.escape(dataset)}\.(\w+)", code)
    return {"data-" + re.sub(r"[A-Z]", lambda m: "-" + m[0].lower(), n) for n in names}


# Loaded only by the page that uses it (docs/PERFORMANCE.md, "Page weight").
ONE_PAGE_SCRIPTS = {
    "copy.js": "the interaction page, the one with copy buttons",
    "recorder.js": "the page of an interaction its user may record",
}


def loaded_scripts(html: str) -> dict[str, dict]:
    return {
        element.attrs["src"]: element.attrs
        for element in parse(html).find_all("script")
        if (element.attrs.get("src") or "").startswith("/static/js/")
    }


def test_every_shared_script_is_loaded_by_every_page_deferred_and_classic(client):
    loaded = loaded_scripts(page(client.get("/accounts/login/")))

    assert set(loaded) == {
        f"/static/js/{path.name}"
        for path in SCRIPTS
        if path.name not in ONE_PAGE_SCRIPTS
    }
    for src, attrs in loaded.items():
        # Classic scripts: nothing to import, so the manifest storage's hashed
        # names need no rewriting inside them.
        assert "defer" in attrs, src
        assert "type" not in attrs, src


def test_the_copy_script_is_loaded_by_the_interaction_page_alone(
    clinician_client, clinician
):
    record = make_interaction(clinician)
    form = loaded_scripts(page(clinician_client.get("/interactions/new/", follow=True)))

    loaded = loaded_scripts(page(clinician_client.get(f"/interactions/{record.pk}/")))

    assert "/static/js/copy.js" not in form
    assert "/static/js/copy.js" in loaded
    assert "defer" in loaded["/static/js/copy.js"]
    assert "type" not in loaded["/static/js/copy.js"]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_each_script_says_what_it_does_and_keeps_to_itself(path):
    source = path.read_text()

    assert source.startswith("// "), "a header comment first"
    assert '(function () {\n  "use strict";' in source
    assert source.rstrip().endswith("})();")
    assert not re.search(r"^\s*(import|export)\b", source, re.M)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_no_script_holds_words_for_a_reader(path):
    prose = [
        text
        for text in literals(path)
        if PROSE.search(text) and not SELECTOR.search(text) and text not in DIRECTIVES
    ]
    assert prose == []


def test_the_idle_warning_s_words_are_on_the_page(clinician_client):
    warning = parse(page(clinician_client.get("/interactions/"))).one(id="idle-warning")

    read = dataset_names(BASE_DIR / "static/js/idle-session.js", "words")
    assert read == {
        "data-announce",
        "data-second-one",
        "data-second-other",
        "data-minutes",
    }
    assert warning.attrs["data-announce"] == (
        "You will be signed out in %(time)s because of inactivity. "
        "Press any key to stay signed in."
    )
    # sessions.duration_phrase's own messages, numbers to be filled in.
    assert warning.attrs["data-second-one"] == "%(n)d second"
    assert warning.attrs["data-second-other"] == "%(n)d seconds"
    assert warning.attrs["data-minutes"] == "%(m)d:%(ss)s minutes"


def test_the_copy_status_s_words_are_on_the_page(clinician_client, clinician):
    record = make_interaction(clinician, websocket_url="wss://example.invalid/1")

    root = parse(page(clinician_client.get(f"/interactions/{record.pk}/")))
    status = root.one(classes=("copy-status",))

    read = dataset_names(BASE_DIR / "static/js/copy.js", "status.dataset")
    assert read == {"data-copied-text", "data-failed-text"}
    assert status.attrs["data-copied-text"] == "Copied to the clipboard."
    assert status.attrs["data-failed-text"] == (
        "Could not copy: select the text and copy it by hand."
    )
