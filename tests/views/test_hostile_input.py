"""Hostile input: every text field round-trips, and is shown escaped everywhere.

Requirement: every text field round-trips a corpus of hostile values (HTML and
script injection, quotes, very long strings, NUL and control characters,
right-to-left marks, emoji, SQL fragments) and shows it escaped in the form,
the list, the detail page, the admin and the export.

What the code does with the awkward ones, and these tests hold it to:

- Text is kept exactly as typed except that Django's CharField trims leading
  and trailing whitespace (spaces, tabs, newlines). Inside a value, tabs and
  other control characters (\\x01, \\x1b, \\x7f) are kept and sent as typed.
- NUL is refused with Django's "Null characters are not allowed." message.
- Beyond the field's length (255, pronouns 64) is refused with Django's
  length message. Refused input is kept in the form and nothing is sent.
- In the CSV export a cell that a spreadsheet would read as a formula (it
  starts with = + - @, a tab, CR or LF, or a full-width = + -) is prefixed
  with an apostrophe; every other cell is the value as typed.
"""

from __future__ import annotations

import csv
import io
import time
import uuid

import pytest
from django.test import Client
from django.utils.html import escape

from intake import sessions
from intake.models import Interaction
from tests.support.factories import TYPED
from tests.support.pages import (
    field_errors,
    form_values,
    non_field_errors,
    page,
    parse,
    post_new_form,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("clinic_zone"),
    # Tables of hostile text through Corti and every page: ~25 s.
    pytest.mark.slow,
]

NEW = "/interactions/new/"
LIST = "/interactions/"
EXPORT = "/interactions/export.csv"
ADMIN_CHANGELIST = "/admin/intake/interaction/"

LIMITS = {
    "encounter_identifier": 255,
    "encounter_title": 255,
    "patient_identifier": 255,
    "patient_name": 255,
    "patient_pronouns": 64,
}
TEXT_FIELDS = tuple(LIMITS)
#: Where Corti holds each field in what it received.
CORTI_PATH = {
    "encounter_identifier": ("encounter", "identifier"),
    "encounter_title": ("encounter", "title"),
    "patient_identifier": ("patient", "identifier"),
    "patient_name": ("patient", "name"),
    "patient_pronouns": ("patient", "pronouns"),
}
#: Shown in the list's rows (pronouns are not), and in the admin's changelist.
IN_LIST = {
    "encounter_identifier",
    "encounter_title",
    "patient_identifier",
    "patient_name",
}
IN_ADMIN_CHANGELIST = {"encounter_identifier", "patient_identifier"}
#: The list's search matches these.
SEARCHED = {"encounter_identifier", "patient_identifier", "patient_name"}
#: CSV column title of each field.
CSV_COLUMN = {
    "encounter_identifier": "Encounter identifier",
    "encounter_title": "Title",
    "patient_identifier": "Patient identifier",
    "patient_name": "Patient name",
    "patient_pronouns": "Pronouns",
}

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "img-onerror": '"><img src=x onerror=alert(1)>',
    "attribute-break": "' autofocus onfocus='alert(1)",
    "sql-or": "' OR 1=1; --",
    "sql-drop": "Robert'); DROP TABLE intake_interaction;--",
    "django-template": "{{ 7*7 }}",
    "django-tag": "{% debug %}",
    "js-template": "${7*7}",
    "entities": "&lt;b&gt; &amp; &#x27;",
    "like-wildcards": "100% _off_ \\",
    "formula-equals": '=HYPERLINK("http://evil","x")',
    "formula-plus": "+cmd",
    "formula-at": "@SUM(1)",
    "formula-minus": "-1+1",
    "formula-fullwidth": "\uff1d1+1",
    "rtl-override": "\u202eevil\u202c",
    "rtl-mark": "\u200f",
    "emoji-zwj": "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 "
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "combining": "Z\u0351\u0364a\u036b\u0353l\u0310g\u034co",
    "smart-quotes": "\u201csmart\u201d \u2018quotes\u2019 \u00abguillemets\u00bb",
    "control-chars": "a\x01b\x1bc\x7fd",
    "inner-tab": "a\tb",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d")


