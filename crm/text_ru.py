"""Russian text helpers of the core layer: words and their lemmas.

Words are compared through the set of the normal forms of all their pymorphy3 parses, after
lower-casing and ё → е, so word forms match («горячей воды» and «горячая вода», «сказала» and
«сказал») and an ambiguous form (``всего`` → весь / всего) still matches. Used by the automatic QA
checks (``crm.qa.checks``), the transcript search and the knowledge base.
"""
from __future__ import annotations

import re
from functools import cache, lru_cache

import phonenumbers
import pymorphy3

#: A word: letters (Cyrillic or Latin) and digits, hyphenated parts kept together.
WORD = re.compile(r"[а-яёa-z0-9]+(?:-[а-яёa-z0-9]+)*")


@cache
def morph() -> pymorphy3.MorphAnalyzer:
    """The process-wide MorphAnalyzer (loading the dictionaries takes ~0.1 s and some MB)."""
    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=100_000)
def lemmas(word: str) -> frozenset[str]:
    """Every normal form pymorphy3 gives ``word`` (lower-case, ё → е)."""
    return frozenset(p.normal_form.replace("ё", "е") for p in morph().parse(word))


def tokens(text: str | None) -> list[tuple[str, frozenset[str]]]:
    """``[(word, lemmas)]`` of ``text`` in order (words lower-cased, ё → е)."""
    return [(w, lemmas(w)) for w in WORD.findall((text or "").lower().replace("ё", "е"))]


def lemma_tokens(text: str | None) -> list[tuple[int, int, frozenset[str]]]:
    """``[(start, end, lemmas)]`` of the words of ``text`` in order: ``start``/``end`` are character
    offsets into ``text`` itself, ``lemmas`` the normal forms as :func:`tokens` gives them."""
    # lower-case character by character so that offsets stay those of ``text``
    norm = "".join(c.lower() if len(c.lower()) == 1 else c for c in text or "").replace("ё", "е")
    return [(m.start(), m.end(), lemmas(m.group())) for m in WORD.finditer(norm)]


