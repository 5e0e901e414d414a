"""Numbers as people write them: Russian number words of a transcript turned into digits.

Whisper writes what it hears in words («дом пять квартира двенадцать») or in its own English
formatting of digits («812-345-6789»); a supervisor reading back the address and the phone the
operator took wants «дом 5, квартира 12» and «8 912 345-67-89». :func:`normalise` rewrites a
segment's text that way (the segment's ``words`` keep their raw forms, so word timestamps still
align with what was said):

* cardinals in any case form, compounds included: «двенадцать» → 12, «двести тридцать пять» → 235,
  «две тысячи двадцать шесть» → 2026, «пятистах» → 500; a lone «один/одна/одно…» stays a word
  («один вопрос») except after a house, apartment, entrance, floor or number word («квартира
  один» → «квартира 1»);
* telephone numbers dictated in groups («восемь девятьсот шестнадцать сто двадцать три сорок пять
  шестьдесят семь») or written by Whisper in any grouping («812-345-6789», «8 916 1234567») →
  ``8 916 123-45-67``, ``+7 916 123-45-67`` (with «плюс семь» / «+7»), ten digits ``912 345-67-89``,
  seven digits dictated in three or more groups ``123-45-67``;
* dates: an ordinal before a month's name → digits («пятого марта» → «5 марта», «двадцать
  первого декабря» → «21 декабря»), an ordinal year before «год» («две тысячи двадцать шестого
  года» → «2026 года»);
* times after «в», «к», «с», «до», «после», «около» and «на»: an hour (0–23) followed by minutes
  (10–59, or «ноль» and a digit) → «в 10:30», «к 9:05»;
* ordinals before a floor, entrance, building, number day… take the Russian suffix of their form
  («на третьем этаже» → «на 3-м этаже», «третья секция» → «3-я секция», «пятого числа» → «5-го
  числа»); other ordinals stay words («первый раз»);
* a house number followed by an apartment, building or entrance gets a comma: «дом 5, квартира 12».

Numbers next to each other stay apart unless they form one compound by place value: «двадцать
два» is 22, «сто двадцать три сорок пять» is 123 and 45, «восемь девятьсот» is 8 and 900 (a
compound takes hundreds, then tens, then units, and a thousand or a million only after a smaller
part). :func:`normalise` is idempotent (its output gives itself again).

:func:`wer_normalise` is the benchmark's number-aware normalisation: every number word becomes
digits (the lone «один» too), runs of digits are joined into one token and punctuation dropped, so
«двенадцать», «12» and «восемь девятьсот …» / «8 (900) …» compare alike on both sides.

Pure Python over pymorphy3 (:mod:`crm.text_ru`): no Flask, no database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from crm import text_ru

_UNITS = {"ноль": 0, "нуль": 0, "один": 1, "два": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7,
          "восемь": 8, "девять": 9}
_TEENS = {"десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14,
          "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18, "девятнадцать": 19}
_TENS = {"двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70,
         "восемьдесят": 80, "девяносто": 90}
_HUNDREDS = {"сто": 100, "двести": 200, "триста": 300, "четыреста": 400, "пятьсот": 500, "шестьсот": 600,
             "семьсот": 700, "восемьсот": 800, "девятьсот": 900}
_MULTS = {"тысяча": 1000, "миллион": 1_000_000, "миллиард": 1_000_000_000}
_ORD_UNITS = {"нулевой": 0, "первый": 1, "второй": 2, "третий": 3, "четвертый": 4, "пятый": 5, "шестой": 6,
              "седьмой": 7, "восьмой": 8, "девятый": 9}
_ORD_TEENS = {"десятый": 10, "одиннадцатый": 11, "двенадцатый": 12, "тринадцатый": 13, "четырнадцатый": 14,
              "пятнадцатый": 15, "шестнадцатый": 16, "семнадцатый": 17, "восемнадцатый": 18, "девятнадцатый": 19}
_ORD_TENS = {"двадцатый": 20, "тридцатый": 30, "сороковой": 40, "пятидесятый": 50, "шестидесятый": 60,
             "семидесятый": 70, "восьмидесятый": 80, "девяностый": 90}
_ORD_HUNDREDS = {"сотый": 100, "двухсотый": 200, "трехсотый": 300, "четырехсотый": 400, "пятисотый": 500,
                 "шестисотый": 600, "семисотый": 700, "восьмисотый": 800, "девятисотый": 900}
_ORD_MULTS = {"тысячный": 1000, "двухтысячный": 2000, "миллионный": 1_000_000}

_CARDINAL = {**{k: (v, "unit") for k, v in _UNITS.items()}, **{k: (v, "teen") for k, v in _TEENS.items()},
             **{k: (v, "tens") for k, v in _TENS.items()}, **{k: (v, "hund") for k, v in _HUNDREDS.items()},
             **{k: (v, "mult") for k, v in _MULTS.items()}}
_ORDINAL = {**{k: (v, "unit") for k, v in _ORD_UNITS.items()}, **{k: (v, "teen") for k, v in _ORD_TEENS.items()},
            **{k: (v, "tens") for k, v in _ORD_TENS.items()}, **{k: (v, "hund") for k, v in _ORD_HUNDREDS.items()},
            **{k: (v, "ordmult") for k, v in _ORD_MULTS.items()}}

_MONTHS = frozenset({"январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь",
                     "ноябрь", "декабрь"})
#: Nouns an ordinal before which is written in digits with its suffix («на 3-м этаже»).
_ORDINAL_NOUNS = frozenset({"этаж", "подъезд", "корпус", "строение", "секция", "парадная", "квартал", "микрорайон",
                            "число", "линия", "век", "участок"})
#: Words after which a lone «один/одна…» is a number («квартира один», «дом один»).
_NUMBER_NOUNS = frozenset({"дом", "квартира", "корпус", "подъезд", "этаж", "номер", "строение", "кабинет", "офис",
                           "комната", "секция", "участок", "кв", "д", "литер"})
_TIME_PREPOSITIONS = frozenset({"в", "к", "с", "до", "после", "около", "на"})
_YEAR = "год"

_TOKEN = re.compile(r"\d+|[^\W\d_]+")
#: What may stand between the groups of a dictated or written telephone number.
_PHONE_SEP = re.compile(r"[\s,\-–—()./]*")
_SPACE = re.compile(r"\s+")

#: Russian suffixes of an ordinal written in digits («3-й», «3-го», «3-я» …), from the word's ending.
_ORD_SUFFIXES = (("ыми", "ми"), ("ими", "ми"), ("ого", "го"), ("его", "го"), ("ому", "му"), ("ему", "му"),
                 ("ый", "й"), ("ий", "й"), ("ой", "й"), ("ей", "й"), ("ая", "я"), ("яя", "я"), ("ья", "я"),
                 ("ое", "е"), ("ее", "е"), ("ье", "е"), ("ые", "е"), ("ие", "е"), ("ым", "м"), ("им", "м"),
                 ("ом", "м"), ("ем", "м"), ("ую", "ю"), ("юю", "ю"), ("ью", "ю"), ("ых", "х"), ("их", "х"))


@dataclass(frozen=True)
class _Word:
    value: int
    cls: str  # unit, teen, tens, hund, mult (cardinal); ordinals: the same classes or ordmult
    ordinal: bool


@lru_cache(maxsize=50_000)
def _classify(word: str) -> _Word | None:
    """The number a Russian word names, or None: a cardinal by its most likely parse («семью» is a
    family, not «семь»), an ordinal by any parse as one («второе» is the dish or the ordinal)."""
    parses = text_ru.morph().parse(word)
    if not parses:
        return None
    first = parses[0].normal_form.replace("ё", "е")
    if first in _CARDINAL:
        value, cls = _CARDINAL[first]
        return _Word(value, cls, False)
    for p in parses:
        lemma = p.normal_form.replace("ё", "е")
        if lemma in _ORDINAL and "Anum" in p.tag:
            value, cls = _ORDINAL[lemma]
            return _Word(value, cls, True)
    return None


@lru_cache(maxsize=50_000)
def _lemmas(word: str) -> frozenset[str]:
    return text_ru.lemmas(word.lower().replace("ё", "е"))


@dataclass
class _Tok:
    start: int
    end: int
    text: str
    num: _Word | None = None
    digits: bool = False


@dataclass
class _Item:
    """One number: tokens ``[i, j)`` of the text, its value and how it was said."""

    i: int
    j: int
    value: int
    digits: str  # as written in digits (leading zeros of a written token kept)
    from_words: bool
    ordinal: bool = False
    has_mult: bool = False
    lone_one: bool = False
    single_cls: str = ""


def _tokens(text: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(text):
        t = _Tok(m.start(), m.end(), m.group())
        if t.text.isdigit():
            t.digits = True
        else:
            t.num = _classify(t.text.lower().replace("ё", "е"))
        out.append(t)
    return out


def _compound(toks: list[_Tok], i: int, text: str) -> _Item:
    """The longest number that starts at the number word ``toks[i]`` (words separated by spaces only)."""
    total, cur, last_mult, j = 0, 0, None, i
    started = False
    ordinal = has_mult = False
    classes = []
    while j < len(toks):
        t = toks[j]
        w = t.num
        if w is None or (j > i and text[toks[j - 1].end:t.start].strip()):
            break
        v, cls = w.value, w.cls
        if v == 0 and cls == "unit":
            if started:
                break
            j += 1
            classes.append(cls)
            ordinal = w.ordinal
            break  # a zero is a number of its own («ноль пять» is 0 and 5)
        if cls == "unit":
            ok = cur % 10 == 0 and not 10 <= cur % 100 <= 19
        elif cls in ("teen", "tens"):
            ok = cur % 100 == 0
        elif cls == "hund":
            ok = cur == 0 and (not started or last_mult is not None)
        else:  # mult, ordmult
            mult = v if cls == "mult" else 1000 if v % 1000 == 0 and v < 1_000_000 else v
            ok = (last_mult is None or mult < last_mult) and (cur > 0 or not started)
        if not ok:
            break
        started = True
        classes.append(cls)
        if cls == "mult":
            total += max(cur, 1) * v
            cur, last_mult, has_mult = 0, v, True
        elif cls == "ordmult":
            base = 1_000_000 if v >= 1_000_000 else 1000
            total += cur * base if cur else v  # «пятитысячный» is one word; «двух тысячный» is not said
            cur, last_mult, has_mult = 0, base, True
        else:
            cur += v
        j += 1
        if w.ordinal:
            ordinal = True
            break  # an ordinal ends the number («двадцать пятого»)
    value = total + cur
    item = _Item(i, j, value, str(value), True, ordinal=ordinal, has_mult=has_mult,
                 single_cls=classes[0] if len(classes) == 1 else "")
    item.lone_one = j - i == 1 and value == 1 and not ordinal
    return item


def _items(toks: list[_Tok], text: str) -> list[_Item]:
    items, i = [], 0
    while i < len(toks):
        t = toks[i]
        if t.digits:
            items.append(_Item(i, i + 1, int(t.text), t.text, False))
            i += 1
        elif t.num is not None:
            item = _compound(toks, i, text)
            items.append(item)
            i = item.j
        else:
            i += 1
    return items


def _format_phone(d: str, plus: bool) -> str | None:
    """A Russian telephone number in the usual grouping, or None when ``d`` is not one."""
    if len(d) == 11 and d[0] in "78":
        prefix = "+7" if d[0] == "7" or plus else "8"
        return f"{prefix} {d[1:4]} {d[4:7]}-{d[7:9]}-{d[9:11]}"
    if len(d) == 10 and d[0] in "3489" and not plus:
        return f"{d[0:3]} {d[3:6]}-{d[6:8]}-{d[8:10]}"
    return None


def _runs(items: list[_Item], toks: list[_Tok], text: str) -> list[list[_Item]]:
    """Items separated only by spaces, commas, hyphens, brackets, dots or slashes: a telephone
    number's groups may be any of them."""
    runs: list[list[_Item]] = []
    for it in items:
        if runs and runs[-1][-1].j == it.i:
            gap = text[toks[it.i - 1].end:toks[it.i].start]
            if _PHONE_SEP.fullmatch(gap) and gap.count("\n") == 0:
                runs[-1].append(it)
                continue
        runs.append([it])
    return runs


