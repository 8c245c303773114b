"""The history's search text (intake.search), filled for every submission.

On PostgreSQL, a trigram index (pg_trgm, a trusted extension the database's
owner may create) answers "part of the text" without reading the table.
SQLite has no such index: it reads the one folded column.
"""

import sys

from django.db import DatabaseError, migrations, models, transaction

BATCH = 2000
TRIGRAM_INDEX = "interaction_search_trgm"


def fill(apps, schema_editor):
    from intake.search import search_text

    Interaction = apps.get_model("intake", "Interaction")
    rows = Interaction.objects.using(schema_editor.connection.alias).only(
        "pk",
        "patient_identifier",
        "encounter_identifier",
        "patient_name",
        "encounter_title",
    )
    batch = []
    for row in rows.iterator(chunk_size=BATCH):
        row.search_text = search_text(
            patient_identifier=row.patient_identifier,
            encounter_identifier=row.encounter_identifier,
            patient_name=row.patient_name,
            encounter_title=row.encounter_title,
        )
        batch.append(row)
        if len(batch) == BATCH:
            Interaction.objects.bulk_update(batch, ["search_text"])
            batch = []
    if batch:
        Interaction.objects.bulk_update(batch, ["search_text"])


def trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        # pg_trgm is a trusted extension: the database's owner may create it.
        # A role that may not (and no administrator did it first) gets a
        # working search without the index, and is told how to add it.
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        sys.stderr.write(
            f"\nWARNING: the history's search index was not built ({exc}). "
            "Searching works, reading the whole table. To build it, have the "
            "database's owner or a superuser run, in this database: "
            "CREATE EXTENSION IF NOT EXISTS pg_trgm; "
            f"CREATE INDEX {TRIGRAM_INDEX} ON intake_interaction "
            "USING gin (search_text gin_trgm_ops);\n"
        )
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON intake_interaction "
        "USING gin (search_text gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0004_settle_and_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="interaction",
            name="search_text",
            field=models.TextField(
                blank=True, default="", editable=False, verbose_name="search text"
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.RunPython(trigram_index, drop_trigram_index),
    ]