def at_limit(field: str) -> str:
    """Exactly as long as the field allows, and full of markup."""
    return ("<b>&'\"" * 100)[: LIMITS[field]]


def hostile_cases():
    for name, value in HOSTILE.items():
        yield pytest.param({field: value for field in TEXT_FIELDS}, id=name)
    yield pytest.param(
        {field: at_limit(field) for field in TEXT_FIELDS}, id="at-the-length-limit"
    )


# --- helpers -----------------------------------------------------------------


def assert_escaped(html: str, value: str, where: str) -> None:
    """The value is on the page in its escaped form, and never raw."""
    assert escape(value) in html, f"{where}: {value!r} is not shown (escaped)"
    assert_never_raw(html, value, where)


def assert_never_raw(html: str, value: str, where: str) -> None:
    if escape(value) != value:
        assert value not in html, f"{where}: {value!r} is shown unescaped"
    for tag in ("<script>", "<img src=x", "<b>"):
        if tag in value:
            assert tag not in html, f"{where}: {tag} is shown unescaped"


def export_rows(browser: Client, **query: str) -> list[dict[str, str]]:
    response = browser.get(EXPORT, query)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def exported_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def list_rows(html: str) -> str:
    rows = parse(html).find("tbody")
    assert rows, "the list shows no rows"
    return rows.inner_html


DETAIL_LABEL = {
    "encounter_identifier": "Encounter identifier",
    "encounter_title": "Title",
    "patient_identifier": "Patient identifier",
    "patient_name": "Patient name",
    "patient_pronouns": "Pronouns",
}


def detail_value(html: str, field: str) -> str:
    """What the detail page shows beside the field's label (as HTML)."""
    label = DETAIL_LABEL[field]
    for term in parse(html).find_all("dt"):
        if term.raw_text == label:
            siblings = term.parent.children
            value = siblings[siblings.index(term) + 1]
            assert value.tag == "dd", f"{label} is not followed by its value"
            return value.inner_html
    raise AssertionError(f"the detail page has no {label}")


def admin_readonly_value(html: str, field: str) -> str:
    """What the admin's change page shows for a (read-only) field, as HTML."""
    row = parse(html).find("div", classes=("form-row", f"field-{field}"))
    value = row and row.find("div", class_="readonly")
    assert value, f"the admin change page has no {field}"
    return value.inner_html


def changelist_value(html: str, field: str) -> str:
    cell = parse(html).find("td", class_=f"field-{field}")
    assert cell, f"the admin changelist has no {field} column"
    return cell.inner_html


def corti_received(corti, field: str) -> str:
    [created] = corti.state()["interactions"]
    part, key = CORTI_PATH[field]
    return created[part][key]


def submit(client: Client, **changes: str):
    """The intake form, filled in with TYPED and `changes`, sent once."""
    return post_new_form(client, {**TYPED, **changes})


# --- accepted values: sent as typed, shown escaped everywhere ----------------


