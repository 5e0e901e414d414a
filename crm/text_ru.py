"""Russian text helpers of the core layer: words and their lemmas.

Words are compared through the set of the normal forms of all their pymorphy3 parses, after
lower-casing and ё → е, so word forms match («горячей воды» and «горячая вода», «сказала» and
«сказал») and an ambiguous form (``всего`` → весь / всего) still matches. Used by the automatic QA
checks (``crm.qa.checks``), the transcript search and the knowledge base.
"""
from __future__ import annotations

import json
import re
from functools import cache, lru_cache

import iuliia
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
# An e-mail address written to get past a filter or as dictated: «ivan (at) mail.ru», «ivan[at]mail.ru»,
# «ivan собака mail ru», «ivan @ mail . ru», «ivan at mail dot ru»: a Latin local part, an «at» in any
# spelling, then domain labels separated by dots, «dot»/«точка» or spaces, ending in a common top-level
# domain (so that ordinary prose with «at» or «собака» is not an address).
_AT = r"(?:@|[(\[{<]\s*(?:at|собака|собачка|эт)\s*[)\]}>]|(?<=\s)(?:at|собака|собачка)(?=\s))"
_DOT = r"(?:\s*\.\s*|\s*[(\[{<]\s*(?:dot|точка)\s*[)\]}>]\s*|\s+(?:dot|точка)\s+|\s+)"
_TLD = r"(?:ru|com|net|org|su|info|biz|io|me|ua|by|kz|uz|рф|online|pro|edu|gov|mail|yandex|gmail)"
_EMAIL_SPELLED = re.compile(rf"(?i)(?<![\w.@])[a-z0-9][a-z0-9._+-]*\s*{_AT}\s*[a-z0-9а-яё][\w-]*(?:{_DOT}[a-z0-9а-яё][\w-]*)*?"
                            rf"{_DOT}{_TLD}(?![\w])")
#: Words that, after a number, make it a count or a time, not a house («Ленина 5» is an address,
#: «первая 3 недели» is not).
_NOT_A_HOUSE = (r"раз|лет|год|дн|ден|сут|недел|месяц|мин|час|сек|руб|р\.|тыс|млн|%|процент|числ|штук|шт\b|человек|"
                r"чел\b|кг\b|км\b|м\b|см\b|мм\b|метр|квадрат|литр|л\b|градус|°|кВт|куб|заяв|обращ|звон|жалоб|раза|пункт|п\.|ст\.|ч\.")
# A street's name in the genitive or as an adjective, then a house number, no street word: «Ленина 5»,
# «Ленина, 5а», «Садовая 12», «Тверской 3 корп 1»; not a count or a time («Петрова 5 раз звонила»).
_NAME_AND_HOUSE = re.compile(
    rf"(?<![А-ЯЁа-яё])[А-ЯЁ][а-яё]*(?:ая|яя|ый|ий|ой|ое|ее|ина|ына|ова|ева|ёва|ого|его|ской|цкой)"
    rf",?\s+(?:д\.?\s*)?\d{{1,4}}(?:\s?[а-яё](?![а-яё]))?(?![\d.,:]\d)(?![\d-])(?!\s*(?i:{_NOT_A_HOUSE}))")
#: Endings of Russian surnames, for a capitalised word the dictionary does not tag as one.
_SURNAME_ENDINGS = ("ов", "ова", "ев", "ева", "ёв", "ёва", "ин", "ина", "ын", "ына", "ский", "ская", "цкий", "цкая",
                    "енко", "ук", "юк", "ых", "их", "ян", "швили", "дзе", "ович", "евич")
# A surname with a single initial: «Петрова М.», «М. Петрова», «Петрова М.И» is covered by _INITIALS.
_ONE_INITIAL = re.compile(r"(?<![А-ЯЁа-яё.])([А-ЯЁ][а-яё]{2,}(?:-[А-ЯЁ][а-яё]+)?)\s+[А-ЯЁ]\.(?!\s?[А-ЯЁ]\.)"
                          r"|(?<![А-ЯЁа-яё.])[А-ЯЁ]\.\s?([А-ЯЁ][а-яё]{2,}(?:-[А-ЯЁ][а-яё]+)?)")


def _surname_with_initial(text: str) -> bool:
    """A surname with one initial before or after it (:data:`_ONE_INITIAL`): the word must be a
    surname by pymorphy3's dictionary or, unknown to it, end like one (:data:`_SURNAME_ENDINGS`);
    «Приложение А.», «Вариант Б.» are no names."""
    for m in _ONE_INITIAL.finditer(text):
        word = (m.group(1) or m.group(2)).lower()
        if "Surn" in name_tags(word):
            return True
        if not morph().word_is_known(word) and word.endswith(_SURNAME_ENDINGS):
            return True
    return False


_INITIALS = re.compile(r"[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)?\s+[А-ЯЁ]\.\s?[А-ЯЁ]\.|[А-ЯЁ]\.\s?[А-ЯЁ]\.\s?[А-ЯЁ][а-яё]+")
_PATRONYMIC = re.compile(r"[А-ЯЁ][а-яё]+\s+[А-ЯЁ][а-яё]+(?:ович|евич|ьич|ич|овна|евна|ична|инична)(?:а|у|ем|е|ой|ы)?\b")
_INITIALS_CAPS = re.compile(r"(?<![А-ЯЁа-яё])[А-ЯЁ]{2,}(?:-[А-ЯЁ]{2,})?\s+[А-ЯЁ]\.\s?[А-ЯЁ]\.")
_DIGITS = re.compile(r"(?<![\d№])(?<!№ )\+?\d[\d\s()\-–]{5,}\d")
#: An appeal's number («2026-000042»: year, hyphen, six digits; crm.appeals.services._next_number) is no phone.
_APPEAL_NUMBER = re.compile(r"(?<![\d+])(?:19|20)\d\d-\d{6}(?![\d-])")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b|\b(?:19|20)\d\d\s*[-–]\s*(?:19|20)\d\d\b")


def has_phone(text: str) -> bool:
    """Whether ``text`` holds a telephone number: one ``phonenumbers.PhoneNumberMatcher`` finds as a
    valid number of Russia (any spelling: «8 (912) 345-67-89», «+7.912.345.67.89», «9123456789»),
    or any 7+ digits in a row with separators (a short or foreign number; a date, an ISO date, a
    span of years «2024–2025», an appeal's number «2026-000042» or a number after «№» is not one). Errs towards yes: the caller refuses the text."""
    if any(True for _ in phonenumbers.PhoneNumberMatcher(text, "RU", leniency=phonenumbers.Leniency.VALID)):
        return True
    plain = _APPEAL_NUMBER.sub(" ", _ISO_DATE.sub(" ", text))
    return any(sum(ch.isdigit() for ch in m.group()) >= 7 for m in _DIGITS.finditer(plain))


def has_address(text: str) -> bool:
    """Whether ``text`` holds a street address (see :data:`_ADDRESS`: a street type abbreviated or in
    full, in any case form, before or after the name; a house, apartment, building number)."""
    return any(p.search(text) for p in _ADDRESS) or bool(_NAME_AND_HOUSE.search(text))


#: Words that say a date is someone's birth date: «дата рождения», «д.р.», «д/р», «г.р.», «года рождения»,
#: «родился», «родилась», «рождённый», «день рождения» …
_BIRTH = re.compile(r"(?<![а-яё])(?:рожд[её]н|рождени|родил(?:ся|ась|ись))[а-яё]*|(?<![а-яё])[дг]\.?\s?[р/]\.?(?:р\.)?(?![а-яё])"
                    r"|(?<![а-яё])[дг]\.\s?р(?![а-яё])", re.IGNORECASE)
