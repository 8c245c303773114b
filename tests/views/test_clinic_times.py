"""Times read the same everywhere: the clinic's zone, named, in one format; a
wall-clock time the clocks show twice is asked about, never guessed."""

import datetime as dt
import re
import uuid

import pytest
from axes.models import AccessLog
from django.template import Context, Template

from intake.models import CortiCall, Interaction, InteractionEvent
from tests.support import factories
from tests.support.pages import field_errors, page_ok, page_text, parse, radio_choices

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clinic_zone")]

UTC = dt.UTC
NEW = "/interactions/new/"
VALIDATE = "/interactions/new/validate/"
LIST = "/interactions/"

# A date and time as a reader meets it, with whatever follows it.
DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?: [^\s,.;:)]+)?")
ZONE_NAMES = {"Europe/Copenhagen": ("CET", "CEST")}

WINTER = dt.datetime(2026, 1, 15, 9, 0, 7, tzinfo=UTC)  # 10:00:07 CET
SUMMER = dt.datetime(2026, 7, 1, 10, 2, 9, tzinfo=UTC)  # 12:02:09 CEST

TYPED = {
    "encounter_status": "in-progress",
    "encounter_type": "first_consultation",
    "patient_identifier": "PAT-7",
}


def times_shown(html: str) -> list[str]:
    return DATE_TIME.findall(page_text(html))


def assert_every_time_names_the_zone(html: str, zone: str = "Europe/Copenhagen"):
    shown = times_shown(html)
    assert shown, "no times on the page"
    for text in shown:
        assert text.rsplit(" ", 1)[-1] in ZONE_NAMES[zone], text


def winter_record(user, **fields) -> Interaction:
    """A record submitted in WINTER, its encounter ending in summer."""
    return factories.make_interaction(
        user,
        created_at=WINTER,
        **{
            "encounter_identifier": "ENC-T",
            "encounter_ended_at": dt.datetime(2026, 7, 1, 10, 45, tzinfo=UTC),
            "patient_birth_date": dt.date(1980, 4, 23),
            **fields,
        },
    )


def render(template: str, **context) -> str:
    return Template("{% load clinic_time %}" + template).render(Context(context))


# --- the filter


@pytest.mark.parametrize(
    ("zone", "value", "shown"),
    [
        ("Europe/Copenhagen", WINTER, "2026-01-15 10:00 CET"),
        ("Europe/Copenhagen", SUMMER, "2026-07-01 12:02 CEST"),
        ("America/New_York", WINTER, "2026-01-15 04:00 EST"),
        ("America/New_York", SUMMER, "2026-07-01 06:02 EDT"),
        ("UTC", SUMMER, "2026-07-01 10:02 UTC"),
        ("Asia/Kolkata", WINTER, "2026-01-15 14:30 IST"),
        # No abbreviation in the tz database: its offset stands in.
        ("Pacific/Chatham", WINTER, "2026-01-15 22:45 +1345"),
    ],
)
def test_filter_shows_clinic_time_with_the_zones_abbreviation(
    settings, zone, value, shown
):
    settings.TIME_ZONE = zone

    assert render("{{ when|clinic_time }}", when=value) == shown


def test_filter_with_seconds():
    assert render('{{ when|clinic_time:"seconds" }}', when=SUMMER) == (
        "2026-07-01 12:02:09 CEST"
    )


@pytest.mark.parametrize(("fold", "shown"), [(0, "02:30 CEST"), (1, "02:30 CET")])
def test_filter_tells_the_two_readings_of_the_repeated_hour_apart(fold, shown):
    # Stored in UTC: 00:30 and 01:30 UTC are both 02:30 on the clinic's clocks.
    when = dt.datetime(2026, 10, 25, fold, 30, tzinfo=UTC)

    assert render("{{ when|clinic_time }}", when=when) == f"2026-10-25 {shown}"


def test_filter_leaves_nothing_for_a_missing_time():
    assert render("{{ when|clinic_time }}", when=None) == ""


# --- every page


def test_detail_page_shows_every_time_in_clinic_time_with_its_zone(
    clinician, clinician_client
):
    record = winter_record(
        clinician,
        outcome=Interaction.Outcome.UNKNOWN,
        interaction_id=None,
        last_checked_at=SUMMER,
        next_check_at=WINTER,
    )
    CortiCall.objects.create(
        interaction=record,
        kind=CortiCall.Kind.CREATE,
        trigger=CortiCall.Trigger.SUBMIT,
        user=clinician,
        started_at=SUMMER,
    )
    InteractionEvent.objects.create(
        interaction=record,
        kind=InteractionEvent.Kind.FLAGGED,
        at=WINTER,
    )

    html = page_ok(clinician_client.get(record.get_absolute_url()))

    text = page_text(html)
    assert "Submitted 2026-01-15 10:00:07 CET by clin" in text
    assert "Started at 2026-01-15 10:00 CET" in text
    assert "Ended at 2026-07-01 12:45 CEST" in text
    assert "Last checked 2026-07-01 12:02:09 CEST" in text
    assert "Next check 2026-01-15 10:00:07 CET" in text
    assert "2026-07-01 12:02:09 CEST Create Form submitted" in text
    assert "2026-01-15 10:00:07 CET: Flagged for an administrator" in text
    # A date alone stays a date.
    assert "Birth date 1980-04-23" in text
    assert_every_time_names_the_zone(html)