def _phone_ok(group: list[_Item]) -> bool:
    return all(not (it.ordinal or it.has_mult) for it in group)


def _find_phone(run: list[_Item], plus_at: set[int]) -> tuple[int, int, str] | None:
    """``(a, b, formatted)``: items ``run[a:b]`` form a telephone number (the longest from the first
    start that has one)."""
    n = len(run)
    for a in range(n):
        for b in range(n, a, -1):
            group = run[a:b]
            if not _phone_ok(group):
                continue
            d = "".join(it.digits for it in group)
            if len(d) > 11:
                continue
            if len(group) == 1 and group[0].from_words:
                continue
            plus = group[0].i in plus_at
            formatted = _format_phone(d, plus)
            if formatted is None and len(d) == 7 and len(group) >= 3 and d[0] != "0":
                formatted = f"{d[0:3]}-{d[3:5]}-{d[5:7]}"
            if formatted is not None:
                return a, b, formatted
    return None


def _word_lemmas(toks: list[_Tok], k: int) -> frozenset[str]:
    if 0 <= k < len(toks) and not toks[k].digits:
        return _lemmas(toks[k].text)
    return frozenset()


def _ordinal_suffix(word: str) -> str:
    w = word.lower().replace("ё", "е")
    for ending, suffix in _ORD_SUFFIXES:
        if w.endswith(ending):
            return suffix
    return ""