_MONTHS = r"(?:январ|феврал|март|апрел|ма[йяю]|июн|июл|август|сентябр|октябр|ноябр|декабр)[а-яё]*"
#: A date or one of its parts: «01.02.1980», «1 февраля 1980», «1 февраля», «1980», «80-го года».
_DATE_PART = re.compile(rf"\b\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}\b|\b\d{{1,2}}\s+{_MONTHS}|(?<!\d)(?:19|20)\d\d(?!\d)"
                        rf"|(?<![а-яё]){_MONTHS}\s+(?:19|20)\d\d", re.IGNORECASE)
#: Words that name an identity document or its parts: «паспорт», «серия», «номер документа», «СНИЛС», «ИНН» …
_DOCUMENT = re.compile(r"(?<![а-яё])(?:паспорт|сери[яиюей]|снилс|инн|полис|водительск|загранпаспорт|свидетельств)[а-яё]*",
                       re.IGNORECASE)
#: How far (characters) from such a word its date or number may stand, words in between («дата рождения —
#: по словам заявителя, 1 февраля 1980 года»; «паспорт: серия 45 10, выдан ОВД …, номер 123456»).
_NEAR = 80


def _birth_date(text: str) -> bool:
    """A birth date: a date or a year near a word that says birth (:data:`_BIRTH`), before or after it."""
    for m in _BIRTH.finditer(text):
        window = text[max(0, m.start() - 30):m.end() + _NEAR]
        if _DATE_PART.search(window):
            return True
    return False


def _document_number(text: str) -> bool:
    """An identity document's number: six or more digits in all (dates left out) near a word that names a
    document (:data:`_DOCUMENT`), in any grouping, with words between the series and the number."""
    for m in _DOCUMENT.finditer(text):
        window = _ISO_DATE.sub(" ", text[m.end():m.end() + _NEAR])
        window = re.sub(r"\b\d{1,2}[./]\d{1,2}[./]\d{2,4}\b", " ", window)  # a date of issue is no number
        if sum(ch.isdigit() for ch in window) >= 6:
            return True
    return False


# --- names in any letter case, Cyrillic or Latin --------------------------------------------------------

#: The standard romanisations of Russian names a note may use (iuliia's schemes): the passport's ICAO Doc
#: 9303 (Приказ МИД № 2113, since 2014), ГОСТ 7.79-2000 system B, BGN/PCGN, the МВД's older passport
#: schemes (Приказ № 310 of 1997, № 782 of 2010), Wikipedia's, the bank cards' (Яндекс.Деньги) and ГОСТ Р 52535.1.
LATIN_SCHEMES = ("ICAO_DOC_9303", "GOST_779_ALT", "BGN_PCGN", "MVD_310", "MVD_782", "WIKIPEDIA", "YANDEX_MONEY",
                 "GOST_52535")
_LATIN_MARKS = re.compile(r"[’'`\"”·]")  # apostrophes and separators the schemes write for ь, ъ, ы; people drop them
_LATIN_WORD = re.compile(r"(?<![A-Za-z])[A-Za-z]+(?:[’'`][A-Za-z]+)*")
_CYR_WORD = re.compile(r"(?<![А-ЯЁа-яё])[А-ЯЁа-яё]+(?:-[А-ЯЁа-яё]+)*")
_VOWELS = "аеёиоуыэюя"
#: Readings Russian spelling rules out: «й» after a consonant or first, «ы» first or after a vowel, «э» after
#: a consonant or «ь», «ь»/«ъ» first or after a vowel, «ъ» not before «е», «ё», «ю», «я», «ь» before «а», «о», «у».
_IMPOSSIBLE = re.compile(rf"(?:^|[^{_VOWELS}])й|(?:^|[{_VOWELS}ьъ])ы|[^{_VOWELS}\-]э|(?:^|[{_VOWELS}ьъй])[ьъ]"
                         rf"|ъ(?![еёюя])|ь[аоуыэ]")
_NAME_TAGS = frozenset({"Name", "Surn", "Patr"})
#: Consonants a «ь» the scheme leaves unwritten may follow in a name («Ильин», «Мальцев», «Гоголь»).
_SOFTENED = "бвдзлмнпрстф"


def _latin(word: str) -> str:
    return _LATIN_MARKS.sub("", word.lower())


@cache
def _reverse(scheme: str):
    """``(schema, {latin chunk: {cyrillic letters}}, longest chunk)`` of one iuliia scheme, from its
    published tables (letters, letters after or before another, endings)."""
    schema = getattr(iuliia, scheme)
    table = json.loads(schema.path.read_text(encoding="utf-8"))
    rev: dict[str, set[str]] = {}
    pairs = [(lat, cyr) for cyr, lat in table.get("mapping", {}).items()]
    pairs += [(lat, key[-1]) for key, lat in (table.get("prev_mapping") or {}).items()]
    pairs += [(lat, key[0]) for key, lat in (table.get("next_mapping") or {}).items()]
    pairs += [(lat, key) for key, lat in (table.get("ending_mapping") or {}).items()]
    for lat, cyr in pairs:
        if _latin(lat):
            rev.setdefault(_latin(lat), set()).add(cyr)
    return schema, rev, max(map(len, rev))


@lru_cache(maxsize=20_000)
def latin_readings(word: str) -> frozenset[str]:
    """The Cyrillic words (lower-case, ё → е) that one of :data:`LATIN_SCHEMES` writes as the Latin
    ``word`` (any case; apostrophes ignored): «Shrederova» → {«шредерова» …}, «Iureva» (ICAO, ь dropped) →
    {«юрьева», «юрева» …}, «Czoj» → {«цой»}. Each candidate is built from the scheme's tables read
    backwards, with at most one «ь» the scheme leaves unwritten (after a consonant of :data:`_SOFTENED`,
    not in the first two letters), and kept only when the scheme
    (iuliia) writes it exactly as ``word`` and Russian spelling allows it; a handful per word."""
    target = _latin(word)
    out: set[str] = set()
    if not target or len(target) > 40:
        return frozenset()
    for scheme in LATIN_SCHEMES:
        schema, rev, longest = _reverse(scheme)
        stack: list[tuple[int, str, bool]] = [(0, "", False)]
        budget = 20_000
        while stack and budget:
            budget -= 1
            pos, cyr, soft = stack.pop()
            if cyr and _IMPOSSIBLE.search(cyr):
                continue
            if pos == len(target) and _latin(schema.translate(cyr)) == target:
                out.add(cyr.replace("ё", "е"))
            for size in range(1, longest + 1):
                for letters in rev.get(target[pos:pos + size], ()):
                    stack.append((pos + size, cyr + letters, soft))
            if len(cyr) >= 2 and not soft and cyr[-1] in _SOFTENED:
                stack.append((pos, cyr + "ь", True))  # a «ь» the scheme (or the writer) left out
    return frozenset(out)


@lru_cache(maxsize=100_000)
def word_forms(word: str, names_only: bool = False) -> frozenset[str]:
    """``word`` (lower-case, ё → е) with its normal forms and its nominative forms keeping the gender
    (pymorphy3): «Ивановой» → {«ивановой», «иванов», «иванова»}; for comparing with a surname.
    ``names_only``: the forms of its parses as a name, surname or patronymic only (for the guessed
    readings of a Latin word, whose other parses are noise)."""
    word = word.lower().replace("ё", "е")
    out = {word}
    for parse in morph().parse(word):
        if names_only and not _NAME_TAGS & parse.tag.grammemes:
            continue
        out.add(parse.normal_form.replace("ё", "е"))
        nominative = parse.inflect({"nomn"})  # the nominative keeping the gender: «Ивановой» → «иванова»
        if nominative is not None:
            out.add(nominative.word.replace("ё", "е"))
    return frozenset(out)


@lru_cache(maxsize=100_000)
def name_tags(word: str) -> frozenset[str]:
    """Which of ``Name`` (a first name), ``Surn`` (a surname), ``Patr`` (a patronymic) pymorphy3's
    parses of the Cyrillic ``word`` (any case) carry."""
    return frozenset(_NAME_TAGS & set().union(*(p.tag.grammemes for p in morph().parse(word.lower()))))


