"""The detail page's JSON shows names as written, and still escapes them."""

from __future__ import annotations

import datetime as dt
import uuid
from html.parser import HTMLParser

from intake.models import Interaction

NAME = "Søren Ødegård"
TITLE = "Kontrol: ærgerlig åndenød"
DETAIL = "Feltet 'patient.name' må ikke indeholde <script>"


class _PreTexts(HTMLParser):
    """The text of each <pre> element, as a browser shows it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "pre":
            self._inside = True
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.texts[-1] += data


def pre_texts(html: str) -> list[str]:
    parser = _PreTexts()
    parser.feed(html)
    return parser.texts


def record_with_names(user, **fields) -> Interaction:
    values = {
        "outcome": Interaction.Outcome.CREATED,
        "interaction_id": uuid.uuid4(),
        **fields,
    }
    return Interaction.objects.create(
        submitted_by=user,
        encounter_identifier="ENC-4001",
        encounter_status="planned",
        encounter_type="consultation",
        encounter_started_at=dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC),
        encounter_title=TITLE,
        patient_identifier="PAT-7",
        patient_name=NAME,
        time_zone="Europe/Copenhagen",
        request_body={
            "encounter": {"identifier": "ENC-4001", "title": TITLE},
            "patient": {"identifier": "PAT-7", "name": NAME},
        },
        **values,
    )


def test_the_json_sent_to_corti_shows_names_as_written(clinician_client, clinician):
    record = record_with_names(clinician)

    response = clinician_client.get(f"/interactions/{record.pk}/")

    assert response.status_code == 200
    [sent] = pre_texts(response.content.decode())
    assert f'"name": "{NAME}"' in sent
    assert f'"title": "{TITLE}"' in sent
    assert "\\u00" not in sent


def test_corti_s_problem_details_show_text_as_written_and_escaped(
    clinician_client, clinician
):
    record = record_with_names(
        clinician,
        outcome=Interaction.Outcome.FAILED,
        interaction_id=None,
        error_problem={"title": "Ugyldig anmodning", "detail": DETAIL},
    )

    response = clinician_client.get(f"/interactions/{record.pk}/")

    html = response.content.decode()
    problem, sent = pre_texts(html)
    assert f'"detail": "{DETAIL}"' in problem
    assert f'"name": "{NAME}"' in sent
    assert "\\u00" not in problem + sent
    # The markup in Corti's text stays text.
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
