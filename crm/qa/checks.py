"""Automatic QA checks on a call transcript: did the operator greet and introduce themselves, and
did they close the call politely.

Phrases are matched on lemmas (pymorphy3), so word forms match: «Доброго дня» and «добрый день»,
«горячей линии» and «горячая линия». Each token is compared through the set of the lemmas of all
its parses, so an ambiguous form (``всего`` → весь / всего) still matches.

Which segments count: segments spoken by the ``operator``; when the speaker is ``unknown`` (mono
recording, no diarisation) any such segment counts too. Segments labelled ``citizen`` never count:
the checks judge the operator.
"""
from __future__ import annotations

import re
from functools import cache, lru_cache

GREETING_WINDOW_S = 20.0  # the greeting is expected in the first ~20 s of the call (seconds)
CLOSING_WINDOW_S = 30.0  # the closing is expected in the last ~30 s ...
CLOSING_LAST_SEGMENTS = 3  # ... or in the last three segments, whichever reaches further back

GREETINGS = ("здравствуйте", "добрый день", "день добрый", "добрый вечер", "доброе утро")
# Naming the line, or the operator followed by a name («оператор Анна», «меня зовут Анна»).
LINE_NAMES = ("горячая линия",)
OPERATOR_NAMES = ("оператор", "меня зовут")  # must be followed by at least one more word
CLOSINGS = ("до свидания", "всего доброго", "всего хорошего", "хорошего дня", "спасибо за обращение",
            "спасибо за ваше обращение")

_WORD = re.compile(r"[а-яёa-z0-9]+(?:-[а-яёa-z0-9]+)*")
_SPEAKERS = ("operator", "unknown")


@cache
def _morph():
    """The process-wide MorphAnalyzer (loading the dictionaries takes ~0.1 s and some MB)."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=100_000)
def _lemmas(word: str) -> frozenset[str]:
    """Every normal form pymorphy3 gives ``word`` (lower-case, ё kept as pymorphy expects)."""
    return frozenset(p.normal_form.replace("ё", "е") for p in _morph().parse(word))


def _tokens(text: str) -> list[tuple[str, frozenset[str]]]:
    """``[(word, lemmas)]`` of ``text`` in order."""
    return [(w, _lemmas(w)) for w in _WORD.findall((text or "").lower())]


@cache
def _pattern(phrase: str) -> tuple[frozenset[str], ...]:
    return tuple(lemmas for _, lemmas in _tokens(phrase))


def _find(tokens: list[tuple[str, frozenset[str]]], phrases: tuple[str, ...],
          need_following_word: bool = False) -> str | None:
    """The first phrase of ``phrases`` found in ``tokens`` (as the words spoken), or None.
    With ``need_following_word`` the phrase must be followed by one more word (a name)."""
    for phrase in phrases:
        pattern = _pattern(phrase)
        n = len(pattern)
        last_start = len(tokens) - n - (1 if need_following_word else 0)
        for i in range(last_start + 1):
            if all(pattern[k] & tokens[i + k][1] for k in range(n)):
                end = i + n + (1 if need_following_word else 0)
                return " ".join(w for w, _ in tokens[i:end])
    return None


def _counted(segments: list[dict]) -> list[dict]:
    return [s for s in segments if (s.get("speaker") or "unknown") in _SPEAKERS and (s.get("text") or "").strip()]


def greeting(segments: list[dict]) -> dict:
    """``{code: "greeting", passed, detail}``: in the first :data:`GREETING_WINDOW_S` seconds the
    operator says a greeting (здравствуйте / добрый день / добрый вечер / доброе утро) and names
    the line («горячая линия») or themselves («оператор …», «меня зовут …»). The segments of the
    window are read as one text, since a transcriber may split the two into separate segments."""
    window = [s for s in _counted(segments) if float(s.get("start") or 0.0) < GREETING_WINDOW_S]
    tokens = _tokens(" ".join(s["text"] for s in window))
    hello = _find(tokens, GREETINGS)
    name = _find(tokens, LINE_NAMES) or _find(tokens, OPERATOR_NAMES, need_following_word=True)
    if hello and name:
        detail = f"приветствие «{hello}» и представление «{name}» в первые {GREETING_WINDOW_S:g} с"
    elif hello:
        detail = f"приветствие «{hello}» есть, но оператор не назвал линию или своё имя"
    elif name:
        detail = f"представление «{name}» есть, но нет приветствия в первые {GREETING_WINDOW_S:g} с"
    else:
        detail = f"нет приветствия оператора в первые {GREETING_WINDOW_S:g} с"
    return {"code": "greeting", "passed": bool(hello and name), "detail": detail}


def closing(segments: list[dict]) -> dict:
    """``{code: "closing", passed, detail}``: one of the operator's last segments (the last
    :data:`CLOSING_LAST_SEGMENTS` of the call, or any starting in its last
    :data:`CLOSING_WINDOW_S` seconds) contains до свидания / всего доброго / хорошего дня /
    спасибо за обращение."""
    ordered = sorted(segments, key=lambda s: float(s.get("start") or 0.0))
    if not ordered:
        return {"code": "closing", "passed": False, "detail": "в записи нет речи"}
    call_end = max(float(s.get("end") or 0.0) for s in ordered)
    tail_ids = {id(s) for s in ordered[-CLOSING_LAST_SEGMENTS:]}
    tail = [s for s in _counted(ordered)
            if id(s) in tail_ids or float(s.get("start") or 0.0) >= call_end - CLOSING_WINDOW_S]
    for s in reversed(tail):
        found = _find(_tokens(s["text"]), CLOSINGS)
        if found:
            return {"code": "closing", "passed": True, "detail": f"прощание «{found}» на {float(s['start']):.1f} с"}
    return {"code": "closing", "passed": False, "detail": "оператор не попрощался в конце звонка"}


def run(segments: list[dict]) -> list[dict]:
    """All automatic checks over ``segments`` (``{start, end, speaker, text}``, seconds).
    Returns ``[{code, passed, detail}]`` with codes ``greeting`` and ``closing``."""
    if not any((s.get("text") or "").strip() for s in segments):
        return [{"code": code, "passed": False, "detail": "в записи нет речи"} for code in ("greeting", "closing")]
    return [greeting(segments), closing(segments)]