def test_list_shows_submission_times_with_the_zone(clinician, clinician_client):
    winter_record(clinician)

    html = page_ok(clinician_client.get(LIST))

    assert "2026-01-15 10:00 CET" in page_text(html)
    assert_every_time_names_the_zone(html)


def test_a_used_forms_summary_shows_times_with_the_zone(clinician, clinician_client):
    record = winter_record(clinician)

    html = page_ok(clinician_client.get(f"{NEW}?key={record.submission_key}"))

    text = page_text(html)
    assert "This form was already sent" in text
    assert "Submitted 2026-01-15 10:00:07 CET" in text
    assert_every_time_names_the_zone(html)


def test_admin_change_page_and_call_log_show_times_with_the_zone(
    clinician, admin_client_
):
    record = winter_record(clinician, completed_at=SUMMER)
    CortiCall.objects.create(
        interaction=record,
        kind=CortiCall.Kind.CREATE,
        trigger=CortiCall.Trigger.SUBMIT,
        started_at=SUMMER,
        finished_at=SUMMER,
    )

    html = page_ok(admin_client_.get(f"/admin/intake/interaction/{record.pk}/change/"))

    text = page_text(html)
    assert "2026-01-15 10:00:07 CET" in text  # created
    assert "2026-01-15 10:00:00 CET" in text  # encounter started
    assert "2026-07-01 12:02:09 CEST" in text  # completed, and the call
    assert "1980-04-23" in text
    assert_every_time_names_the_zone(html)


def test_admin_list_shows_times_with_the_zone(clinician, admin_client_):
    winter_record(clinician)

    html = page_ok(admin_client_.get("/admin/intake/interaction/"))

    assert "2026-01-15 10:00:07 CET" in page_text(html)
    assert_every_time_names_the_zone(html)


def test_admin_sign_in_log_shows_times_with_the_zone(admin_client_):
    entry = AccessLog.objects.create(
        username="clin", ip_address="127.0.0.1", user_agent="test"
    )
    AccessLog.objects.filter(pk=entry.pk).update(attempt_time=SUMMER)

    html = page_ok(admin_client_.get("/admin/axes/accesslog/"))

    assert "2026-07-01 12:02:09 CEST" in page_text(html)
    assert_every_time_names_the_zone(html)


# --- the repeated hour on the form

REPEATED = [
    # zone, typed, the question, its answers, the instants in UTC
    (
        "Europe/Copenhagen",
        "2026-10-25T02:30",
        "02:30 on 2026-10-25 happens twice in Europe/Copenhagen "
        "(the clocks go back). Choose which:",
        ["02:30 CEST (first)", "02:30 CET (second)"],
        ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"],
    ),
    (
        "America/New_York",
        "2026-11-01T01:30",
        "01:30 on 2026-11-01 happens twice in America/New_York "
        "(the clocks go back). Choose which:",
        ["01:30 EDT (first)", "01:30 EST (second)"],
        ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"],
    ),
]


def typed(local: str, **more) -> dict[str, str]:
    return {
        **TYPED,
        "submission_key": str(uuid.uuid4()),
        "encounter_identifier": f"ENC-{uuid.uuid4().hex[:8]}",
        "encounter_started_at": local,
        **more,
    }


@pytest.mark.parametrize(("zone", "local", "question", "answers", "utc"), REPEATED)
def test_a_repeated_time_is_asked_about_and_nothing_is_sent(
    corti, clinician_client, settings, zone, local, question, answers, utc
):
    settings.TIME_ZONE = zone

    html = page_ok(clinician_client.post(NEW, typed(local)))

    assert field_errors(html, "encounter_started_at") == [question]
    assert radio_choices(html, "encounter_started_at_fold") == [
        ("0", answers[0], False),
        ("1", answers[1], False),
    ]
    # A group with a name a screen reader announces.
    question_group = parse(html).one("fieldset", class_="fold-question")
    legend = question_group.children[0]
    assert legend.tag == "legend"
    assert legend.raw_text == f"Started at: which {local[11:]}?"
    before = question_group.nodes[: question_group.nodes.index(legend)]
    assert all(not text.strip() for text in before)
    assert not Interaction.objects.exists()
    assert corti.state()["interactions"] == []