@lru_cache(maxsize=4096)
def pattern(phrase: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """:func:`tokens` of ``phrase`` as a tuple, cached (phrases are matched again and again)."""
    return tuple(tokens(phrase))


def phrase_lemmas(phrase: str) -> tuple[frozenset[str], ...]:
    """The lemma sets of the words of ``phrase``, in order."""
    return tuple(lem for _, lem in pattern(phrase))


def word_count(text: str | None) -> int:
    """How many words ``text`` has."""
    return len(WORD.findall((text or "").lower()))


# --- personal values in free text -------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Addresses. A street type is written abbreviated (ул., пр-т, просп., пер., ш., наб., б-р …) or in full
# in any case form (улица, на улице, по проспекту, в переулке …), before or after the street's name,
# with or without a space after the dot; a house or an apartment by its word and number (д. 5, дом 5,
# в доме 5, кв.12, квартире 12, корп. 2, строение 1). The patterns ask for a name or a number beside
# the word, so ordinary prose («улица не убрана», «к 5 числу», «стр. 2 заявления») is not an address.
_STREET_ABBR = r"ул|пр-т|пр-кт|просп|пер|ш|наб|б-р|бул|пл|мкр|пр-д|туп"
_STREET_WORD = (r"улиц(?:а|ы|е|у|ей|ам|ами|ах)|проспект(?:а|у|ом|е)?|переул(?:ок|ка|ку|ком|ке)|шоссе|"
                r"набережн(?:ая|ой|ую)|бульвар(?:а|у|ом|е)?|площад(?:ь|и|ью)|проезд(?:а|у|ом|е)?|"
                r"микрорайон(?:а|у|ом|е)?|тупик(?:а|у|ом|е)?")
_NAME = r"[А-ЯЁ][а-яё]+(?:-[А-ЯЁа-яё][а-яё]+)?"  # a capitalised word: a street's name («Ленина», «Садовая»)
_ADDRESS = tuple(re.compile(p) for p in (
    # ул. Ленина, ул.Ленина, ш.Энтузиастов, пер. 1-й Лесной, наб. реки Фонтанки
    rf"(?<![а-яёА-ЯЁ-])(?i:{_STREET_ABBR})\.\s*[а-яёА-ЯЁ0-9]",
    # ул Ленина, пр-т Мира 5 (no dot: a capitalised name or a number must follow)
    rf"(?<![а-яёА-ЯЁ-])(?i:{_STREET_ABBR})\s+[А-ЯЁ0-9]",
    # пр. Мира, пр.Ленина («пр.» alone is also «прочее»: only before a name or a number)
    r"(?<![а-яёА-ЯЁ-])пр\.\s*[А-ЯЁ0-9]",
    # Ленина ул., Ленинский пр-т, Ленинградское ш., 5
    rf"{_NAME}\s+(?i:{_STREET_ABBR})(?:\.|(?=[\s,;:)]|$))",
    # улица Ленина, на улице 8 Марта, по проспекту Мира, в переулке им. Гоголя
    rf"(?<![а-яёА-ЯЁ-])(?i:{_STREET_WORD})\s+(?:им\.\s*)?[А-ЯЁ0-9]",
    # Тверская улица, на Садовой улице, Кутузовский проспект
    rf"{_NAME}\s+(?i:{_STREET_WORD})(?![а-яё])",
    # д. 5, дом 5, в доме 5, д.5, кв. 12, кв.№ 12, в квартире 12, кв-ра 5, корп. 2, корпус 2, строение 1
    r"(?<![а-яёА-ЯЁ-])(?i:д|дом|дома|доме|кв|кв-ра|квартир(?:а|ы|е|у|ой)|корп|корпус(?:а|е)?|"
    r"строени(?:е|я|и))\.?\s*№?\s*\d",
    # 5, стр. 1 / 5а стр 2 («стр.» alone is also a page: only after a house number)
    r"\d[а-яё]?\s*,?\s*(?i:стр)\.?\s*\d",
    # по адресу: Садовая, 5; адрес: г. Тверь
    r"(?<![а-яёА-ЯЁ-])(?i:адрес[уеа]?)\s*:?\s*(?:г\.|[А-ЯЁ0-9])",
    # Садовая 5-12, Ленина, 5/2 (a street-like name, then house and apartment)
    rf"(?<![а-яёА-ЯЁ])[А-ЯЁ][а-яё]*(?:ая|яя|ый|ий|ой|ое|ее|ина|ына|ова|ева|ёва|ого)"
    rf",?\s+\d{{1,4}}[а-яё]?\s*[-/]\s*\d{{1,4}}(?![\d-])",
))
_INITIALS = re.compile(r"[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)?\s+[А-ЯЁ]\.\s?[А-ЯЁ]\.|[А-ЯЁ]\.\s?[А-ЯЁ]\.\s?[А-ЯЁ][а-яё]+")
_PATRONYMIC = re.compile(r"[А-ЯЁ][а-яё]+\s+[А-ЯЁ][а-яё]+(?:ович|евич|ьич|ич|овна|евна|ична|инична)(?:а|у|ем|е|ой|ы)?\b")
_DIGITS = re.compile(r"(?<![\d№])(?<!№ )\+?\d[\d\s()\-–]{5,}\d")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b|\b(?:19|20)\d\d\s*[-–]\s*(?:19|20)\d\d\b")


def has_phone(text: str) -> bool:
    """Whether ``text`` holds a telephone number: one ``phonenumbers.PhoneNumberMatcher`` finds as a
    valid number of Russia (any spelling: «8 (912) 345-67-89», «+7.912.345.67.89», «9123456789»),
    or any 7+ digits in a row with separators (a short or foreign number; a date, an ISO date, a
    span of years «2024–2025» or a number after «№» is not one). Errs towards yes: the caller refuses the text."""
    if any(True for _ in phonenumbers.PhoneNumberMatcher(text, "RU", leniency=phonenumbers.Leniency.VALID)):
        return True
    return any(sum(ch.isdigit() for ch in m.group()) >= 7 for m in _DIGITS.finditer(_ISO_DATE.sub(" ", text)))


def has_address(text: str) -> bool:
    """Whether ``text`` holds a street address (see :data:`_ADDRESS`: a street type abbreviated or in
    full, in any case form, before or after the name; a house, apartment, building number)."""
    return any(p.search(text) for p in _ADDRESS)


def personal_values(text: str | None) -> list[str]:
    """Kinds of personal value ``text`` seems to hold, as Russian names in a fixed order (empty when
    none): a telephone number (:func:`has_phone`), an e-mail address, a street address
    (:func:`has_address`: «ул. Ленина, д. 5, кв. 12», «ул.Ленина», «Ленинский пр-т», «на улице
    Ленина», «в доме 5», «квартира 12», «Садовая 5-12» …) and a person's name (a surname with
    initials, «Иванов И. И.», or a first name with a patronymic, «Иван Петрович»).

    Free-text notes on records that outlive the citizen's data (the DPO's request notes, erasure
    reasons, alert comments) must hold none (152-ФЗ ст. 21 ч. 5: the data are destroyed, the record
    stays); the services refuse such a note with a message naming what was found. A heuristic: it
    errs towards refusing, and a refused note is rewritten by its author."""
    if not text:
        return []
    found = []
    if has_phone(text):
        found.append("номер телефона")
    if _EMAIL.search(text):
        found.append("адрес эл. почты")
    if has_address(text):
        found.append("адрес")
    if _INITIALS.search(text) or _PATRONYMIC.search(text):
        found.append("ФИО")
    return found


_CAPITALISED = re.compile(r"(?<![А-ЯЁа-яё])[А-ЯЁ][а-яё]{2,}(?:-[А-ЯЁ][а-яё]+)?")


def capitalised_forms(text: str | None) -> set[str]:
    """The capitalised Cyrillic words of ``text`` (names are among them) lower-cased with ё → е,
    each with its normal forms and its nominative forms: for comparing a note with a surname in any
    grammatical case («заявление Иванова» holds «иванов», «заявление Ивановой» holds «иванова»)."""
    out: set[str] = set()
    for m in _CAPITALISED.finditer(text or ""):
        word = m.group().lower().replace("ё", "е")
        out.add(word)
        out |= lemmas(word)
        for parse in morph().parse(word):  # the nominative keeping the gender: «Ивановой» → «иванова»
            nominative = parse.inflect({"nomn"})
            if nominative is not None:
                out.add(nominative.word.replace("ё", "е"))
    return out
