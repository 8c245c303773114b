"""SQLite's index for the history's search: an FTS5 trigram table.

PostgreSQL answers "part of the folded text" from a pg_trgm GIN index
(migration 0005). SQLite has no such index type; its full-text engine has
one: an FTS5 table with the trigram tokenizer finds every row whose text
holds a string of 3 or more characters without reading the table. It is an
external-content table over Interaction.search_text (no second copy of the
text), kept in step by three triggers.

The selector still checks each found row's own text (intake.selectors): a
stale index can miss a row, never show another patient's. Everything here
is idempotent and runs after every `migrate` (intake.apps): Django rebuilds
a SQLite table for some schema changes, which drops its triggers; when any
piece is missing it is made again and the index rebuilt from the table.
`python manage.py rebuild_search_index` rebuilds it by hand.
"""

from __future__ import annotations

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.db.models.expressions import RawSQL

TABLE = "intake_interaction_fts"
#: FTS5's trigram tokenizer indexes strings of 3 characters; a shorter word
#: is checked against the text alone.
SHORTEST = 3

_TRIGGERS = {
    "intake_interaction_fts_insert": """
        CREATE TRIGGER IF NOT EXISTS intake_interaction_fts_insert
        AFTER INSERT ON intake_interaction BEGIN
            INSERT INTO intake_interaction_fts(rowid, search_text)
            VALUES (new.rowid, new.search_text);
        END""",
    "intake_interaction_fts_delete": """
        CREATE TRIGGER IF NOT EXISTS intake_interaction_fts_delete
        AFTER DELETE ON intake_interaction BEGIN
            INSERT INTO intake_interaction_fts(
                intake_interaction_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
        END""",
    "intake_interaction_fts_update": """
        CREATE TRIGGER IF NOT EXISTS intake_interaction_fts_update
        AFTER UPDATE OF search_text ON intake_interaction BEGIN
            INSERT INTO intake_interaction_fts(
                intake_interaction_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
            INSERT INTO intake_interaction_fts(rowid, search_text)
            VALUES (new.rowid, new.search_text);
        END""",
}


def ensure(using: str = "default") -> bool:
    """Make the index and its triggers where any is missing (SQLite only),
    and then fill it from the table. True when something was made."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE name = %s OR name IN (%s, %s, %s)",
            [TABLE, *_TRIGGERS],
        )
        present = {row[0] for row in cursor.fetchall()}
        if present == {TABLE, *_TRIGGERS}:
            return False
        cursor.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS intake_interaction_fts USING fts5("
            "search_text, content='intake_interaction', content_rowid='rowid', "
            "tokenize='trigram')"
        )
        for sql in _TRIGGERS.values():
            cursor.execute(sql)
        _rebuild(connection)
    return True


def rebuild(using: str = "default") -> bool:
    """Fill the index again from the table (SQLite only; after `ensure`)."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return False
    ensure(using)
    _rebuild(connection)
    return True


def _rebuild(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO intake_interaction_fts(intake_interaction_fts) "
            "VALUES ('rebuild')"
        )


def matches(words: list[str], *, vendor: str) -> Q:
    """On SQLite, the rows the index finds for every word of 3 or more
    characters (an empty Q elsewhere, or when no word is that long)."""
    indexed = [word for word in words if len(word) >= SHORTEST]
    if vendor != "sqlite" or not indexed:
        return Q()
    # Each word a quoted string: FTS5's query syntax never reads into it.
    query = " AND ".join('"' + word.replace('"', '""') + '"' for word in indexed)
    # By id, not by the outer row's rowid: the condition reads the same
    # inside a subquery, where Django gives the table another alias.
    return Q(
        pk__in=RawSQL(
            "SELECT id FROM intake_interaction WHERE rowid IN "
            "(SELECT rowid FROM intake_interaction_fts "
            "WHERE intake_interaction_fts MATCH %s)",
            [query],
        )
    )
