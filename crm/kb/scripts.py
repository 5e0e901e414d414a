"""Call scripts as the automatic QA checks read them: a script's body, one script line per row.

A row may begin with its stage: «Начало:» or «Приветствие:» (the opening: said within the greeting
check's window), «Завершение:» or «Прощание:» (the closing: said among the last words of the call);
any other row belongs to the main part. What the check looks for is written in «ёлочках»: an opening
or closing row holding one or more «phrases» is said when the operator says any one of them, in any
word form (pymorphy3 lemmas, :mod:`crm.text_ru`): the ``greeting`` and ``closing`` checks fail naming
the row that was not said. Rows of the main part, and rows without «», are guidance for the operator,
shown but not checked. Example::

    Начало: Здравствуйте, «горячая линия ЖКХ», оператор (имя).
    Уточните адрес и подъезд: «какой у вас адрес».
    Сообщите плановый срок: «горячую воду дадут».
    Завершение: «Номер вашего обращения» … Запишите, пожалуйста.
    Прощание: «Всего доброго»!

**Abbreviations** (:data:`ABBREVIATIONS`): a script is written with the field's abbreviations («горячая
линия ЖКХ»), but the recogniser writes what the operator says, and the vocabulary prompt
(:mod:`crm.calls.vocabulary`, ``CRM_HOTLINE_NAME``) makes Whisper write the line's full name
(«горячая линия жилищно-коммунального хозяйства»). :func:`variants` gives a phrase in every spelling
of the table, in either direction, so the checks accept each: «горячая линия ЖКХ» is said by
«горячей линии жилищно-коммунального хозяйства» (any word form, with or without the hyphen), and a
phrase written in full is said by the abbreviation.

Pure functions: no database, no app (the QA checks import this module).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

from crm import text_ru

#: stage codes in call order; ``body`` is the main part
STAGES = ("opening", "body", "closing")
_PREFIXES = {"начало": "opening", "приветствие": "opening", "основная часть": "body",
             "завершение": "closing", "прощание": "closing"}
_PREFIX = re.compile(r"^\s*(" + "|".join(map(re.escape, _PREFIXES)) + r")\s*:\s*", re.IGNORECASE)
_QUOTED = re.compile(r"«([^«»]+)»")
MAX_LINES = 100

#: The field's abbreviations and their standard expansions, as a recogniser writes them when the
#: operator says them in full (ПП РФ № 354 writes ГВС/ХВС; ЖКХ and УК are the everyday names). Kept
#: small on purpose: only abbreviations an operator says on a ЖКХ hotline, each with the one
#: expansion everybody uses. Matched by lemma (:mod:`crm.text_ru`), so one entry covers every case.
ABBREVIATIONS: dict[str, str] = {
    "жкх": "жилищно-коммунальное хозяйство",
    "гвс": "горячее водоснабжение",
    "хвс": "холодное водоснабжение",
    "ук": "управляющая компания",
}
MAX_VARIANTS = 16  # a phrase full of abbreviations does not explode into every combination


@dataclass(frozen=True)
class ScriptLine:
    """One row of a script: ``number`` (1-based among the script's non-empty rows), ``stage``
    (:data:`STAGES`), ``text`` (the row as written, without its stage word) and ``phrases`` (what
    the automatic check looks for; empty: not checked)."""

    number: int
    stage: str
    text: str
    phrases: tuple[str, ...]

    @property
    def checked(self) -> bool:
        """Whether the automatic QA checks look for it: an opening or closing row with «phrases»."""
        return bool(self.phrases) and self.stage != "body"

    def as_dict(self) -> dict:
        return {"number": self.number, "stage": self.stage, "text": self.text, "phrases": list(self.phrases)}


def parse(body: str | None) -> list[ScriptLine]:
    """The script lines of ``body`` (see the module docstring), at most :data:`MAX_LINES`."""
    out: list[ScriptLine] = []
    for raw in (body or "").splitlines():
        row = raw.strip()
        if not row:
            continue
        stage = "body"
        m = _PREFIX.match(row)
        if m:
            stage = _PREFIXES[m.group(1).lower()]
            row = row[m.end():].strip()
        phrases = tuple(p.strip() for p in _QUOTED.findall(row) if p.strip())
        out.append(ScriptLine(len(out) + 1, stage, row, phrases))
        if len(out) >= MAX_LINES:
            break
    return out


def checked_lines(body: str | None) -> list[dict]:
    """The checked lines of ``body`` as dicts (``{number, stage, text, phrases}``), the shape the
    QA checks take (:func:`crm.qa.checks.run`'s ``script``)."""
    return [line.as_dict() for line in parse(body) if line.checked]


def _spellings(abbreviation: str) -> tuple[str, ...]:
    """How ``abbreviation`` (a key of :data:`ABBREVIATIONS`) may be written: itself, its expansion, and
    the expansion without its hyphen («жилищно коммунального»: a recogniser may leave it out)."""
    full = ABBREVIATIONS[abbreviation]
    return tuple(dict.fromkeys((abbreviation, full, full.replace("-", " "))))


def _expansion_at(tokens, i: int) -> tuple[str, int] | None:
    """``(abbreviation, length)`` when an expansion of :data:`ABBREVIATIONS` (any word form, hyphen
    or not) starts at ``tokens[i]``, else None."""
    for abbreviation in ABBREVIATIONS:
        for spelling in _spellings(abbreviation)[1:]:
            want = text_ru.pattern(spelling)
            n = len(want)
            if n and i + n <= len(tokens) and all(tokens[i + k][1] & want[k][1] for k in range(n)):
                return abbreviation, n
    return None


@lru_cache(maxsize=4096)
def variants(phrase: str) -> tuple[str, ...]:
    """``phrase`` and the same phrase with each abbreviation of :data:`ABBREVIATIONS` written out or
    each expansion abbreviated (lower case; at most :data:`MAX_VARIANTS`). The first is ``phrase``
    itself; a phrase with neither gives just ``(phrase,)``. E.g. «горячая линия ЖКХ» → («горячая линия
    ЖКХ», «горячая линия жилищно-коммунальное хозяйство», «горячая линия жилищно коммунальное
    хозяйство»): the checks match each on lemmas, so «горячей линии жилищно-коммунального хозяйства»
    says it."""
    tokens = text_ru.tokens(phrase)
    options: list[tuple[str, ...]] = []
    i, changed = 0, False
    while i < len(tokens):
        word = tokens[i][0]
        if word in ABBREVIATIONS:
            options.append(_spellings(word))
            i, changed = i + 1, True
            continue
        found = _expansion_at(tokens, i)
        if found:
            abbreviation, n = found
            said = " ".join(w for w, _ in tokens[i:i + n])
            options.append(tuple(dict.fromkeys((said,) + _spellings(abbreviation))))
            i, changed = i + n, True
            continue
        options.append((word,))
        i += 1
    if not changed:
        return (phrase,)
    out = [phrase] + [" ".join(combo) for combo in itertools.islice(itertools.product(*options), MAX_VARIANTS)]
    return tuple(dict.fromkeys(out))