def _time(run: list[_Item], toks: list[_Tok]) -> tuple[int, str] | None:
    """``(items used, "H:MM")`` when ``run`` starts with an hour said after a preposition of time
    followed by its minutes (10–59 in words, or «ноль» and a digit)."""
    if len(run) < 2 or not run[0].from_words or run[0].ordinal or run[0].has_mult:
        return None
    if run[0].i == 0 or toks[run[0].i - 1].text.lower() not in _TIME_PREPOSITIONS:
        return None
    hour = run[0].value
    if not 0 <= hour <= 23:
        return None
    m = run[1]
    if not m.from_words or m.ordinal or m.has_mult:
        return None
    if m.value == 0 and m.j - m.i == 1 and len(run) >= 3 and run[2].from_words and 0 <= run[2].value <= 9 \
            and run[2].single_cls == "unit":
        return 3, f"{hour}:0{run[2].value}"
    if 10 <= m.value <= 59 and m.single_cls != "unit":
        return 2, f"{hour}:{m.value:02d}"
    return None


def _replacement(item: _Item, toks: list[_Tok], all_numbers: bool) -> str | None:
    """How a number said in words is written, or None to leave its words as they are."""
    if not item.from_words:
        return None
    if item.ordinal:
        nxt = _word_lemmas(toks, item.j)
        if nxt & _MONTHS or _YEAR in nxt or all_numbers:
            return item.digits
        if nxt & _ORDINAL_NOUNS:
            suffix = _ordinal_suffix(toks[item.j - 1].text)
            return f"{item.digits}-{suffix}" if suffix else item.digits
        return None
    if item.lone_one and not all_numbers:
        prev = _word_lemmas(toks, item.i - 1)
        if not (prev & _NUMBER_NOUNS):
            return None
    if item.j - item.i == 1 and item.single_cls == "mult" and not all_numbers:
        # a lone «тысячи» is «thousands»; only «тысяча», «тысячу», «миллион» name one thousand / million
        if toks[item.i].text.lower() not in ("тысяча", "тысячу", "миллион"):
            return None
    return item.digits


