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

Pure functions: no database, no app (the QA checks import this module).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: stage codes in call order; ``body`` is the main part
STAGES = ("opening", "body", "closing")
_PREFIXES = {"начало": "opening", "приветствие": "opening", "основная часть": "body",
             "завершение": "closing", "прощание": "closing"}
_PREFIX = re.compile(r"^\s*(" + "|".join(map(re.escape, _PREFIXES)) + r")\s*:\s*", re.IGNORECASE)
_QUOTED = re.compile(r"«([^«»]+)»")
MAX_LINES = 100


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