def _may_be_name(word: str) -> bool:
    """A lower-case word worth comparing with a surname: a name by pymorphy3's dictionary, or a word
    the dictionary does not know (most surnames)."""
    return bool(name_tags(word)) or not morph().word_is_known(word)


def name_forms(text: str | None) -> set[str]:
    """The forms (:func:`word_forms`) of every word of ``text`` that could be a person's name, for comparing
    a note with a citizen's surname: Cyrillic words of three letters or more written capitalised or in
    capitals («Иванову», «ИВАНОВУ»), lower-case ones a name or unknown to the dictionary («иванову»,
    «шредеровой»), and the Cyrillic readings of Latin words (:func:`latin_readings`: «Ivanovu», «SHREDEROVA»)."""
    out: set[str] = set()
    text = text or ""
    for m in _CYR_WORD.finditer(text):
        word = m.group()
        if len(word) < 3:
            continue
        if word[0].isupper() or _may_be_name(word.lower()):
            out |= word_forms(word)
    for m in _LATIN_WORD.finditer(text):
        if len(_latin(m.group())) >= 3:
            for reading in latin_readings(m.group()):
                out |= word_forms(reading, names_only=True)
    return out


def _full_name(text: str) -> bool:
    """Two names side by side, capitalised or in capitals, Cyrillic or Latin: a first name and a surname
    or a patronymic in either order («Иван Петров», «ПЕТРОВ ИВАН», «Ivan Petrov»). The first name must
    be one pymorphy3's dictionary knows as such."""
    words: list[tuple[int, int, frozenset[str], bool]] = []  # start, end, tags, known first name
    for m in _CYR_WORD.finditer(text):
        word = m.group()
        if len(word) >= 2 and word[0].isupper():
            tags = name_tags(word)
            words.append((m.start(), m.end(), tags, "Name" in tags and morph().word_is_known(word.lower())))
    for m in _LATIN_WORD.finditer(text):
        word = m.group()
        if len(word) >= 2 and word[0].isupper():
            readings = latin_readings(word)
            tags = frozenset().union(*(name_tags(r) for r in readings)) if readings else frozenset()
            known = any("Name" in name_tags(r) and morph().word_is_known(r) for r in readings)
            words.append((m.start(), m.end(), tags, known))
    words.sort()
    for (_, end, tags_a, first_a), (start, _, tags_b, first_b) in zip(words, words[1:]):
        if text[end:start].strip():
            continue  # not side by side
        if (first_a and tags_b & {"Surn", "Patr"}) or (first_b and tags_a & {"Surn", "Patr"}):
            return True
    return False


def personal_values(text: str | None) -> list[str]:
    """Kinds of personal value ``text`` seems to hold, as Russian names in a fixed order (empty when
    none): a telephone number (:func:`has_phone`; an appeal's number «2026-000042» is none), an e-mail
    address (also spelled out: «ivan (at) mail.ru», «ivan собака mail ru»), a street address
    (:func:`has_address`: «ул. Ленина, д. 5, кв. 12», «ул.Ленина», «Ленинский пр-т», «на улице Ленина»,
    «в доме 5», «квартира 12», «Садовая 5-12», «Ленина 5» …), a person's name (a surname with initials,
    «Иванов И. И.», «ИВАНОВ И.И.», or one initial, «Петрова М.», «М. Петрова»; a first name with a patronymic or a surname, in either
    order, capitalised or in capitals, Cyrillic or Latin: «Иван Петрович», «Иван Петров», «ПЕТРОВ ИВАН»,
    «Ivan Petrov»), a date of birth (a date or a year near «дата рождения», «г.р.», «родился» …, words
    between them allowed) and an identity document's number (six digits or more near «паспорт»,
    «серия», «СНИЛС», «ИНН» …, in any grouping and with words between the series and the number).

    Free-text notes on records that outlive the citizen's data (the DPO's request notes, erasure
    reasons, alert comments) must hold none (152-ФЗ ст. 21 ч. 5: the data are destroyed, the record
    stays); the services refuse such a note with a message naming what was found. A heuristic: it
    errs towards refusing, and a refused note is rewritten by its author. The citizen's own surname
    in any case and spelling is checked by :func:`crm.citizens.services.named_in`."""
    if not text:
        return []
    found = []
    if has_phone(text):
        found.append("номер телефона")
    if _EMAIL.search(text) or _EMAIL_SPELLED.search(text):
        found.append("адрес эл. почты")
    if has_address(text):
        found.append("адрес")
    if (_INITIALS.search(text) or _INITIALS_CAPS.search(text) or _PATRONYMIC.search(text) or _full_name(text)
            or _surname_with_initial(text)):
        found.append("ФИО")
    if _birth_date(text):
        found.append("дата рождения")
    if _document_number(text):
        found.append("номер документа")
    return found


_CAPITALISED = re.compile(r"(?<![А-ЯЁа-яё])[А-ЯЁ][а-яё]{2,}(?:-[А-ЯЁ][а-яё]+)?")


def capitalised_forms(text: str | None) -> set[str]:
    """The capitalised Cyrillic words of ``text`` (names are among them) lower-cased with ё → е,
    each with its normal forms and its nominative forms (:func:`word_forms`): «заявление Иванова»
    holds «иванов», «заявление Ивановой» holds «иванова». :func:`name_forms` also takes words in
    capitals, lower-case and Latin."""
    out: set[str] = set()
    for m in _CAPITALISED.finditer(text or ""):
        out |= word_forms(m.group())
    return out


# --- spans of the citizen's identifiers in a transcript (masking for quality control) ----------------

#: Labels a masked span is shown with (issue 18: QA roles see «[телефон]», «[адрес]» …).
MASK_LABELS = {"phone": "[телефон]", "email": "[e-mail]", "address": "[адрес]", "name": "[имя]"}
_MASK_PRIORITY = ("email", "phone", "address", "name")

_SPOKEN_EMAIL = re.compile(r"(?i)(?<![\w.+-])[\w.+-]+\s+(?:собака|собачка)\s+[\w-]+(?:\s+(?:точка|dot)\s+[\w-]+)+")
_HOUSE_PART = re.compile(
    r"(?<![а-яёА-ЯЁ-])(?i:дом|доме|дома|д\.|корпус[а-яё]*|корп\.|строени[а-яё]*|стр\.|квартир[а-яё]*|кв-ра|кв\.?|"
    r"подъезд[а-яё]*)\s*(?i:номер\s+)?№?\s*\d+[а-яё]?(?:\s*[/-]\s*\d+[а-яё]?)?(?![\d])")
#: A house number (and apartment) written right after a street: «Садовой улице, 5-12», «Ленина 5».
_HOUSE_TAIL = r"(?:,?\s+\d{1,4}[а-яё]?(?:\s*[-/]\s*\d{1,4}[а-яё]?)?(?!\d))?"
_STREET_SPAN = (
    # улица Ленина, на улице 8 Марта, по проспекту Мира, ул. Ленина, пр-т Мира, пер. 1-й Лесной
    re.compile(rf"(?<![а-яёА-ЯЁ-])(?:(?i:{_STREET_WORD})|(?i:{_STREET_ABBR})\.?|пр\.)\s*(?:им\.\s*)?"
               rf"(?:\d+(?:-[а-яё]+)?\s+)?[А-ЯЁ][а-яё]+(?:[- ][А-ЯЁ][а-яё]+)?{_HOUSE_TAIL}"),
    # Тверская улица, на Садовой улице, Ленинский пр-т
    re.compile(rf"{_NAME}\s+(?:(?i:{_STREET_WORD})(?![а-яё])|(?i:{_STREET_ABBR})(?:\.|(?=[\s,;:)]|$))){_HOUSE_TAIL}"),
    # Садовая 5-12, Ленина, 5/2
    re.compile(rf"(?<![а-яёА-ЯЁ])[А-ЯЁ][а-яё]*(?:ая|яя|ый|ий|ой|ое|ее|ина|ына|ова|ева|ёва|ого)"
               rf",?\s+\d{{1,4}}[а-яё]?\s*[-/]\s*\d{{1,4}}(?![\d-])"),
)
#: A street type said in full in any case form, abbreviated without a dot, or as Whisper mishears it
#: («распект», «праспект», «пиреулок»); matched against a whole lower-cased word (ё → е).
_STREET_TYPE = re.compile(
    r"ул[иі]ц(?:а|ы|е|у|ей|ам|ами|ах)|п?р[оаеиы]сп[еэи]к?т(?:а|у|ом|е|ы|ов|ами|ах)?|"
    r"п[еи]р[еи]ул(?:ок|ка|ку|ком|ке|ки|ков|кам|ках)|ш[оа]сс[еэ]|набережн(?:ая|ой|ую)|"
    r"б[уо]львар(?:а|у|ом|е|ы|ов)?|площад(?:ь|и|ью)|пр[оа]езд(?:а|у|ом|е)?|микрорайон(?:а|у|ом|е)?|"
    r"тупик(?:а|у|ом|е)?|алле(?:я|и|ю|ей)|ул|пр-т|пр-кт|просп|б-р")