_ADDRESS_COMMA = re.compile(
    r"(?i)(?<![а-яё])((?:дом[а-яё]*|д\.|корпус[а-яё]*|строени[а-яё]*)\s+\d+[а-яё]?)"
    r"\s+(?=(?:квартир[а-яё]*|кв\.?|корпус[а-яё]*|строени[а-яё]*|подъезд[а-яё]*)(?![а-яё]))")


def normalise(text: str | None, *, all_numbers: bool = False) -> str:
    """``text`` with its numbers written as people write them (see the module's docstring).
    ``all_numbers``: also turn a lone «один» and any ordinal into digits (the benchmark's
    comparison, :func:`wer_normalise`). Idempotent; '' for None."""
    return normalise_map(text, all_numbers=all_numbers)[0]


@dataclass(frozen=True)
class Piece:
    """A stretch ``[out_a, out_b)`` of the normalised text that comes from ``[raw_a, raw_b)`` of the
    original: copied as it was (``edited`` False: offsets map one to one) or rewritten (a number)."""

    out_a: int
    out_b: int
    raw_a: int
    raw_b: int
    edited: bool


def raw_to_out(pieces: list[Piece], raw_a: int, raw_b: int) -> tuple[int, int] | None:
    """The stretch of the normalised text that the original's ``[raw_a, raw_b)`` became (a rewritten
    number as a whole), or None when nothing of it is left."""
    lo = hi = None
    for p in pieces:
        a, b = max(raw_a, p.raw_a), min(raw_b, p.raw_b)
        if a >= b:
            continue
        if p.edited:
            oa, ob = p.out_a, p.out_b
        else:
            oa, ob = p.out_a + (a - p.raw_a), p.out_a + (b - p.raw_a)
        lo = oa if lo is None else min(lo, oa)
        hi = ob if hi is None else max(hi, ob)
    return None if lo is None else (lo, hi)


