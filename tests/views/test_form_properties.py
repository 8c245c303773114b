"""Property-based tests: random form data never gets a server error.

Requirement: property-based tests (hypothesis) post random form data and never
get a server error.

Each property drives one entry point with data hypothesis makes up (random
keys, random text including control characters, random subsets of the form's
fields, enum values right and wrong, dates and times in and out of range) as a
signed-in user, with the Corti simulator answering, and asserts that the
answer is never a 5xx and that no exception escapes the view (Django's test
client re-raises one). Examples are bounded so the module runs in well under a
minute; hypothesis keeps no example database in the repository.

The random dates span the whole calendar, years 1 to 9999: wall-clock times
at its edges have no UTC time, and the form must refuse them, not crash (the
tests at the end pin the cases that once did).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from intake.forms import IntakeForm
from intake.models import (
    ENCOUNTER_STATUS_CHOICES,
    ENCOUNTER_TYPE_CHOICES,
    GENDER_CHOICES,
    Interaction,
)
from tests.support.factories import TYPED

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("clinic_zone"),
    # Hypothesis, 150 examples per property through the views: ~25 s.
    pytest.mark.slow,
]

NEW = "/interactions/new/"
VALIDATE = "/interactions/new/validate/"
LIST = "/interactions/"
EXPORT = "/interactions/export.csv"
FIELDS = list(IntakeForm.base_fields)

# Hypothesis' caches (and no example database) go to a temporary folder, not
# into the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "corti-intake-hypothesis")
PROPERTY = hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

#: Any text but lone surrogates (which no browser can send): control
#: characters, NUL, right-to-left marks, emoji, combining marks included.
ANY_CHARACTER = st.characters(blacklist_categories=("Cs",))
any_text = st.text(ANY_CHARACTER, max_size=300)
short_text = st.text(ANY_CHARACTER, max_size=40)

#: The whole calendar, edges included (see the module doc).
SAFE_YEARS = (1, 9999)
local_datetimes = st.datetimes(
    min_value=dt.datetime(SAFE_YEARS[0], 1, 1),
    max_value=dt.datetime(SAFE_YEARS[1], 12, 31, 23, 59, 59),
)
#: The first and last minutes of the calendar: where conversions overflow.
EDGES = [
    f"{SAFE_YEARS[0]:04d}-01-01T00:00",
    f"{SAFE_YEARS[0]:04d}-01-01T00:30",
    f"{SAFE_YEARS[1]:04d}-12-31T23:59",
]
datetime_text = st.one_of(
    st.sampled_from(EDGES),
    local_datetimes.map(lambda d: d.isoformat(timespec="minutes")),
    local_datetimes.map(lambda d: d.isoformat(timespec="seconds")),
    local_datetimes.map(lambda d: d.isoformat(sep=" ", timespec="minutes")),
    # Around the clinic's daylight-saving changes: skipped and repeated hours.
    st.sampled_from(
        [
            "2026-03-29T02:30",
            "2026-10-25T02:30",
            "2026-02-29T10:00",
            "2026-13-01T10:00",
            "2026-01-15T24:00",
            "2026-01-15T10:00Z",
            "2026-01-15T10:00+02:00",
        ]
    ),
    any_text,
)
date_text = st.one_of(
    st.dates().map(dt.date.isoformat),
    # The clinic's order (DMY by default), with each separator and none.
    st.tuples(st.dates(), st.sampled_from(["-", ".", "/", ""])).map(
        lambda d: d[0].strftime(f"%d{d[1]}%m{d[1]}%Y")
    ),
    st.sampled_from(["2026-02-29", "1874-01-01", "0000-01-01", "99999-01-01"]),
    any_text,
)


def choice(choices) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([value for value, _ in choices]), short_text)


uuid_text = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: f"{{{u}}}"),
    short_text,
)

FIELD_VALUES = {
    "submission_key": uuid_text,
    "assigned_user_id": uuid_text,
    "encounter_identifier": any_text,
    "encounter_status": choice(ENCOUNTER_STATUS_CHOICES),
    "encounter_type": choice(ENCOUNTER_TYPE_CHOICES),
    "encounter_title": any_text,
    "encounter_started_at": datetime_text,
    "encounter_ended_at": datetime_text,
    "patient_identifier": any_text,
    "patient_name": any_text,
    "patient_gender": choice(GENDER_CHOICES),
    "patient_birth_date": date_text,
    "patient_pronouns": any_text,
}
assert set(FIELD_VALUES) == set(FIELDS)

#: Valid values for every field, so that some examples get past validation
#: and reach Corti.
VALID = {**TYPED, "encounter_ended_at": "", "assigned_user_id": ""}


@st.composite
def form_data(draw) -> dict[str, str]:
    """Each field valid (mostly), random, or left out."""
    data = {}
    for name, values in FIELD_VALUES.items():
        how = draw(st.sampled_from(["valid"] * 7 + ["random"] * 2 + ["missing"]))
        if how == "valid":
            data[name] = (
                str(draw(st.uuids())) if name == "submission_key" else VALID[name]
            )
        elif how == "random":
            data[name] = draw(values)
    return data


#: Extra fields the form does not know (random names and values).
extra_data = st.dictionaries(
    st.one_of(st.sampled_from(["_field", "csrfmiddlewaretoken", "key"]), short_text),
    any_text,
    max_size=5,
)


def pairs(data: dict[str, str], extra: dict[str, str]) -> list[tuple[str, str]]:
    return [*data.items(), *extra.items()]


def post_urlencoded(client: Client, url: str, items: list[tuple[str, str]]):
    """As a browser posts a form: application/x-www-form-urlencoded."""
    return client.post(
        url, urlencode(items), content_type="application/x-www-form-urlencoded"
    )


def assert_no_server_error(response) -> None:
    assert response.status_code < 500, response.status_code
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # errors while streaming surface here


# --- the intake form ---------------------------------------------------------


@PROPERTY
@given(
    data=form_data(),
    extra=extra_data,
    key=st.one_of(st.none(), uuid_text),
    multipart=st.booleans(),
    htmx=st.booleans(),
)
def test_posting_random_form_data_never_gets_a_server_error(
    corti, clinician_client, data, extra, key, multipart, htmx
):
    url = NEW if key is None else f"{NEW}?{urlencode({'key': key})}"
    headers = {"HX-Request": "true"} if htmx else {}
    if multipart:
        # The test client's multipart encoding: known field names only.
        response = clinician_client.post(url, data, headers=headers)
    else:
        response = clinician_client.post(
            url,
            urlencode(pairs(data, extra)),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )

    assert_no_server_error(response)
    assert response.status_code in (200, 303)
    event(f"answered {response.status_code}")


def test_the_form_property_reaches_corti(corti, clinician_client):
    # The strategies are not all noise: a valid post gets through.
    response = post_urlencoded(
        clinician_client, NEW, pairs({**VALID, "submission_key": str(uuid.uuid4())}, {})
    )

    assert response.status_code == 303
    assert Interaction.objects.get().outcome == Interaction.Outcome.CREATED


@PROPERTY
@given(
    data=form_data(),
    extra=extra_data,
    name=st.one_of(st.sampled_from(FIELDS), short_text, st.none()),
)
def test_live_validation_of_random_data_never_gets_a_server_error(
    corti, clinician_client, data, extra, name
):
    items = pairs(data, extra)
    if name is not None:
        items.append(("_field", name))

    response = post_urlencoded(clinician_client, VALIDATE, items)

    assert_no_server_error(response)
    assert response.status_code in (200, 400)
    assert corti.state()["counts"] == {}


# --- deep links --------------------------------------------------------------

prefill_values = st.one_of(
    any_text,
    datetime_text,
    st.sampled_from(
        [
            f"{SAFE_YEARS[0]:04d}-01-01T00:00:00+05:00",
            f"{SAFE_YEARS[1]:04d}-12-31T23:00:00-05:00",
        ]
    ),
    st.datetimes(
        min_value=dt.datetime(SAFE_YEARS[0], 1, 2),
        max_value=dt.datetime(SAFE_YEARS[1], 12, 30),
        timezones=st.sampled_from(
            [
                dt.UTC,
                dt.timezone(dt.timedelta(hours=14)),
                dt.timezone(dt.timedelta(hours=-12)),
            ]
        ),
    ).map(dt.datetime.isoformat),
)
prefill = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), short_text), prefill_values, max_size=8
)


@PROPERTY
@given(params=prefill, key=st.one_of(st.none(), uuid_text, st.uuids().map(str)))
def test_opening_the_form_with_random_prefill_never_gets_a_server_error(
    corti, clinician_client, params, key
):
    query = dict(params)
    if key is not None:
        query["key"] = key

    response = clinician_client.get(NEW, query, follow=True)

    assert_no_server_error(response)
    assert response.status_code == 200
    assert corti.state()["counts"] == {}


# --- the list and the export -------------------------------------------------

list_filters = st.fixed_dictionaries(
    {},
    optional={
        "q": any_text,
        "status": choice(ENCOUNTER_STATUS_CHOICES),
        "type": choice(ENCOUNTER_TYPE_CHOICES),
        "outcome": choice(Interaction.Outcome.choices),
        "page": st.one_of(
            st.integers(min_value=-(10**20), max_value=10**20).map(str), short_text
        ),
    },
)


@pytest.fixture
def some_records(corti, clinician_client):
    """A few real submissions, so filters have something to match."""
    for identifier in ("ENC-1", "PAT-7", "<b>&"):
        key = str(uuid.uuid4())
        clinician_client.post(
            NEW,
            {
                **VALID,
                "submission_key": key,
                "encounter_identifier": identifier,
                # The same patient each time, deliberately.
                "confirm_duplicate": "1",
            },
        )
    assert Interaction.objects.count() == 3


@PROPERTY
@given(filters=list_filters, extra=extra_data, htmx=st.booleans())
def test_listing_with_random_filters_never_gets_a_server_error(
    some_records, clinician_client, filters, extra, htmx
):
    headers = {"HX-Request": "true"} if htmx else {}

    response = clinician_client.get(
        f"{LIST}?{urlencode(pairs(filters, extra))}", headers=headers
    )

    assert_no_server_error(response)
    assert response.status_code == 200


@PROPERTY
@given(filters=list_filters, extra=extra_data)
def test_exporting_with_random_filters_never_gets_a_server_error(
    some_records, admin_browser, filters, extra
):
    response = admin_browser.get(f"{EXPORT}?{urlencode(pairs(filters, extra))}")

    assert_no_server_error(response)
    assert response.status_code == 200


# --- server errors found once, pinned ---------------------------------------------


@pytest.mark.parametrize("url", [NEW, VALIDATE])
@pytest.mark.parametrize("field", ["encounter_started_at", "encounter_ended_at"])
def test_a_time_in_year_one_is_refused_not_a_server_error(
    corti, clinician_client, url, field
):
    data = {
        **VALID,
        "submission_key": str(uuid.uuid4()),
        field: "0001-01-01T00:30",
        "_field": field,
    }

    response = post_urlencoded(clinician_client, url, list(data.items()))

    assert response.status_code < 500
    assert corti.state()["counts"] == {}


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"]
)
def test_a_deep_link_time_out_of_range_is_shown_not_a_server_error(
    clinician_client, value
):
    response = clinician_client.get(
        NEW, {"key": str(uuid.uuid4()), "encounter_started_at": value}, follow=True
    )

    assert response.status_code == 200
