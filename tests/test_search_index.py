"""SQLite's trigram index for the history's search (intake.search_index).

On PostgreSQL these check that nothing is made (its GIN index is checked in
tests/views/test_history_search.py).
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from intake import search_index
from intake.models import Interaction
from intake.selectors import interaction_list
from tests.support.factories import make_interaction

pytestmark = pytest.mark.django_db

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's own index (FTS5)"
)


def names(q: str) -> set[str]:
    return {row.patient_name for row in interaction_list(q=q)}


@sqlite_only
def test_a_name_search_reads_the_trigram_index(clinician):
    make_interaction(clinician, patient_name="Søren Ødegård")
    with CaptureQueriesContext(connection) as queries:
        assert names("odegard") == {"Søren Ødegård"}
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + queries[0]["sql"])
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    assert f"SCAN {search_index.TABLE} VIRTUAL TABLE INDEX" in plan, plan


@sqlite_only
def test_the_index_follows_inserts_corrections_and_deletions(clinician):
    record = make_interaction(clinician, patient_name="Åse Ørsted")
    Interaction.objects.bulk_create(
        [Interaction(**{**_fields(record), "patient_name": "Jürgen Groß"})]
    )
    assert names("orsted") == {"Åse Ørsted"}
    assert names("gross") == {"Jürgen Groß"}

    record.patient_name = "Åse Nørgaard"
    record.save()
    assert names("orsted") == set()
    assert names("norgaard") == {"Åse Nørgaard"}

    Interaction.objects.filter(pk=record.pk).delete()
    assert names("norgaard") == set()
    assert _index_is_whole()


def _fields(record: Interaction) -> dict:
    skip = {"id", "search_text", "interaction_id", "submission_key"}
    return {
        f.attname: getattr(record, f.attname)
        for f in Interaction._meta.concrete_fields
        if f.attname not in skip
    }


def _index_is_whole() -> bool:
    with connection.cursor() as cursor:
        try:
            cursor.execute(
                "INSERT INTO intake_interaction_fts(intake_interaction_fts, rank) "
                "VALUES ('integrity-check', 1)"
            )
        except Exception:
            return False
    return True


@sqlite_only
def test_a_stale_index_misses_a_row_but_never_shows_another_patient(clinician):
    ada = make_interaction(clinician, patient_name="Ada Lovelace")
    # Triggers lost (as a table rebuilt by hand would lose them), and the
    # name changed underneath: the index still says "lovelace" for the row.
    with connection.cursor() as cursor:
        for trigger in search_index._TRIGGERS:
            cursor.execute(f"DROP TRIGGER {trigger}")
        cursor.execute(
            "UPDATE intake_interaction SET patient_name = %s, search_text = %s "
            "WHERE id = %s",
            ["Grace Hopper", "grace hopper", ada.pk.hex],
        )

    assert names("lovelace") == set()
    assert names("hopper") == set()  # missed until the index is rebuilt

    assert search_index.ensure() is True
    assert search_index.ensure() is False
    assert names("hopper") == {"Grace Hopper"}
    assert names("lovelace") == set()
    assert _index_is_whole()


@sqlite_only
def test_the_command_rebuilds_the_index(clinician, capsys):
    make_interaction(clinician, patient_name="José Núñez")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO intake_interaction_fts(intake_interaction_fts) "
            "VALUES ('delete-all')"
        )
    assert names("nunez") == set()

    call_command("rebuild_search_index")

    assert "rebuilt" in capsys.readouterr().out
    assert names("nunez") == {"José Núñez"}


def test_postgresql_needs_no_second_index(capsys):
    if connection.vendor == "sqlite":
        pytest.skip("PostgreSQL's side")
    assert search_index.ensure() is False
    call_command("rebuild_search_index")
    assert "Nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '""',
        'ada"',
        "a*",
        "NEAR(ada lovelace)",
        "ada OR grace",
        "-ada",
        "^ada",
        "ada:x",
        "(ada",
        "{ada}",
        "a'b",
    ],
)
def test_query_syntax_is_searched_as_text_never_read(clinician, q):
    make_interaction(clinician, patient_name="Ada Lovelace")

    # Found or not as plain text; never an error from FTS5's query parser.
    assert names(q) <= {"Ada Lovelace"}


def test_short_words_and_long_ones_together(clinician):
    make_interaction(clinician, patient_name="山田 太郎")
    make_interaction(clinician, patient_name="山田 花子")

    assert names("山田") == {"山田 太郎", "山田 花子"}
    assert names("太郎 山田") == {"山田 太郎"}
    assert names("田 花") == {"山田 花子"}
    assert names("山田太") == set()


def test_the_search_reads_the_same_inside_a_subquery(clinician):
    ada = make_interaction(clinician, patient_name="Ada Lovelace")
    make_interaction(clinician, patient_name="Grace Hopper")

    inner = interaction_list(q="lovelace").values("pk")

    assert list(Interaction.objects.filter(pk__in=inner)) == [ada]
