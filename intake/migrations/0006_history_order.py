"""The history's order, (created_at, id) newest first, in one index.

The list pages by keyset (selectors.interaction_page): each page is a range
of this index from its cursor, whatever the history's size, ties included.
It replaces the index on created_at alone (built first, dropped after); a
second one does the same for one user's submissions ("only mine").
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0005_search_text"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(
                fields=["-created_at", "-id"], name="interaction_history_idx"
            ),
        ),
        # "Only mine", the clinicians' default: one user's rows, newest first.
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(
                fields=["submitted_by", "-created_at", "-id"],
                name="interaction_submitter_idx",
            ),
        ),
        migrations.RemoveIndex(
            model_name="interaction",
            name="interaction_created_idx",
        ),
    ]