#: The tails of street types as Whisper mishears their heads («вспект», «спект», «праспект» for
#: «проспект»; «реулок» for «переулок»; «бульва», «плошадь», «шосе», «микрайон» …): up to three letters
#: of anything, then the tail, in any case ending. Only for a word the dictionary does not know
#: (:func:`_street_type`), so «аспект», «респект», «конспект», «перспектива» stay words.
_MISHEARD_TYPE = re.compile(
    r"[а-я]{0,3}сп[еэиа]к?т(?:а|у|ом|е|ы|ов|ами|ах)?|[а-я]{0,3}р[еи]ул[оа]?[кг](?:а|у|ом|е|и|ов|ам|ах)?|"
    r"[а-я]{0,2}ш[оа]с[еэ]|[а-я]{0,3}[лл]?ьв[ао]р?(?:а|у|ом|е|ы|ов)?|[а-я]{0,2}л[оа][шщ]ад(?:ь|и|ью)|"
    r"[а-я]{0,3}бережн(?:ая|ой|ую|я)|[а-я]{0,4}р?айон(?:а|у|ом|е)?|[а-я]{0,2}л[иі]ц(?:а|ы|е|у|ей)")


def _street_type(word: str) -> bool:
    """Whether the lower-cased word (ё → е) is a street type (:data:`_STREET_TYPE`), or a word the
    dictionary does not know that ends like one misheard (:data:`_MISHEARD_TYPE`)."""
    if _STREET_TYPE.fullmatch(word):
        return True
    return len(word) >= 4 and bool(_MISHEARD_TYPE.fullmatch(word)) and not morph().word_is_known(word)


#: An apartment's word after which any word is taken for its number (a misheard «семнадцать» comes out
#: «семинации»); the abbreviation «кв.» only before a number («кв. м» is square metres).
_FLAT_WORD = re.compile(r"квартир(?:а|ы|е|у|ой)|кв-ра")
#: Parts of speech that are no apartment's number after «квартира» («квартира затоплена», «в квартире
#: холодно», «квартира моя», «квартиры в доме»).
_NOT_A_FLAT_NUMBER = frozenset({"VERB", "INFN", "PRTF", "PRTS", "GRND", "ADVB", "PRED", "PREP", "CONJ", "PRCL",
                                "NPRO", "INTJ", "ADJS", "COMP", "Apro"})
_ADDR_TOKEN = re.compile(r"[А-ЯЁа-яёA-Za-z0-9]+(?:-[А-ЯЁа-яёA-Za-z0-9]+)*")
_SIDE_BY_SIDE = re.compile(r"\s+|\.\s*")  # words next to each other (an abbreviation's dot allowed)
#: A house number after a street's name: «, 5», « 5-12», «, дом 5», « д. 5а» (not a count: «3 дня»).
_HOUSE_AFTER = re.compile(
    rf"[\s,]*(?:(?i:д\.?|дом[а-яё]*)\s*(?i:номер\s+)?№?\s*)?\d{{1,4}}[а-яё]?(?![а-яё])(?:\s*[-/]\s*\d{{1,4}}[а-яё]?)?"
    rf"(?!\d)(?!\s*(?i:{_NOT_A_HOUSE}))")


#: A number said before the word for a flat (issue 18: «12 квартира» when no flat is on file): «12 квартира»,
#: «в 12 квартире», «12-я квартира», «12 кв»; not square metres («54 кв. м», «54 кв.м») nor a count of
#: flats («12 квартир», «3 квартиры», «в 12 квартирах»; «квартиры» after 2–4 is a count, :func:`_flat_before_word`).
_FLAT_BEFORE_WORD = re.compile(
    r"(?<![\w.,:/-])(\d{1,4})[а-яё]?(?:-?(?:я|й|ая|ой|ую|ей))?\s+(?i:(квартир(?:а|у|е|ой|ы)|кв-р[аеуы]|кв\.?))"
    r"(?![а-яё-])(?!\s*\.?\s*(?i:м(?![а-яё])|метр))")
#: A bare number right after an address that ends in a house number: the flat («Садовая 5 12», «лесной 7
#: 12», «дом 5, 12»), unless a count, a time or a date follows or it goes on as another number
#: («… 5 3 раза», «… 5 12 часов», «… 5 12:30», «… 5 2026-000012»); see :func:`_flat_after_house`.
_BARE_FLAT = re.compile(rf"[\s,]+\d{{1,4}}[а-яё]?(?![а-яё\d])(?![.,:/-]\d)(?!-)(?!\s*(?i:{_NOT_A_HOUSE}))")
_ENDS_IN_HOUSE = re.compile(r"[А-ЯЁа-яё].*(?<![-/\d])(?<![-/]\s)\d{1,4}[а-яё]?$", re.S)
_HAS_FLAT = re.compile(r"(?i)квартир|кв(?![а-яё])")
#: Parts of speech of the word after a number that make the number a count, not a flat: «5 12 января»,
#: «5 2 трубы», «5 10 рабочих дней».
_COUNTED = ("NOUN", "ADJF", "PRTF", "NUMR")


def _flat_before_word(text: str) -> list[tuple[int, int, str]]:
    """Spans of a flat's number said before «квартира» (:data:`_FLAT_BEFORE_WORD`)."""
    out = []
    for m in _FLAT_BEFORE_WORD.finditer(text):
        n = int(m.group(1))
        if m.group(2).lower() == "квартиры" and n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
            continue  # «3 квартиры»: a count
        out.append((m.start(), m.end(), "address"))
    return out


