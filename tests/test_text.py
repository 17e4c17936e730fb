"""The language cleaners: what the model reads for each kind of transcript."""

from __future__ import annotations

import pytest

from trainer.text import LANGUAGES, describe_character, get_language


@pytest.mark.parametrize("raw, cleaned", [
    ("Hello   World!", "hello world!"),
    ("Mr. Smith met Dr. Jones.", "mister smith met doctor jones."),
    ("It cost $3.50.", "it cost three dollars and fifty cents."),
    ("Born in 1984, she had 2 cats.", "born in nineteen eighty-four, she had two cats."),
    ("The 21st and the 3rd", "the twenty-first and the third"),
    ("1,250 people", "one thousand two hundred fifty people"),
    ("Pi is 3.14", "pi is three point one four"),
    ("45% of it", "forty-five percent of it"),
    ("\u201cQuoted\u201d \u2014 dash\u2026", '"quoted" - dash...'),
    ("No. 5 is here, I said no.", "number five is here, i said no."),
])
def test_english_cleaner(raw: str, cleaned: str) -> None:
    assert get_language("en").clean(raw) == cleaned


@pytest.mark.parametrize("code, raw, cleaned", [
    ("de", "Es sind 21 Äpfel.", "es sind einundzwanzig äpfel."),
    ("de", "Im Jahr 1999", "im jahr eintausendneunhundertneunundneunzig"),
    ("es", "¿Tienes 21 o 135 AÑOS?", "¿tienes veintiuno o ciento treinta y cinco años?"),
    ("es", "Son 100", "son cien"),
    ("fr", "Il a 71 ans et 80 chats", "il a soixante et onze ans et quatre-vingts chats"),
    ("fr", "Les 91 CHIENS", "les quatre-vingt-onze chiens"),
])
def test_other_language_cleaners(code: str, raw: str, cleaned: str) -> None:
    assert get_language(code).clean(raw) == cleaned


def test_alphabets_know_their_letters() -> None:
    assert get_language("en").unknown_characters("café") == [(3, "é")]
    assert get_language("fr").unknown_characters("café") == []
    assert get_language("de").unknown_characters("Straße") == []
    assert get_language("es").unknown_characters("straße") == [(4, "ß")]


def test_ids_are_stable_and_skip_padding() -> None:
    en = get_language("en")
    ids = en.to_ids("ab")
    assert 0 not in ids and ids == [en.symbols.index("a"), en.symbols.index("b")]
    assert set(LANGUAGES) >= {"en", "de", "es", "fr"}


def test_unknown_language_names_the_choices() -> None:
    with pytest.raises(KeyError, match="en, de, es, fr"):
        get_language("xx")


def test_describe_character() -> None:
    assert describe_character("é") == "U+00E9 LATIN SMALL LETTER E WITH ACUTE"