@pytest.mark.parametrize(("zone", "local", "question", "answers", "utc"), REPEATED)
@pytest.mark.parametrize("fold", [0, 1])
def test_the_chosen_reading_is_stored_and_sent_to_corti(
    corti, clinician_client, settings, zone, local, question, answers, utc, fold
):
    settings.TIME_ZONE = zone

    response = clinician_client.post(
        NEW, typed(local, encounter_started_at_fold=str(fold))
    )

    assert response.status_code == 303, field_errors(
        page_ok(response), "encounter_started_at"
    )
    record = Interaction.objects.get()
    assert record.encounter_started_at == dt.datetime.fromisoformat(utc[fold])
    [created] = corti.state()["interactions"]
    assert created["encounter"]["period"]["startedAt"] == utc[fold]
    # Its page names the reading by its abbreviation.
    shown = page_text(page_ok(clinician_client.get(record.get_absolute_url())))
    assert f"Started at {local[:10]} {answers[fold].split(' (')[0]}" in shown


@pytest.mark.parametrize(("zone", "local", "question", "answers", "utc"), REPEATED)
def test_live_validation_asks_the_same_question(
    clinician_client, settings, zone, local, question, answers, utc
):
    settings.TIME_ZONE = zone

    html = page_ok(
        clinician_client.post(VALIDATE, typed(local, _field="encounter_started_at"))
    )

    assert field_errors(html, "encounter_started_at") == [question]
    assert 'id="id_encounter_started_at-fold" hx-swap-oob="true"' in html
    assert radio_choices(html, "encounter_started_at_fold") == [
        ("0", answers[0], False),
        ("1", answers[1], False),
    ]


def test_live_validation_of_an_answer_clears_the_error_and_leaves_the_buttons(
    clinician_client,
):
    # The buttons the user just pressed are not swapped under the cursor.
    html = page_ok(
        clinician_client.post(
            VALIDATE,
            typed(
                "2026-10-25T02:30",
                _field="encounter_started_at",
                encounter_started_at_fold="1",
                encounter_started_at_fold_for="2026-10-25T02:30",
            ),
        )
    )

    assert field_errors(html, "encounter_started_at") == []
    assert "id_encounter_started_at-fold" not in html


def test_live_validation_of_a_changed_time_asks_again_keeping_the_answer(
    clinician_client,
):
    html = page_ok(
        clinician_client.post(
            VALIDATE,
            typed(
                "2026-10-25T02:45",
                _field="encounter_started_at",
                encounter_started_at_fold="1",
                encounter_started_at_fold_for="2026-10-25T02:30",
            ),
        )
    )

    assert field_errors(html, "encounter_started_at") == []
    assert radio_choices(html, "encounter_started_at_fold") == [
        ("0", "02:45 CEST (first)", False),
        ("1", "02:45 CET (second)", True),
    ]


def test_live_validation_of_a_time_that_happens_once_removes_the_question(
    clinician_client,
):
    html = page_ok(
        clinician_client.post(
            VALIDATE,
            typed(
                "2026-10-25T03:30",
                _field="encounter_started_at",
                encounter_started_at_fold="1",
                encounter_started_at_fold_for="2026-10-25T02:30",
            ),
        )
    )

    slot = parse(html).one(id="id_encounter_started_at-fold")
    assert slot.tag == "div"
    assert slot.attrs == {
        "class": "fold-slot",
        "id": "id_encounter_started_at-fold",
        "hx-swap-oob": "true",
    }
    assert slot.inner_html == ""


def test_an_answer_is_kept_when_another_field_sends_the_form_back(clinician_client):
    html = page_ok(
        clinician_client.post(
            NEW,
            typed(
                "2026-10-25T02:30",
                encounter_started_at_fold="1",
                encounter_status="",
            ),
        )
    )

    assert field_errors(html, "encounter_status")
    assert field_errors(html, "encounter_started_at") == []
    assert radio_choices(html, "encounter_started_at_fold")[1] == (
        "1",
        "02:30 CET (second)",
        True,
    )


def test_a_failed_submission_reopened_keeps_its_reading(clinician, clinician_client):
    second = dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    record = winter_record(
        clinician,
        encounter_started_at=second,
        encounter_ended_at=None,
        outcome=Interaction.Outcome.FAILED,
        interaction_id=None,
        error_code="invalid",
    )

    html = page_ok(clinician_client.get(f"{NEW}?key={record.submission_key}"))

    assert field_errors(html, "encounter_started_at") == []
    assert radio_choices(html, "encounter_started_at_fold") == [
        ("0", "02:30 CEST (first)", False),
        ("1", "02:30 CET (second)", True),
    ]


def test_a_time_skipped_by_the_clocks_names_the_zone(clinician_client):
    html = page_ok(clinician_client.post(NEW, typed("2026-03-29T02:30")))

    assert field_errors(html, "encounter_started_at") == [
        "2026-03-29 02:30 does not exist in Europe/Copenhagen: the clocks skip "
        "that hour. Enter a time outside the change."
    ]
    assert radio_choices(html, "encounter_started_at_fold") == []


def test_an_unreadable_time_gives_no_example_in_another_format(clinician_client):
    html = page_ok(clinician_client.post(NEW, typed("15/01/2026 10:00")))

    assert field_errors(html, "encounter_started_at") == ["Enter a date and time."]