def normalise_map(text: str | None, *, all_numbers: bool = False) -> tuple[str, list[Piece]]:
    """:func:`normalise` and how its output maps onto ``text``: ``(normalised, pieces)`` with
    :class:`Piece` covering the output in order (see :func:`raw_to_out`). Used to find which of a
    segment's raw words (kept for alignment) a stretch of the stored text comes from."""
    if not text:
        return text or "", []
    edits = _edits(text, all_numbers)
    out: list[str] = []
    pieces: list[Piece] = []
    pos = olen = 0
    for start, end, rep in sorted(edits):
        if start > pos:
            out.append(text[pos:start])
            pieces.append(Piece(olen, olen + start - pos, pos, start, False))
            olen += start - pos
        out.append(rep)
        pieces.append(Piece(olen, olen + len(rep), start, end, True))
        olen += len(rep)
        pos = end
    if pos < len(text):
        out.append(text[pos:])
        pieces.append(Piece(olen, olen + len(text) - pos, pos, len(text), False))
    result = "".join(out)
    # «дом 5 квартира 12» → «дом 5, квартира 12»: a comma inserted after the house's number
    for at in sorted((m.end(1) for m in _ADDRESS_COMMA.finditer(result)), reverse=True):
        result = result[:at] + "," + result[at:]
        shifted: list[Piece] = []
        for p in pieces:
            if p.out_b <= at:
                shifted.append(p)
            elif p.out_a >= at:
                shifted.append(Piece(p.out_a + 1, p.out_b + 1, p.raw_a, p.raw_b, p.edited))
            elif p.edited:
                shifted.append(Piece(p.out_a, p.out_b + 1, p.raw_a, p.raw_b, True))
            else:  # split a copied stretch around the comma
                k = at - p.out_a
                shifted.append(Piece(p.out_a, at, p.raw_a, p.raw_a + k, False))
                shifted.append(Piece(at + 1, p.out_b + 1, p.raw_a + k, p.raw_b, False))
        pieces = shifted
    return result, pieces


def _edits(text: str, all_numbers: bool) -> list[tuple[int, int, str]]:
    """``[(start, end, replacement)]`` in ``text``: its numbers said in words or written by Whisper."""
    toks = _tokens(text)
    items = _items(toks, text)
    if not items:
        return []
    plus_at = set()
    for it in items:
        before = text[:toks[it.i].start].rstrip(" ")
        if before.endswith("+"):
            plus_at.add(it.i)
        elif it.i > 0 and toks[it.i - 1].text.lower() == "плюс":
            plus_at.add(it.i)
    edits: list[tuple[int, int, str]] = []  # (start char, end char, replacement)
    for run in _runs(items, toks, text):
        k = 0
        while k < len(run):
            phone = _find_phone(run[k:], plus_at)
            if phone is not None and phone[0] == 0:
                a, b, formatted = phone
                group = run[k:k + b]
                start = toks[group[0].i].start
                if group[0].i in plus_at:
                    prev = toks[group[0].i - 1] if group[0].i > 0 else None
                    if prev is not None and prev.text.lower() == "плюс":
                        start = prev.start
                    else:
                        start = text.rindex("+", 0, start)
                edits.append((start, toks[group[-1].j - 1].end, formatted))
                k += b
                continue
            timed = _time(run[k:], toks)
            if timed is not None:
                used, hm = timed
                edits.append((toks[run[k].i].start, toks[run[k + used - 1].j - 1].end, hm))
                k += used
                continue
            item = run[k]
            rep = _replacement(item, toks, all_numbers)
            if rep is not None:
                edits.append((toks[item.i].start, toks[item.j - 1].end, rep))
            k += 1
    # a rewrite that changes nothing is no edit (idempotence, and offsets stay one to one)
    return [(a, b, r) for a, b, r in edits if text[a:b] != r]


_WER_PUNCT = re.compile(r"[^\w\s]|_")
_DIGIT_RUN = re.compile(r"\d+(?:\s+\d+)*")


def wer_normalise(text: str | None) -> str:
    """The benchmark's number-aware normalisation of a reference or a hypothesis (the same on both
    sides): :func:`normalise` with ``all_numbers``, lower case, ё → е, punctuation dropped, and
    every run of digits joined into one token («8 916 123-45-67» and «89161234567» are one word,
    «двенадцать» and «12» the same word)."""
    text = normalise((text or "").replace("ё", "е").replace("Ё", "Е"), all_numbers=True).lower()
    text = _WER_PUNCT.sub(" ", text)
    text = _DIGIT_RUN.sub(lambda m: m.group().replace(" ", ""), " ".join(text.split()))
    return " ".join(text.split())
