"""Russian text helpers of the core layer: words and their lemmas.

Words are compared through the set of the normal forms of all their pymorphy3 parses, after
lower-casing and ё → е, so word forms match («горячей воды» and «горячая вода», «сказала» and
«сказал») and an ambiguous form (``всего`` → весь / всего) still matches. Used by the automatic QA
checks (``crm.qa.checks``), the transcript search and the knowledge base.
"""
from __future__ import annotations

import re
from functools import cache, lru_cache

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
_STREET = re.compile(r"(?<![а-яё])(?:ул|улица|пр-т|просп|проспект|пер|переулок|ш|шоссе|б-р|бул|бульвар|проезд|пл|"
                     r"площадь|наб|набережная|мкр|микрорайон)\.?\s+[а-яё0-9]", re.IGNORECASE)
_HOUSE = re.compile(r"(?<![а-яё])(?:д|дом|кв|квартира|корп|корпус|стр|строение)\.?\s*№?\s*\d", re.IGNORECASE)
_INITIALS = re.compile(r"[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)?\s+[А-ЯЁ]\.\s?[А-ЯЁ]\.|[А-ЯЁ]\.\s?[А-ЯЁ]\.\s?[А-ЯЁ][а-яё]+")
_PATRONYMIC = re.compile(r"[А-ЯЁ][а-яё]+\s+[А-ЯЁ][а-яё]+(?:ович|евич|ьич|ич|овна|евна|ична|инична)(?:а|у|ем|е|ой|ы)?\b")
_DIGITS = re.compile(r"(?<![\d№])(?<!№ )\+?\d[\d\s()\-–]{5,}\d")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b")


def personal_values(text: str | None) -> list[str]:
    """Kinds of personal value ``text`` seems to hold, as Russian names in a fixed order (empty when
    none): a telephone number (7+ digits in a row, separators allowed; a date such as 01.05.2026,
    a law's number or a document number after «№» is not one), an e-mail address, a street address (a street word such as «ул.» or
    a house or apartment number such as «д. 5», «кв. 12») and a person's name (a surname with
    initials, «Иванов И. И.», or a first name with a patronymic, «Иван Петрович»).

    Free-text notes on records that outlive the citizen's data (the DPO's request notes, erasure
    reasons, alert comments) must hold none (152-ФЗ ст. 21 ч. 5: the data are destroyed, the record
    stays); the services refuse such a note with a message naming what was found. A heuristic: it
    errs towards refusing, and a refused note is rewritten by its author."""
    if not text:
        return []
    found = []
    if any(sum(ch.isdigit() for ch in m.group()) >= 7 for m in _DIGITS.finditer(_ISO_DATE.sub(" ", text))):
        found.append("номер телефона")
    if _EMAIL.search(text):
        found.append("адрес эл. почты")
    if _STREET.search(text) or _HOUSE.search(text):
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