@pytest.mark.parametrize("typed", list(hostile_cases()))
def test_hostile_text_round_trips_and_is_shown_escaped_everywhere(
    corti, clinician_client, admin_browser, typed
):
    response, key = submit(clinician_client, **typed)

    assert response.status_code == 303, page(response)
    record = Interaction.objects.get(submission_key=key)
    assert record.outcome == Interaction.Outcome.CREATED
    for field, value in typed.items():
        assert getattr(record, field) == value, field
        assert corti_received(corti, field) == value, field

    # The form's address, reopened: what was sent, read-only.
    html = page(clinician_client.get(NEW, {"key": key}))
    assert "This form was already sent" in html
    assert not set(typed) & set(form_values(html))
    for field, value in typed.items():
        assert detail_value(html, field) == escape(value), field
        assert_never_raw(html, value, f"sent form {field}")

    # The list, searched for each searchable field.
    for field in SEARCHED:
        html = page(clinician_client.get(LIST, {"q": typed[field]}))
        assert f'href="{record.get_absolute_url()}"' in html, field
        rows = list_rows(html)
        for shown in IN_LIST:
            assert escape(typed[shown]) in rows, shown
        for value in typed.values():
            assert_never_raw(html, value, f"list searched by {field}")

    # The detail page: each value, exactly, escaped.
    html = page(clinician_client.get(record.get_absolute_url()))
    for field, value in typed.items():
        assert detail_value(html, field) == escape(value), field
        assert_never_raw(html, value, f"detail {field}")

    # The admin, as an administrator: the change page and the changelist.
    html = page(admin_browser.get(f"{ADMIN_CHANGELIST}{record.pk}/change/"))
    for field, value in typed.items():
        assert admin_readonly_value(html, field) == escape(value), field
        assert_never_raw(html, value, f"admin change page {field}")
    html = page(admin_browser.get(ADMIN_CHANGELIST))
    for field in IN_ADMIN_CHANGELIST:
        assert changelist_value(html, field) == escape(typed[field]), field
    for value in typed.values():
        assert_never_raw(html, value, "admin changelist")

    # The CSV export.
    [row] = export_rows(admin_browser)
    assert row["Local ID"] == str(record.pk)
    for field, value in typed.items():
        assert row[CSV_COLUMN[field]] == exported_cell(value), field


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_surrounding_whitespace_is_trimmed_and_inner_control_characters_kept(
    corti, clinician_client, admin_browser, field
):
    response, key = submit(clinician_client, **{field: " \t\r\n a\x1bb\tc \n\t"})

    assert response.status_code == 303
    record = Interaction.objects.get(submission_key=key)
    assert getattr(record, field) == "a\x1bb\tc"
    assert corti_received(corti, field) == "a\x1bb\tc"
    [row] = export_rows(admin_browser)
    assert row[CSV_COLUMN[field]] == "a\x1bb\tc"


# --- refused values: marked, kept, nothing sent ------------------------------


def refused_cases():
    for field, limit in LIMITS.items():
        long = "<script>alert(1)</script>" * 400  # 10,000 characters
        yield pytest.param(
            field,
            "<b>x</b>\x00';--",
            "Null characters are not allowed.",
            id=f"{field}-nul",
        )
        yield pytest.param(
            field,
            at_limit(field) + "<",
            f"Ensure this value has at most {limit} characters (it has {limit + 1}).",
            id=f"{field}-one-too-long",
        )
        yield pytest.param(
            field,
            long,
            f"Ensure this value has at most {limit} characters (it has 10000).",
            id=f"{field}-10000",
        )


@pytest.mark.parametrize(("field", "value", "message"), list(refused_cases()))
def test_refused_text_is_marked_kept_escaped_and_not_sent(
    corti, clinician_client, field, value, message
):
    response, _ = submit(clinician_client, **{field: value})

    assert response.status_code == 200
    html = page(response)
    assert field_errors(html, field) == [message]
    assert form_values(html)[field] == value
    assert_escaped(html, value, "form")
    assert not Interaction.objects.exists()
    assert corti.state()["counts"] == {}


@pytest.mark.parametrize("value", ["PAT\x00-7", "P" * 256], ids=["nul", "one-too-long"])
def test_refused_patient_identifier_is_not_also_reported_as_missing(
    corti, clinician_client, value
):
    response, _ = submit(clinician_client, patient_identifier=value)

    errors = field_errors(page(response), "patient_identifier")
    assert len(errors) == 1, errors


@pytest.mark.parametrize(
    "value",
    [
        HOSTILE["script"],
        HOSTILE["img-onerror"],
        HOSTILE["attribute-break"],
        HOSTILE["sql-drop"],
        HOSTILE["emoji-zwj"],
        "f47ac10b-58cc-4372-a567-0e02b2c3d47",  # one digit short
        "f47ac10b-58cc-4372-a567-0e02b2c3d479<",
        "f47ac10b\x00-58cc-4372-a567-0e02b2c3d479",
        "<script>" * 1250,
    ],
    ids=[
        "script",
        "img-onerror",
        "attribute-break",
        "sql-drop",
        "emoji",
        "short",
        "trailing-markup",
        "nul",
        "10000",
    ],
)
def test_assigned_user_id_refuses_anything_but_a_uuid_and_shows_it_escaped(
    corti, clinician_client, value
):
    response, _ = submit(clinician_client, assigned_user_id=value)

    assert response.status_code == 200
    html = page(response)
    assert field_errors(html, "assigned_user_id") == [
        "Enter a valid UUID, like f47ac10b-58cc-4372-a567-0e02b2c3d479."
    ]
    assert form_values(html)["assigned_user_id"] == value
    assert_escaped(html, value, "form")
    assert not Interaction.objects.exists()
    assert corti.state()["counts"] == {}


