"""Fill the history's search index again from the submissions (SQLite).

Migrations keep it by themselves (intake.search_index); this is for a
database file restored or edited with other tools. On PostgreSQL the
trigram index is an ordinary index that PostgreSQL keeps: nothing to do.
"""

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from intake import search_index


class Command(BaseCommand):
    help = "Rebuild the SQLite search index of the history from the submissions."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, database: str = DEFAULT_DB_ALIAS, **options):
        if search_index.rebuild(database):
            self.stdout.write("The search index was rebuilt from the submissions.")
        else:
            self.stdout.write(
                "Nothing to do: this database keeps its search index itself."
            )
