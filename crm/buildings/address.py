"""Address normalisation: :func:`normalize_address` turns an address as people write it into the
key the register is unique on, so «ул. Ленина, д. 5, к.2», «улица ленина дом 5 корпус 2» and
«Ленина ул, 5 корп. 2» are one building and «5», «5а» and «15» are three.

Steps: «№» dropped; NFKC; casefold; ё → е; a leading postal code dropped; a street type written
after the name («Ленина ул») moved before it; punctuation to spaces (a «/» between digits kept:
«5/1»); the usual abbreviations unified to one spelling (:data:`ABBREVIATIONS`); the words «дом»,
«город» (and «д.», «г.») dropped, the number is the house; a house letter joined to its number
(«5 а», «5-а», «5a» with a Latin a → «5а»); the apartment («кв. 12», «квартира 12») cut off, it is
not part of the building; whitespace collapsed. Pure function, no database."""
from __future__ import annotations

import re
import unicodedata

#: spelling → the one the key uses. A token not listed is kept as is.
ABBREVIATIONS: dict[str, str] = {
    **dict.fromkeys(("ул", "улица"), "ул"),
    **dict.fromkeys(("пр", "пр-т", "прт", "просп", "проспект"), "пр-т"),
    **dict.fromkeys(("пер", "переулок"), "пер"),
    **dict.fromkeys(("пр-д", "прд", "проезд"), "проезд"),
    **dict.fromkeys(("пл", "площадь"), "пл"),
    **dict.fromkeys(("б-р", "бр", "бул", "бульв", "бульвар"), "б-р"),
    **dict.fromkeys(("ш", "шоссе"), "ш"),
    **dict.fromkeys(("наб", "набережная"), "наб"),
    **dict.fromkeys(("туп", "тупик"), "туп"),
    **dict.fromkeys(("мкр", "мкрн", "мкр-н", "микрорайон"), "мкр"),
    **dict.fromkeys(("пос", "поселок", "пгт"), "пос"),
    **dict.fromkeys(("обл", "область"), "обл"),
    **dict.fromkeys(("р-н", "рн", "район"), "р-н"),
    **dict.fromkeys(("корп", "корпус", "к"), "корп"),
    **dict.fromkeys(("стр", "строение", "с"), "стр"),
    **dict.fromkeys(("лит", "литер", "литера"), "лит"),
}
#: words dropped from the key: the house number needs no «дом», the city no «город».
DROPPED = frozenset({"д", "дом", "г", "гор", "город"})
#: the apartment marker: it and what follows are not the building.
APARTMENT = frozenset({"кв", "квартира", "кварт"})
#: street types that may be written after the name («Ленина ул»).
STREET_TYPES = frozenset({"ул", "пр-т", "пер", "проезд", "пл", "б-р", "ш", "наб", "туп"})
#: single letters that are abbreviations when a number follows («к 2», «с 1»), else a house letter.
NUMBERED = frozenset({"к", "с"})
#: Latin letters that look like Cyrillic ones, as typed in house letters («5a»).
_LATIN = str.maketrans({"a": "а", "b": "в", "c": "с", "e": "е", "k": "к", "m": "м", "h": "н", "o": "о",
                        "p": "р", "t": "т", "x": "х", "y": "у"})
_HYPHENATED = re.compile(r"\b(пр-т|пр-д|б-р|р-н|мкр-н)(?![а-яa-z0-9])")
_TOKEN = re.compile(r"\d+(?:/\d+)?|[^\W\d_]+")
_POSTCODE = re.compile(r"^\s*\d{6}\b")


def _tokens(segment: str) -> list[str]:
    """The words of one comma-separated part: hyphenated abbreviations kept whole, digits and letters
    split apart («5а» → «5», «а»; «д5к2» → «д», «5», «к», «2»), «/» kept between digits."""
    out: list[str] = []
    pos = 0
    for m in _HYPHENATED.finditer(segment):
        out += _TOKEN.findall(segment[pos:m.start()])
        out.append(m.group(1))
        pos = m.end()
    out += _TOKEN.findall(segment[pos:])
    return out


def _unify(words: list[str]) -> list[str]:
    """Abbreviations unified, «дом»/«город» dropped, a trailing street type moved to the front."""
    out: list[str] = []
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in NUMBERED and not nxt[:1].isdigit():
            out.append(w)  # a house letter («5 к»), not «корпус»
        elif w in DROPPED:
            continue
        else:
            out.append(ABBREVIATIONS.get(w, w))
    if len(out) > 1 and out[-1] in STREET_TYPES and not any(ch.isdigit() for ch in out[-2]):
        out = [out[-1], *out[:-1]]
    return out


def normalize_address(text: str | None) -> str:
    """The register's key for an address (see the module docstring); "" when nothing is left."""
    text = (text or "").replace("№", " ")
    text = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    text = _POSTCODE.sub(" ", text)
    words: list[str] = []
    for segment in re.split(r"[,;]", text):
        words += _unify(_tokens(segment))
    out: list[str] = []
    for w in words:
        if w in APARTMENT:
            break  # the apartment and what follows are not the building
        if out and out[-1][-1:].isdigit() and len(w) == 1 and w.isalpha():
            out[-1] += w.translate(_LATIN)  # the house letter: «5 а» → «5а»
            continue
        out.append(w)
    return " ".join(out)
