"""The detail page's JSON shows names as written, and still escapes them."""

from __future__ import annotations

from intake.models import Interaction
from tests.support.factories import make_interaction
from tests.support.pages import parse

NAME = "Søren Ødegård"
TITLE = "Kontrol: ærgerlig åndenød"
DETAIL = "Feltet 'patient.name' må ikke indeholde <script>"


def pre_texts(html: str) -> list[str]:
    """The text of each <pre> element, as a browser shows it."""
    return [pre.raw_text for pre in parse(html).find_all("pre")]


def record_with_names(user, **fields) -> Interaction:
    return make_interaction(
        user,
        encounter_identifier="ENC-4001",
        encounter_title=TITLE,
        patient_identifier="PAT-7",
        patient_name=NAME,
        request_body={
            "encounter": {"identifier": "ENC-4001", "title": TITLE},
            "patient": {"identifier": "PAT-7", "name": NAME},
        },
        **fields,
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
