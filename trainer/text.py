"""Per-language alphabets, text cleaners and symbol ids (no torch).

A cleaner turns a transcript into the form the model reads: NFC, lower case,
numbers and (for English) common abbreviations spelled out, quotes and dashes
made plain, whitespace collapsed. Every character left afterwards must be one
of the language's symbols; `unknown_characters` names those that are not.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

PAD = "_"
PUNCTUATION = "!'\"(),-.:;? "

_PUNCTUATION_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "[": "(", "]": ")", "{": "(", "}": ")",
    "\u00a0": " ", "\t": " ", "\u3000": " ",
}

_WHITESPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_DIGITS = re.compile(r"\d+")
#: Longer runs of digits are not said as a number: the dataset check refuses a transcript with one,
#: and the cleaner reads one digit by digit (Python would not even convert 5,000 digits to an int).
MAX_SPOKEN_DIGITS = 30


def long_numbers(text: str) -> list[str]:
    """The runs of digits in `text` longer than MAX_SPOKEN_DIGITS: too long to say as a number."""
    return [run for run in _DIGITS.findall(text) if len(run) > MAX_SPOKEN_DIGITS]


def _sayable(digits: str) -> bool:
    """Whether a run of digits (separators allowed) is short enough to convert and say as a number."""
    return sum(ch.isdigit() for ch in digits) <= 12


def _normalise(text: str) -> str:
    """NFC, plain punctuation, single spaces, no leading/trailing blanks."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(_PUNCTUATION_MAP.get(ch, ch) for ch in text)
    return _WHITESPACE.sub(" ", text).strip()


# --- numbers -----------------------------------------------------------------

