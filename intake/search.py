"""How the history is searched: text folded for matching, and ID prefixes.

A submission keeps one folded copy of what people search it by (its patient
and encounter identifiers, the patient's name, the encounter's title):
lower case in every script (`casefold`), accents and other combining marks
removed (NFKD), and the letters that carry no mark but are still typed
without one (ø, æ, ß, ł, ð, þ, œ, the dotless i) spelled as a keyboard without them
would. A search folds its words the same way; a submission matches when
each word is part of its folded text. "soren", "ØDEGÅRD" and "Søren" all
find "Søren Ødegård"; "jose" finds "José"; Arabic without its vowel marks
finds the name written with them.

Interaction IDs and local record ids are UUIDs: 4 or more hexadecimal
characters (dashes anywhere) are also read as the start of one, searched as
a range on the IDs' own indexes.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

#: Letters NFKD leaves whole, spelled as they are typed without them.
_SPELLED = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ß": "ss",
        "ẞ": "ss",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "\u0131": "i",  # the dotless i
    }
)

#: The shortest ID prefix searched: fewer hex characters match too much.
MIN_ID_PREFIX = 4

_HEX = re.compile(r"[0-9a-f]+")


def fold(text: str) -> str:
    """`text` as it is compared: case, marks and spacing gone."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPELLED))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def search_text(
    *,
    patient_identifier: str,
    encounter_identifier: str,
    patient_name: str,
    encounter_title: str,
) -> str:
    """The folded text a submission is found by (Interaction.search_text)."""
    parts = (patient_identifier, encounter_identifier, patient_name, encounter_title)
    return " ".join(folded for folded in map(fold, parts) if folded)


def words(query: str) -> list[str]:
    """A search's folded words; each must be part of a match's text."""
    return fold(query).split()


def id_prefix_range(query: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """The UUIDs starting with `query`'s hex digits: [low, high), or None.

    None unless `query` is 4 to 32 hexadecimal characters (dashes ignored).
    `high` is None when every UUID from `low` on starts with them (ffff…).
    """
    digits = query.strip().lower().replace("-", "")
    if not (MIN_ID_PREFIX <= len(digits) <= 32) or not _HEX.fullmatch(digits):
        return None
    width = 32 - len(digits)
    low = int(digits, 16) << (4 * width)
    high = (int(digits, 16) + 1) << (4 * width)
    return uuid.UUID(int=low), (uuid.UUID(int=high) if high < 1 << 128 else None)