# --- hostile text from elsewhere: a deep link, Corti's messages, a draft -----


@pytest.mark.parametrize(
    "value",
    [HOSTILE["script"], HOSTILE["img-onerror"], HOSTILE["attribute-break"]],
    ids=["script", "img-onerror", "attribute-break"],
)
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_hostile_deep_link_prefills_the_form_escaped(clinician_client, field, value):
    response = clinician_client.get(
        NEW, {"key": str(uuid.uuid4()), field: value}, follow=True
    )

    assert response.status_code == 200
    html = page(response)
    assert form_values(html)[field] == value
    assert_escaped(html, value, "prefilled form")


def test_hostile_messages_from_corti_are_shown_escaped(corti, clinician_client):
    script, img = HOSTILE["script"], HOSTILE["img-onerror"]
    corti.set_faults(
        {
            "kind": "400",
            "endpoint": "create",
            "count": 1,
            "validation_errors": [
                {"encounter.identifier": script},
                {img: script},
            ],
        }
    )

    response, key = submit(clinician_client)

    html = page(response)
    assert field_errors(html, "encounter_identifier") == [f"Corti: {script}"]
    assert non_field_errors(html) == [f"Corti: {img} {script}"]
    assert_never_raw(html, script, "form")
    assert_never_raw(html, img, "form")
    record = Interaction.objects.get(submission_key=key)
    detail = page(clinician_client.get(record.get_absolute_url()))
    assert f"<code>{escape(img)}</code>: {escape(script)}" in detail
    assert_never_raw(detail, script, "detail")
    assert_never_raw(detail, img, "detail")


def test_hostile_failed_submission_is_escaped_in_the_lists_retry_button(
    corti, clinician_client
):
    value = HOSTILE["img-onerror"]
    corti.set_faults({"kind": "403", "endpoint": "create", "count": 1})
    response, _ = submit(clinician_client, encounter_identifier=value)
    assert response.status_code == 200
    assert_escaped(page(response), value, "failure page")

    html = page(clinician_client.get(LIST))

    assert 'aria-label="Retry the submission of' in html
    assert f'for encounter {escape(value)}">Retry</button>' in html
    assert_never_raw(html, value, "list")


def test_hostile_draft_kept_over_an_idle_sign_out_comes_back_escaped(
    corti, clinician_client, clinician, settings
):
    hostile = {
        "encounter_identifier": HOSTILE["script"],
        "encounter_title": HOSTILE["img-onerror"],
        "patient_identifier": HOSTILE["attribute-break"],
        "patient_name": HOSTILE["sql-drop"],
        "patient_pronouns": HOSTILE["emoji-zwj"],
    }
    key = str(uuid.uuid4())
    # Only the form the clinician had open when signed out is kept.
    assert clinician_client.get(NEW, {"key": key}).status_code == 200
    session = clinician_client.session
    # Just ran out: the page hands its typing over as the session ends.
    session[sessions.LAST_SEEN] = time.time() - settings.INTAKE_SESSION_IDLE_TIMEOUT - 5
    session.save()
    response = clinician_client.post(
        f"{NEW}?key={key}", {**TYPED, "submission_key": key, **hostile}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    clinician_client.force_login(clinician)

    html = page(clinician_client.get(NEW, {"key": key}))

    values = form_values(html)
    for field, value in hostile.items():
        assert values[field] == value
        assert_escaped(html, value, f"draft {field}")
    assert corti.state()["counts"] == {}