_EN_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _en_cardinal(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + ("-" + _EN_ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _EN_ONES[hundreds] + " hundred" + (" " + _en_cardinal(rest) if rest else "")
    for value, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= value:
            high, rest = divmod(n, value)
            return _en_cardinal(high) + " " + name + (" " + _en_cardinal(rest) if rest else "")
    raise AssertionError(n)


def _en_year_or_cardinal(n: int) -> str:
    """Read 1100-1999 and 2010-2099 as years ("nineteen eighty-four"), the rest as cardinals."""
    if 1100 <= n <= 1999 or 2010 <= n <= 2099:
        high, low = divmod(n, 100)
        if low == 0:
            return _en_cardinal(high) + " hundred"
        return _en_cardinal(high) + (" oh " if low < 10 else " ") + _en_cardinal(low)
    return _en_cardinal(n)


_EN_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                         "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _en_ordinal(n: int) -> str:
    words = _en_cardinal(n)
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    head, last = words[:cut], words[cut:]
    if last in _EN_ORDINAL_IRREGULAR:
        last = _EN_ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + last


_DE_ONES = ("null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn "
            "vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn").split()
_DE_TENS = "_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()


def _de_cardinal(n: int) -> str:
    if n < 20:
        return _DE_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        if not ones:
            return _DE_TENS[tens]
        return ("ein" if ones == 1 else _DE_ONES[ones]) + "und" + _DE_TENS[tens]
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "ein" if hundreds == 1 else _DE_ONES[hundreds]
        return head + "hundert" + (_de_cardinal(rest) if rest else "")
    if n < 10**6:
        thousands, rest = divmod(n, 1000)
        head = "ein" if thousands == 1 else _de_cardinal(thousands)
        return head + "tausend" + (_de_cardinal(rest) if rest else "")
    millions, rest = divmod(n, 10**6)
    head = "eine million" if millions == 1 else _de_cardinal(millions) + " millionen"
    return head + (" " + _de_cardinal(rest) if rest else "")


_ES_ONES = ("cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce "
            "quince dieciséis diecisiete dieciocho diecinueve veinte veintiuno veintidós "
            "veintitrés veinticuatro veinticinco veintiséis veintisiete veintiocho "
            "veintinueve").split()
_ES_TENS = "_ _ veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa".split()
_ES_HUNDREDS = ("_ ciento doscientos trescientos cuatrocientos quinientos seiscientos "
                "setecientos ochocientos novecientos").split()


def _es_cardinal(n: int) -> str:
    if n < 30:
        return _ES_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _ES_TENS[tens] + (" y " + _ES_ONES[ones] if ones else "")
    if n < 1000:
        if n == 100:
            return "cien"
        hundreds, rest = divmod(n, 100)
        return _ES_HUNDREDS[hundreds] + (" " + _es_cardinal(rest) if rest else "")
    if n < 10**6:
        thousands, rest = divmod(n, 1000)
        head = "mil" if thousands == 1 else _es_cardinal(thousands) + " mil"
        return head + (" " + _es_cardinal(rest) if rest else "")
    millions, rest = divmod(n, 10**6)
    head = "un millón" if millions == 1 else _es_cardinal(millions) + " millones"
    return head + (" " + _es_cardinal(rest) if rest else "")


_FR_ONES = ("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze "
            "quinze seize dix-sept dix-huit dix-neuf").split()
_FR_TENS = "_ _ vingt trente quarante cinquante soixante _ quatre-vingt _".split()


def _fr_cardinal(n: int) -> str:
    if n < 20:
        return _FR_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        if tens in (7, 9):  # soixante-dix, quatre-vingt-dix: base twenty
            base = _FR_TENS[tens - 1]
            sep = " et " if tens == 7 and ones == 1 else "-"
            return base + sep + _FR_ONES[10 + ones]
        if tens == 8:
            return "quatre-vingts" if not ones else "quatre-vingt-" + _FR_ONES[ones]
        if not ones:
            return _FR_TENS[tens]
        return _FR_TENS[tens] + (" et un" if ones == 1 else "-" + _FR_ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "cent" if hundreds == 1 else _FR_ONES[hundreds] + " cent" + ("" if rest else "s")
        return head + (" " + _fr_cardinal(rest) if rest else "")
    if n < 10**6:
        thousands, rest = divmod(n, 1000)
        head = "mille" if thousands == 1 else _fr_cardinal(thousands) + " mille"
        return head + (" " + _fr_cardinal(rest) if rest else "")
    millions, rest = divmod(n, 10**6)
    head = "un million" if millions == 1 else _fr_cardinal(millions) + " millions"
    return head + (" " + _fr_cardinal(rest) if rest else "")


# --- English specifics ---------------------------------------------------------

_EN_ABBREVIATIONS = [
    (re.compile(rf"\b{abbr}\.", re.IGNORECASE), word)
    for abbr, word in [
        ("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"),
        ("co", "company"), ("jr", "junior"), ("maj", "major"), ("gen", "general"),
        ("drs", "doctors"), ("rev", "reverend"), ("lt", "lieutenant"), ("hon", "honorable"),
        ("sgt", "sergeant"), ("capt", "captain"), ("esq", "esquire"), ("ltd", "limited"),
        ("col", "colonel"), ("ft", "fort"), ("vs", "versus"), ("etc", "et cetera"),
        ("no", "number"),
    ]
]
_EN_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_EN_MONEY = re.compile(r"\$(\d+(?:,\d{3})*)(?:\.(\d{2}))?")
_EN_GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b(?!\.\d)")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +([!),.:;?])")


def _en_money(match: re.Match[str]) -> str:
    if not _sayable(match.group(1)):
        return match.group(1) + " dollars"  # digit by digit, below
    dollars = int(match.group(1).replace(",", ""))
    cents = int(match.group(2) or 0)
    parts = []
    if dollars or not cents:
        parts.append(_en_cardinal(dollars) + (" dollar" if dollars == 1 else " dollars"))
    if cents:
        parts.append(_en_cardinal(cents) + (" cent" if cents == 1 else " cents"))
    return " and ".join(parts)


def _english_pre(text: str) -> str:
    # "no." only before a digit, so "no." at the end of a sentence survives.
    text = re.sub(r"\bno\.\s*(?=\d)", "number ", text, flags=re.IGNORECASE)
    for pattern, word in _EN_ABBREVIATIONS[:-1]:
        text = pattern.sub(word, text)
    text = _EN_MONEY.sub(_en_money, text)
    text = _EN_GROUPED.sub(lambda m: _en_cardinal(int(m.group(0).replace(",", "")))
                           if _sayable(m.group(0)) else m.group(0).replace(",", " "), text)
    text = _EN_ORDINAL.sub(lambda m: _en_ordinal(int(m.group(1))) if _sayable(m.group(1)) else m.group(0), text)
    return text.replace("%", " percent").replace("&", " and ")


# --- languages -------------------------------------------------------------------


@dataclass(frozen=True)
class Language:
    """An alphabet plus the cleaner that maps transcripts into it."""

    code: str
    name: str
    letters: str
    cardinal: object = field(repr=False)
    decimal_word: str = "point"
    extra_punctuation: str = ""

    @property
    def symbols(self) -> list[str]:
        """Every symbol the model knows, in id order; id 0 is padding."""
        return [PAD, *PUNCTUATION, *self.extra_punctuation, *self.letters]

    @property
    def alphabet(self) -> frozenset[str]:
        return frozenset(self.symbols[1:])

    def _number(self, match: re.Match[str]) -> str:
        digits = match.group(0)
        for sep in ".,":
            if sep in digits:
                whole, frac = digits.split(sep)
                frac_words = self._digit_by_digit(frac)
                return f"{self._whole(whole)} {self.decimal_word} {frac_words}"
        return self._whole(digits)

    def _whole(self, digits: str) -> str:
        """A run of digits as words: a number up to 12 digits, digit by digit beyond (never `int()` of
        thousands of digits, which Python refuses)."""
        if len(digits.lstrip("0")) > 12:
            return self._digit_by_digit(digits)
        n = int(digits)
        if self.code == "en":
            return _en_year_or_cardinal(n)
        return self.cardinal(n)  # type: ignore[operator]

    def _digit_by_digit(self, digits: str) -> str:
        return " ".join(self.cardinal(int(d)) for d in digits)  # type: ignore[operator]

    def clean(self, text: str) -> str:
        """The transcript as the model reads it."""
        text = _normalise(text)
        if self.code == "en":
            text = _english_pre(text)
        text = _NUMBER.sub(lambda m: f" {self._number(m)} ", text)
        text = _WHITESPACE.sub(" ", text.lower()).strip()
        return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)

    def unknown_characters(self, text: str) -> list[tuple[int, str]]:
        """(position in the cleaned text, character) for each symbol outside the alphabet."""
        alphabet = self.alphabet
        return [(i, ch) for i, ch in enumerate(self.clean(text)) if ch not in alphabet]

    def last_spoken(self, ids: list[int]) -> int:
        """Index of the last letter among symbol ids: trailing punctuation and spaces make no sound.

        Reading "to the end" means reaching it; a stop there is on time (0 if there is no letter).
        """
        letters = {i for i, s in enumerate(self.symbols) if s in self.letters}
        return next((i for i in range(len(ids) - 1, -1, -1) if ids[i] in letters), 0)

    def to_ids(self, text: str) -> list[int]:
        """Symbol ids of the cleaned text; characters outside the alphabet are dropped."""
        index = {s: i for i, s in enumerate(self.symbols)}
        return [index[ch] for ch in self.clean(text) if ch in index]


_ASCII = "abcdefghijklmnopqrstuvwxyz"

LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", _ASCII, _en_cardinal, "point"),
        Language("de", "German", _ASCII + "äöüß", _de_cardinal, "komma"),
        Language("es", "Spanish", _ASCII + "áéíóúüñ", _es_cardinal, "coma", "¿¡"),
        Language("fr", "French", _ASCII + "àâæçéèêëîïôœùûüÿ", _fr_cardinal, "virgule"),
    )
}


def get_language(code: str) -> Language:
    """The language for a config's `data.language`; KeyError names the choices."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise KeyError(f"unknown language {code!r}; choose one of {', '.join(LANGUAGES)}") from None


def describe_character(ch: str) -> str:
    """`U+00E9 LATIN SMALL LETTER E WITH ACUTE`, the way people look characters up."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED CHARACTER')}"
