"""intake.search: folding for matching, and ID prefixes."""

from __future__ import annotations

import uuid

import pytest

from intake.search import fold, id_prefix_range, search_text, words


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Søren Ødegård", "soren odegard"),
        ("SØREN", "soren"),
        ("José Núñez", "jose nunez"),
        ("Jürgen Groß", "jurgen gross"),
        ("Æsa Læsø", "aesa laeso"),
        ("Łukasz Đoković", "lukasz dokovic"),
        ("Þóra Ðórsdóttir", "thora dorsdottir"),
        ("François Œuvre", "francois oeuvre"),
        ("  many\t spaces\n", "many spaces"),
        # Arabic: the vowel marks (harakat) are combining marks.
        ("مُحَمَّد", "محمد"),
        # CJK is kept as it is (full-width forms become ordinary ones).
        ("山田 太郎", "山田 太郎"),
        ("\uff30\uff21\uff34\uff0d\uff11", "pat-1"),  # full-width "PAT-1"
        ("", ""),
        # A mark on a letter spelled out: ǿ is ø with an acute.
        ("Sǿren", "soren"),
        # Hangul syllables and voiced kana stay whole letters.
        ("임", "임"),
        ("バシモト", "バシモト"),
    ],
)
def test_fold(text, folded):
    assert fold(text) == folded


def test_search_text_holds_every_part_folded():
    assert (
        search_text(
            patient_identifier="PAT-Ø1",
            encounter_identifier="ENC-7",
            patient_name="Søren Ødegård",
            encounter_title="",
        )
        == "pat-o1 enc-7 soren odegard"
    )


def test_words_are_folded():
    assert words("  SØREN  jose ") == ["soren", "jose"]


def test_an_id_prefix_is_a_range_of_uuids():
    low, high = id_prefix_range("3F2A-9c")
    assert low == uuid.UUID("3f2a9c00-0000-0000-0000-000000000000")
    assert high == uuid.UUID("3f2a9d00-0000-0000-0000-000000000000")


def test_a_whole_id_is_a_range_of_one():
    key = uuid.uuid4()
    low, high = id_prefix_range(str(key))
    assert low == key
    assert high is not None and high.int == key.int + 1


def test_the_last_prefix_has_no_upper_end():
    low, high = id_prefix_range("ffff")
    assert low == uuid.UUID("ffff0000-0000-0000-0000-000000000000")
    assert high is None


@pytest.mark.parametrize("query", ["abc", "abcg", "", "a" * 33, "enc-1", "1234 5678"])
def test_not_an_id_prefix(query):
    assert id_prefix_range(query) is None


@pytest.mark.parametrize(
    ("query", "name"),
    [("이", "임"), ("이미", "이민"), ("ハシモト", "バシモト"), ("ハ", "パ")],
)
def test_different_letters_never_match(query, name):
    """Found by review: NFKD alone let 이 (Lee) find 임 (Im) and ハシモト
    find バシモト."""
    assert fold(query) not in fold(name)
