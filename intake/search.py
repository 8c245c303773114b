"""How the history is searched: text folded for matching, and ID prefixes.

A submission keeps one folded copy of what people search it by (its patient
and encounter identifiers, the patient's name, the encounter's title):
lower case in every script (`casefold`), accents removed (NFKD, then NFC
again; the kana voicing marks stay: they make other letters), and the
letters that carry no mark but are still typed without one (ø, æ, ß, ł, ð,
þ, œ, the dotless i) spelled as a keyboard without them would. A search
folds its words the same way; a submission matches when each word is part
of its folded text. "soren", "ØDEGÅRD" and "Søren" all find "Søren
Ødegård"; "jose" finds "José"; Arabic without its vowel marks finds the
name written with them.

Interaction IDs and local record ids are UUIDs: hexadecimal characters
(dashes anywhere) are also read as the start of one, searched as a range on
the IDs' own indexes (intake.selectors.interaction_list says when).
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
#: From this length an ID prefix is searched beside the text: a chance match
#: with another patient's ID is then about one in two billion a row. Shorter
#: ones (a 4-digit identifier, "Ebba" is hex too) only when no text matches,
#: and the page says so (intake.views.interaction_list).
TEXT_AND_ID_PREFIX = 8

_HEX = re.compile(r"[0-9a-f]+")


#: Marks that make another letter, not an accent: the kana voicing marks
#: (ハ, バ and パ are three sounds, three names).
_KEPT_MARKS = frozenset("\u3099\u309a")


def fold(text: str) -> str:
    """`text` as it is compared: case, accents and spacing gone.

    NFKD splits each letter from its marks (and full-width forms into plain
    ones); the accents go, and NFC puts the rest back together, so a Hangul
    syllable or a voiced kana stays one letter (이 never matches part of 임).
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(
        c for c in decomposed if c in _KEPT_MARKS or not unicodedata.combining(c)
    )
    whole = unicodedata.normalize("NFC", bare).translate(_SPELLED)
    return " ".join(whole.casefold().split())


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


def id_prefix_range(
    query: str, *, shortest: int = MIN_ID_PREFIX
) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """The UUIDs starting with `query`'s hex digits: [low, high), or None.

    None unless `query` is `shortest` to 32 hexadecimal characters (dashes
    ignored). `high` is None when every UUID from `low` on starts with them.
    """
    digits = query.strip().lower().replace("-", "")
    if not (shortest <= len(digits) <= 32) or not _HEX.fullmatch(digits):
        return None
    width = 32 - len(digits)
    low = int(digits, 16) << (4 * width)
    high = (int(digits, 16) + 1) << (4 * width)
    return uuid.UUID(int=low), (uuid.UUID(int=high) if high < 1 << 128 else None)