def _flat_after_house(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Each address span of ``spans`` (merged, in order) that ends in a house number and names no flat,
    extended over a bare number after it (:data:`_BARE_FLAT`, issue 18: «Садовая 5 12»): when the number
    touches no other span and the next word, if any, is no noun, adjective or numeral it would count
    (:data:`_COUNTED`; a capitalised word is a name or a new sentence, not counted)."""
    out = []
    for idx, (a, b, kind) in enumerate(spans):
        said = text[a:b]
        if kind != "address" or not _ENDS_IN_HOUSE.search(said) or _HAS_FLAT.search(said):
            continue
        m = _BARE_FLAT.match(text, b)
        if m is None or (idx + 1 < len(spans) and spans[idx + 1][0] < m.end()):
            continue
        nxt = re.match(r" +([а-яё]+)(?![\w-])", text[m.end():])
        if nxt and any(g in morph().parse(nxt.group(1).replace("ё", "е"))[0].tag for g in _COUNTED):
            continue
        out.append((a, m.end(), "address"))
    return out


class StreetNames:
    """The street names of the buildings register (lower-case, without the street type: «садовая»,
    «мира», «малый каретный»), prepared for :func:`personal_spans`: each word as the set of its lemmas,
    so «на садовой», «проспекта Мира» match."""

    def __init__(self, names):
        self.by_first: dict[str, list[tuple[frozenset[str], ...]]] = {}
        for name in names:
            words = tuple(_word_key(w) for w in WORD.findall(str(name).lower().replace("ё", "е")))
            if words:
                for lem in words[0]:
                    self.by_first.setdefault(lem, []).append(words)
        for lst in self.by_first.values():
            lst.sort(key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.by_first)

    def match(self, keys: list[frozenset[str]], j: int, joined) -> int | None:
        """The end (exclusive) of the longest register name starting at word ``j`` of ``keys`` (each
        word's :func:`_word_key`), words side by side (``joined(k)``: word ``k`` follows ``k - 1``
        with only spaces between), or None."""
        best = None
        for lem in keys[j]:
            for name in self.by_first.get(lem, ()):
                k = j + len(name)
                if k <= len(keys) and (best is None or k > best) and all(
                        keys[j + x] & name[x] and (x == 0 or joined(j + x)) for x in range(len(name))):
                    best = k
        return best


def _word_key(word: str) -> frozenset[str]:
    """A lower-case word as compared with a register's street name: its lemmas, a number as itself."""
    return frozenset({word}) if word[:1].isdigit() else lemmas(word) | {word}


@lru_cache(maxsize=8)
def street_names(names: tuple[str, ...]) -> StreetNames:
    """:class:`StreetNames` of ``names`` (cached: the register's names change seldom)."""
    return StreetNames(names)


def _agrees(adjective: str, street_type: str) -> bool:
    """Whether the adjective can be the street type's name: the same case, and the same gender in the
    singular («улица садовая», «на улице садовой», «на проспекте лесном»; not «на улице холодная погода»).
    A street type the dictionary does not know (misheard: «распект») agrees with any adjective."""
    if not morph().word_is_known(street_type):
        return True
    nouns = [p.tag for p in morph().parse(street_type) if "NOUN" in p.tag]
    for a in morph().parse(adjective):
        if "ADJF" not in a.tag or "Apro" in a.tag:
            continue
        for n in nouns:
            same_case = a.tag.case == n.case or "Fixd" in n
            if same_case and (a.tag.number == "plur" or a.tag.gender == n.gender or n.gender is None):
                return True
    return False


def _name_like(word: str, street_type: str) -> bool:
    """A word after the street type ``street_type`` (lower case) that may be the street's name:
    capitalised, a number, an adjective agreeing with it (:func:`_agrees`: «садовая», «лесном»), a name
    or surname, or a word the dictionary does not know."""
    if word[:1].isupper() or word[:1].isdigit():
        return True
    low = word.lower().replace("ё", "е")
    if len(low) < 3:
        return False
    parse = morph().parse(low)[0]
    if "ADJF" in parse.tag and "Apro" not in parse.tag:
        return _agrees(low, street_type)
    return bool(name_tags(low)) or not morph().word_is_known(low)


def _flat_number_like(word: str) -> bool:
    """A word after «квартира» that may be its number, misheard or not (see :data:`_NOT_A_FLAT_NUMBER`)."""
    if word[:1].isdigit():
        return True
    tag = morph().parse(word.lower().replace("ё", "е"))[0].tag
    return not any(g in tag for g in _NOT_A_FLAT_NUMBER)


#: What Whisper writes between «квартира» and its number when the speaker pauses: «квартира, семинации».
_PAUSE = re.compile(r"\s*(?:[,;:]|\.\.\.|…|\s[—–-])\s*")


def _flat_number_after_pause(text: str, toks: list[re.Match], j: int) -> bool:
    """Whether word ``j`` of ``toks``, after «квартира» and a comma or a dash (:data:`_PAUSE`), is the
    flat's number rather than a new clause: a number not counting what follows it («квартира, 17»;
    not «квартира, 12 квартир в доме»: :data:`_COUNTED`, :data:`_NOT_A_HOUSE`), a numeral, or a word the
    dictionary does not know (a misheard number: «квартира, семинации»); a word it knows starts a clause
    («квартира, вода течёт»)."""
    word = toks[j].group().lower().replace("ё", "е")
    if word[:1].isdigit():
        rest = text[toks[j].end():]
        if re.match(rf"\s*(?:{_NOT_A_HOUSE})", rest, re.I) or re.match(r"[.,:/-]\d", rest):
            return False
        nxt = re.match(r" +([а-яё]+)(?![\w-])", rest.lower())
        return not (nxt and any(g in morph().parse(nxt.group(1).replace("ё", "е"))[0].tag for g in _COUNTED))
    if not word.isalpha():
        return False
    return not morph().word_is_known(word) or "NUMR" in morph().parse(word)[0].tag


def _street_spans(text: str, streets: StreetNames | None) -> list[tuple[int, int, str]]:
    """Addresses said the way a transcript writes them, lower case and misheard words included:

    * a street type (:func:`_street_type`: «улица», «распект», «вспект», «пр-т» …) with the street's name after
      it — a name of the register (``streets``), a capitalised or unknown word, an adjective, a
      number and a word («8 марта») — or any one to three words when a house number follows
      («распект мира, дом 12»), the house number kept with it;
    * a register name before a street type («на садовой улице») or before a house number
      («садовая 5», «садовой, дом 5»);
    * «квартира» followed by any word that may be its number (:func:`_flat_number_like`:
      «квартира семинации», «квартира номер 17»), or, after a comma or a dash Whisper put there, by a
      number, a numeral or a word the dictionary does not know (:func:`_flat_number_after_pause`:
      «квартира, семинации», «квартира, 17»; not «квартира, 12 квартир в доме», «квартира, вода течёт»).
    """
    toks = list(_ADDR_TOKEN.finditer(text))
    if not toks:
        return []
    low = [t.group().lower().replace("ё", "е") for t in toks]
    keys = [_word_key(w) for w in low] if streets else []
    n = len(toks)

    def joined(k: int) -> bool:
        return 0 < k < n and bool(_SIDE_BY_SIDE.fullmatch(text[toks[k - 1].end():toks[k].start()]))

    def punctuated(k: int) -> bool:
        """Word ``k`` follows ``k - 1`` after a comma, semicolon, colon or dash Whisper put between them."""
        return 0 < k < n and bool(_PAUSE.fullmatch(text[toks[k - 1].end():toks[k].start()]))

    def house_end(k: int) -> int:
        """Where the name ending at word ``k - 1`` ends, with the house number that follows it."""
        m = _HOUSE_AFTER.match(text, toks[k - 1].end())
        return m.end() if m else toks[k - 1].end()

    spans: list[tuple[int, int, str]] = []
    for i in range(n):
        w = low[i]
        if _street_type(w):
            # the name after the street type
            j = i + 1
            if j < n and joined(j) and low[j] == "им":
                j += 1
            end = None
            if j < n and joined(j):
                end = streets.match(keys, j, joined) if streets else None
                if end is None:
                    k = j
                    if low[k][:1].isdigit() and k + 1 < n and joined(k + 1) and not low[k + 1][:1].isdigit():
                        k += 1  # «8 марта», «1-й лесной»
                    if _name_like(toks[k].group(), w):
                        end = k + 1
                        while end < n and end - j < 3 and joined(end) and toks[end].group()[:1].isupper():
                            end += 1  # «Малый Каретный»
                if end is None:  # any words, then a house number: «распект мира, дом 12»
                    for k in range(j, min(j + 3, n)):
                        if k > j and not joined(k):
                            break
                        if _HOUSE_AFTER.match(text, toks[k].end()):
                            end = k + 1
                            break
            if end is not None:
                spans.append((toks[i].start(), house_end(end), "address"))
            # a register name before it: «на садовой улице», «Мира проспект»
            if streets and i > 0 and joined(i):
                for j in range(max(0, i - 3), i):
                    if streets.match(keys, j, joined) == i:
                        spans.append((toks[j].start(), toks[i].end(), "address"))
                        break
        elif streets:
            end = streets.match(keys, i, joined)
            if end is not None and _HOUSE_AFTER.match(text, toks[end - 1].end()):
                spans.append((toks[i].start(), house_end(end), "address"))  # «садовая 5», «садовой, дом 5»
        if _FLAT_WORD.fullmatch(w) and i + 1 < n and (joined(i + 1) or punctuated(i + 1)):
            j = i + 1
            if low[j] == "номер" and j + 1 < n and (joined(j + 1) or punctuated(j + 1)):
                j += 1
            if (_flat_number_like(toks[j].group()) if joined(i + 1) and joined(j)
                    else _flat_number_after_pause(text, toks, j)):
                spans.append((toks[i].start(), toks[j].end(), "address"))
    return spans


#: Words after which the citizen says their name: «меня зовут …», «моя фамилия …», «отчество …»; or
#: the operator says it back: «вас зовут …», «ваша фамилия …», «как к вам обращаться, …».
_NAME_CUE = re.compile(r"(?i)(?<![а-яё])(?:меня\s+зовут|зовут|(?:моя\s+|ваша\s+)?фамилия"
                       r"|(?:мо[её]\s+|ваше\s+)?(?:имя|отчество)|на\s+имя|как\s+(?:к\s+)?вам\s+обращаться)"
                       r"(?:\s*[:—,-])?\s+")
#: Before «зовут»: a name that follows is not the speaker's own («как вас зовут», «вас зовут …»).
_ASKED = re.compile(r"(?i)(?<![а-яё])(?:вас|тебя|его|ее|её)\s+$")
_OPERATOR_WORD = re.compile(r"(?i)(?<![а-яё])(?:оператор[а-яё]*|меня\s+зовут|зовут)[\s,:—-]*$")
_CUE_WORD = re.compile(r"[А-ЯЁа-яё]+(?:-[А-ЯЁа-яё]+)?")
#: Right before the operator's own name: «оператор Мария», «оператор — Мария» (any line not the citizen's).
_AFTER_OPERATOR = re.compile(r"(?i)(?<![а-яё])оператор[а-яё]*[\s,:—-]*$")
#: Right before a speaker's own name: «меня зовут Мария» (the operator's line only: in a mono call it may be the citizen).
_AFTER_MY_NAME = re.compile(r"(?i)(?<![а-яё])меня\s+зовут[\s,:—-]*$")


def _merge_spans(spans: list[tuple[int, int, str]], glue: re.Pattern | None = None,
                 text: str = "") -> list[tuple[int, int, str]]:
    """Overlapping spans (and, with ``glue``, spans of the same kind separated only by text it matches
    whole) merged into one, the kind of the higher :data:`_MASK_PRIORITY` kept."""
    out: list[list] = []
    for a, b, kind in sorted(spans):
        if out and (a < out[-1][1] or (glue is not None and kind == out[-1][2] == "address"
                                       and glue.fullmatch(text[out[-1][1]:a]))):
            prev = out[-1]
            prev[1] = max(prev[1], b)
            if _MASK_PRIORITY.index(kind) < _MASK_PRIORITY.index(prev[2]):
                prev[2] = kind
        else:
            out.append([a, b, kind])
    return [(a, b, k) for a, b, k in out]


def _blank(text: str, pattern: re.Pattern) -> str:
    """``text`` with the matches of ``pattern`` turned into spaces (offsets kept)."""
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _phone_spans(text: str) -> list[tuple[int, int, str]]:
    spans = [(m.start, m.end, "phone") for m in
             phonenumbers.PhoneNumberMatcher(text, "RU", leniency=phonenumbers.Leniency.VALID)]
    plain = _blank(_blank(text, _ISO_DATE), _APPEAL_NUMBER)
    for m in _DIGITS.finditer(plain):
        if sum(ch.isdigit() for ch in m.group()) >= 7:
            spans.append((m.start(), m.end(), "phone"))
    return spans


_RU_LETTERS = "абвгдежзийклмнопрстуфхцчшщъыьэюя"
#: Who the operator says will come or call back, the nouns that start a sentence of the operator's
#: («Мастер свяжется с вами», «Диспетчер перезвонит») and that Whisper mishears into words the dictionary
#: does not know («Маттер», «Диспечер»); a mono call's line so capitalised is no citizen's name.
_STAFF_NOUNS = ("мастер", "диспетчер", "сантехник", "электрик", "слесарь", "бригада", "инженер", "техник",
                "дворник", "специалист", "сотрудник", "оператор", "аварийка", "монтёр", "электромонтёр")


@cache
def _staff_forms() -> frozenset[str]:
    """Every form of :data:`_STAFF_NOUNS` (lower-case, ё → е): «мастер», «мастера», «мастеру» …"""
    out = set()
    for noun in _STAFF_NOUNS:
        parse = next(p for p in morph().parse(noun) if "NOUN" in p.tag)
        out |= {f.word.replace("ё", "е") for f in parse.lexeme}
    return frozenset(out)


def _one_edit(word: str) -> set[str]:
    """The words one letter substituted, dropped, added or two neighbours swapped away from ``word``."""
    out = set()
    for i in range(len(word) + 1):
        head, tail = word[:i], word[i:]
        if tail:
            out.add(head + tail[1:])
            out.update(head + c + tail[1:] for c in _RU_LETTERS if c != tail[0])
            if len(tail) > 1:
                out.add(head + tail[1] + tail[0] + tail[2:])
        out.update(head + c + tail for c in _RU_LETTERS)
    return out


@lru_cache(maxsize=20_000)
def _misheard_staff_noun(word: str) -> bool:
    """Whether the lower-case ``word`` (ё → е), which pymorphy3's dictionary does not know, is one of
    :data:`_STAFF_NOUNS` misheard: five letters or more, no surname's ending (:data:`_SURNAME_ENDINGS`),
    and one letter substituted, dropped, added or two swapped away from a form of one of them
    («маттер» → «мастер», «диспечер» → «диспетчер»; not «шредерова», nor a name the dictionary knows)."""
    if len(word) < 5 or morph().word_is_known(word) or word.endswith(_SURNAME_ENDINGS):
        return False
    return bool(_one_edit(word) & _staff_forms())


def _name_spans(text: str, speaker: str | None, keep: frozenset[str] = frozenset()) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    # a name the citizen gives after «меня зовут», «моя фамилия» … (any case, up to three words)
    cued: list[tuple[int, int]] = []  # where the words after a cue stand
    for m in _NAME_CUE.finditer(text):
        asked = bool(_ASKED.search(text[max(0, m.start() - 8):m.start()]))
        if speaker == "operator" and "зовут" in m.group().lower() and not asked:
            continue  # the operator introducing themselves («меня зовут Анна»)
        pos, words = m.end(), []
        for w in _CUE_WORD.finditer(text, pos):
            if text[pos:w.start()].strip() or len(words) == 3:
                break
            lw = w.group().lower()
            name_like = w.group()[0].isupper() or name_tags(lw) or not morph().word_is_known(lw)
            if (words or "обращаться" in m.group().lower()) and not name_like:
                break  # «как к вам обращаться и по какому телефону …»: no name follows
            words.append(w)
            pos = w.end()
        if words:
            spans.append((words[0].start(), words[-1].end(), "name"))
            cued.append((words[0].start(), words[-1].end()))
    # capitalised names side by side, or a surname or patronymic alone; a first name alone unless it
    # follows «оператор» (the operator's own name)
    groups: list[list[tuple[int, int, frozenset[str]]]] = []
    for m in _CYR_WORD.finditer(text):
        word = m.group()
        if len(word) < 2 or not word[0].isupper() or word.isupper():
            continue
        tags = name_tags(word)
        unknown = not morph().word_is_known(word.lower())
        if not tags and not unknown:
            continue
        # «?»: a word the dictionary does not know (its name tags, if any, are pymorphy3's guess)
        entry = (m.start(), m.end(), (tags | {"?"}) if unknown else tags if tags else frozenset({"?"}))
        if groups and not text[groups[-1][-1][1]:m.start()].strip():
            groups[-1].append(entry)
        else:
            groups.append([entry])
    for group in groups:
        tags = frozenset().union(*(t for _, _, t in group))
        named = tags - {"?"}
        if not named:
            continue  # unknown capitalised words alone: a street, a company, a garbled word
        if all(word_forms(text[a:b]) & keep for a, b, _ in group):
            continue  # the operator's own name («Анна», «Анну»)
        if speaker == "operator" and all("?" in t for _, _, t in group) and not any(
                a < cb and ca < b for a, b, _ in group for ca, cb in cued):
            # in the operator's own words a capitalised word the dictionary does not know is a misheard
            # word («Маттер» for «мастер»), not the citizen's name, unless said after «вас зовут»,
            # «ваша фамилия», «как к вам обращаться» …; a name the dictionary knows is still masked
            continue
        if speaker not in ("operator", "citizen") and len(group) == 1 and "?" in group[0][2] and not any(
                group[0][0] < cb and ca < group[0][1] for ca, cb in cued) and _misheard_staff_noun(
                text[group[0][0]:group[0][1]].lower().replace("ё", "е")):
            # in a line whose speaker is not known (a mono call) a lone capitalised word the dictionary does
            # not know, one letter away from «мастер», «диспетчер» … (:func:`_misheard_staff_noun`), is
            # that word misheard («Маттер свяжется» for «Мастер свяжется»), not a name; the citizen's name
            # on file is still masked (``known``), and so is any such word after a cue («моя фамилия …»)
            continue
        if len(group) == 1 and named == {"Name"}:
            if _OPERATOR_WORD.search(text[:group[0][0]]) and speaker != "citizen":
                continue  # «оператор Анна», «меня зовут Анна»: the operator introducing themselves
        spans.append((group[0][0], group[-1][1], "name"))
    for pattern in (_INITIALS, _INITIALS_CAPS, _PATRONYMIC):
        spans += [(m.start(), m.end(), "name") for m in pattern.finditer(text)]
    for m in _ONE_INITIAL.finditer(text):  # «Петрова М.», «М. Петрова»: a surname by tag or by ending
        word = (m.group(1) or m.group(2)).lower()
        if "Surn" in name_tags(word) or (not morph().word_is_known(word) and word.endswith(_SURNAME_ENDINGS)):
            spans.append((m.start(), m.end(), "name"))
    return spans


# --- what the system already holds of the call's citizen ---------------------------------------------

#: Words of a stored address that are no part of a street's name: street types, house parts, a city.
_ADDRESS_NOISE = re.compile(r"(?:ул|улица|пр|пр-т|пр-кт|просп|проспект|пер|переулок|ш|шоссе|наб|набережная|б-р|бул|"
                            r"бульвар|пл|площадь|мкр|микрорайон|пр-д|проезд|туп|тупик|аллея|им|имени|д|дом|кв|"
                            r"квартира|корп|корпус|к|стр|строение|лит|литера|г|город|пос|поселок|обл|область|р-н|"
                            r"район|россия|рф)")
_CITY_PART = re.compile(r"(?i)^\s*(?:г|город|пос|поселок|с|село|д|деревня)\.?\s+[А-ЯЁа-яё-]+\s*$|обл|р-н|район|россия")
_HOUSE_WORDS = re.compile(r"(?:дом[а-я]*|д|квартир[а-я]*|кв|кв-ра|корпус[а-я]*|корп|строени[а-я]*|стр|подъезд[а-я]*|"
                          r"номер)")
_NUMBER_RUN = re.compile(r"(?<![\d])\+?\d[\d\s()\-–]*\d(?![\d])|(?<![\d])\d(?![\d])")
_ANY_NAME_TAGS = _NAME_TAGS | {"Geox"}
#: Which kind a word of several stored values is masked as: «Соколова» is a name, though also read out
#: of the e-mail «sokolova.m@…».
_KNOWN_PRIORITY = ("name", "address", "email")


def _common(word: str) -> bool:
    """Whether ``word`` (lower-case) is an ordinary word on its own: the dictionary knows it with a
    parse that is no name, surname, patronymic or place («вера», «садовая», «мира»; not «иванов»)."""
    return morph().word_is_known(word) and any(not _ANY_NAME_TAGS & p.tag.grammemes for p in morph().parse(word))


def _value_keys(word: str) -> frozenset[str]:
    """A stored value's word as compared with a transcript's: itself and its normal forms, only those of
    its parses as a name when it has any («кузнецова» → «кузнецов», not «кузнец»)."""
    parses = morph().parse(word)
    named = [p for p in parses if _NAME_TAGS & p.tag.grammemes]
    return frozenset({word} | {p.normal_form.replace("ё", "е") for p in (named or parses)})


class KnownIdentifiers:
    """The identifiers the system holds of one citizen (decrypted by the caller, kept in memory only),
    prepared for :func:`personal_spans`: the words of their name, the words of their streets' names, their
    house and flat numbers, their phone's digits, their e-mail address and its local part's words (in
    Latin and read back into Cyrillic, :func:`latin_readings`). Built by :func:`known_identifiers`."""

    def __init__(self, words: dict[str, tuple[str, bool]], numbers: frozenset[str], phones: tuple[str, ...],
                 emails: tuple[str, ...]):
        #: ``{lemma or form: (kind, common)}``: ``common`` a word that is ordinary on its own
        self.words = words
        self.numbers = numbers
        self.phones = phones
        self.emails = emails

    def __bool__(self) -> bool:
        return bool(self.words or self.numbers or self.phones or self.emails)

    def _word(self, token: str) -> tuple[str, bool] | None:
        keys = {token} if token[:1].isdigit() else (lemmas(token) | {token})
        found = [self.words[k] for k in keys if k in self.words]
        if not found:
            return None
        kind = min((k for k, _ in found), key=_KNOWN_PRIORITY.index)
        return kind, all(c for _, c in found)

    def spans(self, text: str, speaker: str | None, keep: frozenset[str] = frozenset()) -> list[tuple[int, int, str]]:
        """Where ``text`` holds one of these identifiers (see :func:`personal_spans`, ``known``)."""
        out: list[tuple[int, int, str]] = []
        low_text = text.lower().replace("ё", "е")
        for email in self.emails:
            for m in re.finditer(re.escape(email), low_text):
                out.append((m.start(), m.end(), "email"))
        for m in _NUMBER_RUN.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if len(digits) >= 4 and any(digits in p for p in self.phones) and not re.match(
                    r"\s*(?:год|г\.)", text[m.end():]):
                out.append((m.start(), m.end(), "phone"))
        toks = list(_ADDR_TOKEN.finditer(text))
        low = [t.group().lower().replace("ё", "е") for t in toks]
        citizens_line = speaker != "operator"
        context = [_street_type(w) or bool(_HOUSE_WORDS.fullmatch(w)) or w[:1].isdigit() for w in low]
        hits: dict[int, str] = {}
        for i, w in enumerate(low):
            if w[:1].isdigit():
                continue
            found = self._word(w)
            if found is None:
                continue
            kind, common = found
            if kind == "name" and not citizens_line and (word_forms(w) & keep):
                continue  # the operator's own name, which the citizen's may share
            if kind == "name" and speaker != "citizen" and (
                    _AFTER_OPERATOR.search(text[:toks[i].start()])
                    or (speaker == "operator" and _AFTER_MY_NAME.search(text[:toks[i].start()]))):
                # the operator introducing themselves («оператор Мария, здравствуйте») with a name the
                # citizen happens to share: the operator's name, not the citizen's data (the citizen's
                # name said elsewhere, «Мария Андреевна, …», is still masked)
                continue
            near = any(context[k] for k in range(max(0, i - 3), min(len(low), i + 4)) if k != i)
            capital = toks[i].group()[:1].isupper() and i > 0 and not re.search(r"[.!?]\s*$", text[:toks[i].start()])
            if not common or citizens_line or near or capital:
                hits[i] = kind
        for i, kind in sorted(hits.items()):  # words side by side of one kind are one stretch («Вера Ильинична»)
            if out and i - 1 in hits and hits[i - 1] == kind and not text[toks[i - 1].end():toks[i].start()].strip():
                out[-1] = (out[-1][0], toks[i].end(), kind)
            else:
                out.append((toks[i].start(), toks[i].end(), kind))
        # a house or flat number on file beside an address word, a street on file or another such number
        for i, w in enumerate(low):
            if w in self.numbers or w.split("-")[0] in self.numbers:
                lo = max(0, i - 2)
                if any(context[k] and not low[k][:1].isdigit() or k in hits or low[k] in self.numbers
                       for k in range(lo, i)) or (i + 1 < len(low) and _HOUSE_WORDS.fullmatch(low[i + 1])):
                    out.append((toks[i].start(), toks[i].end(), "address"))
        return out


def _street_words(address: str) -> tuple[list[str], list[str]]:
    """The words of a stored address's street names («ул. Садовая, д. 5» → [«садовая»]) and its house
    numbers ([«5»]); a city («г. Москва») is no street."""
    words, nums = [], []
    for part in address.split(","):
        if _CITY_PART.search(part):
            continue
        for t in _ADDR_TOKEN.findall(part):
            lw = t.lower().replace("ё", "е")
            if lw[:1].isdigit():
                nums += [n for n in re.split(r"[-/]", lw) if n]
                nums.append(lw)
            elif len(lw) >= 3 and not _ADDRESS_NOISE.fullmatch(lw) and not re.search(r"\d", lw):
                words.append(lw)
    return words, nums


def known_identifiers(*, full_name: str | None = None, phone: str | None = None, email: str | None = None,
                      addresses=()) -> KnownIdentifiers:
    """:class:`KnownIdentifiers` of a citizen from their stored values: ``full_name``, ``phone`` (any
    spelling; its last ten digits are the national number), ``email``, ``addresses`` ``[(address,
    apartment)]`` (the address as stored, «ул. Садовая, д. 5»; the apartment «17»)."""
    words: dict[str, tuple[str, bool]] = {}

    def add(word: str, kind: str) -> None:
        common = _common(word)
        if common and len(word) < 3:
            return  # «Ли», «Ян»: as a word («ли», «ян») too common to mask, the name rules still see them
        for key in _value_keys(word):
            prev = words.get(key)
            # a key shared by two values: the higher priority kind, common only if both are
            words[key] = (kind, common) if prev is None else (
                min(prev[0], kind, key=_KNOWN_PRIORITY.index), prev[1] and common)

    for w in WORD.findall((full_name or "").lower().replace("ё", "е")):
        if len(w) >= 2 and not w[:1].isdigit():
            add(w, "name")
    numbers_: set[str] = set()
    for address, apartment in addresses:
        street, nums = _street_words(address or "")
        for w in street:
            add(w, "address")
        numbers_ |= set(nums)
        if apartment:
            numbers_ |= {n for n in re.split(r"[-/\s]", str(apartment).lower()) if n and n[:1].isdigit()}
    digits = re.sub(r"\D", "", phone or "")
    phones = tuple({digits, digits[-10:]}) if len(digits) >= 7 else ()
    emails: tuple[str, ...] = ()
    if email and "@" in email:
        email = email.strip().lower()
        emails = (email,)
        local = email.split("@", 1)[0]
        for chunk in re.findall(r"[a-z]{3,}", local):
            words.setdefault(chunk, ("email", False))
            for reading in latin_readings(chunk):
                if len(reading) >= 3:
                    add(reading, "email")
    return KnownIdentifiers(words, frozenset(numbers_), phones, emails)


def personal_spans(text: str | None, *, speaker: str | None = None,
                   keep_names: frozenset[str] = frozenset(),
                   streets: StreetNames | None = None,
                   known: KnownIdentifiers | None = None) -> list[tuple[int, int, str]]:
    """``[(start, end, kind)]``: the stretches of a transcript segment's ``text`` (character offsets,
    in order, not overlapping) that hold a citizen's identifier, ``kind`` one of ``phone`` (any
    spelling :func:`has_phone` accepts: «8 916 123-45-67», «123-45-67», «+7 (916) …»), ``email``
    («ivanov@mail.ru», «иванов собака mail точка ru»), ``address`` (a street with its name, a house,
    building, apartment or entrance number, chained: «улица Ленина дом 5, квартира 12» is one span; a
    flat's number said before its word, «12 квартира», «в 12 квартире», and a bare number right after a
    house number, «Садовая 5 12», are in it too — not a count, a time or a date after one:
    :func:`_flat_before_word`, :func:`_flat_after_house`) and
    ``name`` (the words after «меня зовут», «моя фамилия», «отчество» …; a first name beside a surname
    or a patronymic, a surname or a patronymic alone, initials; a first name alone too, except the
    operator introducing themselves: after «оператор» or «меня зовут» in a segment not the citizen's;
    in the operator's own segment a capitalised word the dictionary does not know, a misheard word as
    often as a name — «Маттер» for «мастер» —, only after «вас зовут», «ваша фамилия», «как к вам
    обращаться» …, while names the dictionary knows are masked there as anywhere; in a line whose
    speaker is not known, a lone such word one letter away from «мастер», «диспетчер» …
    (:func:`_misheard_staff_noun`) is not masked either — the citizen's name on file still is, ``known``).
    ``keep_names``: forms (:func:`word_forms`) of names not to mask, the call's operator's own.
    ``streets``: the buildings register's street names (:func:`street_names`), masked beside a street
    type or a house number even in lower case («улица садовая, дом 5», «распект мира»; see
    :func:`_street_spans`, which also takes «квартира» with any word after it as an apartment, and after
    a comma or a dash a number or a word the dictionary does not know: «квартира, семинации»).
    ``known``: what the system holds of the call's citizen (:func:`known_identifiers`), masked
    wherever it occurs in any word form (lemmas): a word of their name or their street that is no
    ordinary word on its own («Иванова», «Каретный») everywhere — except a first name right after
    «оператор» in a line not the citizen's, or after «меня зовут» in the operator's line: the operator
    introducing themselves with a name the citizen shares («оператор Мария»); one that is («Вера», «садовая»,
    «мира») in a line not the operator's (the citizen's, or any line of a call whose speakers are not
    separated), capitalised inside a sentence, or within three words of an address word (a street
    type, «дом», «квартира», a number); their house or flat number beside an address word, their
    street or another such number; four or more digits of their phone; their e-mail address and the
    words of its local part (in Latin, or read back into Cyrillic).

    For masking a transcript for quality control (issue 18; 152-ФЗ ст. 5 ч. 5, data minimisation):
    the checks judge the operator, not the citizen. A heuristic that errs towards masking; numbers in
    words are expected already written in digits (:func:`crm.calls.transcription.numbers.normalise`)."""
    if not text:
        return []
    spans = [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    spans += [(m.start(), m.end(), "email") for m in _SPOKEN_EMAIL.finditer(text)]
    spans += [(m.start(), m.end(), "email") for m in _EMAIL_SPELLED.finditer(text)]
    spans += _phone_spans(text)
    spans += [(m.start(), m.end(), "address") for m in _HOUSE_PART.finditer(text)]
    spans += _flat_before_word(text)
    for pattern in (*_STREET_SPAN, _NAME_AND_HOUSE):  # … «Ленина 5», «Садовая, 12а»
        spans += [(m.start(), m.end(), "address") for m in pattern.finditer(text)]
    spans += _street_spans(text, streets)
    spans += _name_spans(text, speaker, keep_names)
    if known:
        spans += known.spans(text, speaker, keep_names)
    glue = re.compile(r"[\s,]*")
    merged = _merge_spans(spans, glue, text)
    return _merge_spans(merged + _flat_after_house(text, merged), glue, text)


def mask_text(text: str | None, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each of ``spans`` (:func:`personal_spans`) replaced by its label (:data:`MASK_LABELS`)."""
    out, pos = [], 0
    for a, b, kind in spans:
        out.append((text or "")[pos:a])
        out.append(MASK_LABELS[kind])
        pos = b
    out.append((text or "")[pos:])
    return "".join(out)
