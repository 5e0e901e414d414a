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
