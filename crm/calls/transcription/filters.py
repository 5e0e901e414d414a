"""No invented text: text normalisation, Whisper's phantom phrases, decoder loops, low confidence."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

from crm.calls.transcription.options import FRAME_S, PipelineOptions


_PUNCT_RE = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalize_text(text: str) -> str:
    """Lower-case, ё→е, punctuation removed, spaces collapsed (as the reference transcripts)."""
    text = text.lower().replace("ё", "е")
    return " ".join(_PUNCT_RE.sub(" ", text).split())


# Phrases Whisper produces from silence, music or noise (learned from subtitle credits of its
# training data). Sources: openai/whisper#928, #1783, #2378; faster-whisper#621;
# whisper.cpp#1724, #2286. Matched against the *whole* normalised segment (or sentence), so a
# citizen who really says «спасибо» keeps it: only the stand-alone stock phrase is removed.
_PHANTOM_FULL = [
    r"продолжение следует",
    r"спасибо за просмотр",
    r"спасибо что смотрите",
    r"спасибо за внимание",
    r"спасибо за просмотр и до новых встреч",
    r"до новых встреч",
    r"до встречи в следующем (видео|выпуске)",
    r"подписывайтесь на (наш )?канал.*",
    r"ставьте лайки.*",
    r"смотрите продолжение.*",
    r"аллах акбар",
    r"((играет|звучит|играет|спокойная|тихая|грустная|веселая|динамичная|торжественная"
    r"|тревожная|напряженная|печальная|легкая|фоновая|музыкальная|лирическая|\w+ая) )?"
    r"(музыка|заставка|мелодия|музыкальная заставка)",
    r"аплодисменты",
    r"смех",
    r"тишина",
    r"шум( \w+)?",
    r"гудки?",
    r"и все",
    r"всем пока",
    r"пока пока",
    r"thank you( for watching)?",
    r"thanks for watching",
    r"you",
    r"bye",
]
# Subtitle-credit boilerplate: never said on a hotline, removed even inside a segment.
_PHANTOM_ANYWHERE = [
    r"субтитры (сделал|делал|создавал|создал|подготовил|подогнал|добавил|выполнил|сделаны|создавались)\w*( \w+){0,4}",
    r"редактор субтитров( \w+){0,6}",
    r"корректор [а-я] [а-я]+",
    r"dimatorzok",
    r"dima torzok",
    r"amara org",
    r"субтитры (от|by)( \w+){0,3}",
    r"субтитры",
]
_PHANTOM_FULL_RE = re.compile(r"^(?:" + "|".join(_PHANTOM_FULL) + r")$")
_PHANTOM_ANY_RE = re.compile(r"(?:" + "|".join(_PHANTOM_ANYWHERE) + r")")


def is_phantom(text: str) -> bool:
    """True when ``text`` is nothing but one of Whisper's stock phantom phrases.

    Also true for a stand-alone sound caption in capitals («ПЕЧАЛЬНАЯ ЗАСТАВКА», «ШУМ ДОЖДЯ»),
    which Whisper learned from subtitles.
    """
    norm = normalize_text(text)
    if not norm:
        return True
    letters = re.sub(r"[^A-Za-zА-Яа-яЁё]", "", text)
    if letters.isupper() and (len(norm.split()) >= 2 or len(letters) >= 8):
        return True
    if _PHANTOM_FULL_RE.match(norm):
        return True
    rest = _PHANTOM_ANY_RE.sub(" ", norm).split()
    return not rest


def compression_ratio(text: str) -> float:
    """UTF-8 bytes / zlib-compressed bytes of ``text`` (Whisper's loop measure; > 2.4 is a loop)."""
    b = text.encode("utf-8")
    return len(b) / max(1, len(zlib.compress(b)))


def find_loop(words: list[str], min_repeats: int = 4, max_n: int = 8) -> tuple[int, int, int] | None:
    """Find an n-gram repeated back to back ``min_repeats`` times: (start, n, repeats)."""
    best = None
    L = len(words)
    for n in range(1, max_n + 1):
        i = 0
        while i + n * min_repeats <= L:
            gram = words[i : i + n]
            reps = 1
            j = i + n
            while j + n <= L and words[j : j + n] == gram:
                reps += 1
                j += n
            if reps >= min_repeats and (best is None or reps * n > best[1] * best[2]):
                best = (i, n, reps)
            i += max(1, (reps - 1) * n) if reps > 1 else 1
    return best


def _vad_support(s: dict, probs: np.ndarray, offset_s: float) -> float:
    if not len(probs):
        return 0.0
    a = int(max(0, (s["start"] - offset_s) / FRAME_S))
    b = int(math.ceil((s["end"] - offset_s) / FRAME_S))
    b = min(len(probs), max(b, a + 1))
    if a >= len(probs):
        return 0.0
    return float(np.mean(probs[a:b]))


def filter_segments(
    segments: list[dict], opts: PipelineOptions, vad_probs: np.ndarray | None = None,
    offset_s: float = 0.0,
) -> list[dict]:
    """Remove invented text from decoded segments (``{start, end, speaker, channel, text, words}``):
    decoder loops are collapsed, phantom phrases and low-confidence segments dropped (the bar depends
    on the VAD's support, ``vad_probs`` per frame from ``offset_s`` s), stand-alone phantom sentences
    cut out of kept segments. Returns the kept segments, in order."""
    out = []
    for s in segments:
        words = s["words"]
        # 1. remove decoder loops: an n-gram repeated back to back >= 4 times is kept once
        norm_words = [normalize_text(w["word"]) for w in words]
        loop = find_loop(norm_words)
        while loop is not None:
            i, n, reps = loop
            words = words[: i + n] + words[i + n * reps :]
            norm_words = norm_words[: i + n] + norm_words[i + n * reps :]
            loop = find_loop(norm_words)
        # 2. subtitle credits anywhere, phantom phrases standing alone
        text = "".join(w["word"] for w in words).strip()
        if not text or is_phantom(text):
            continue
        # 3. confidence
        probs = [w["probability"] for w in words if normalize_text(w["word"])]
        if not probs:
            continue
        mean_p = float(np.mean(probs))
        support = _vad_support(s, vad_probs, offset_s) if vad_probs is not None else 0.0
        if support >= opts.vad_sure:
            if mean_p < opts.min_word_prob_sure:
                continue
        elif mean_p < opts.min_word_prob or (
            len(probs) <= 3 and mean_p < opts.min_word_prob_short
        ):
            continue
        if compression_ratio(text) > opts.compression_ratio_threshold and len(text) > 40:
            # still a loop after collapsing: keep nothing rather than invented text
            continue
        s = dict(s, words=words, text=text, start=words[0]["start"], end=words[-1]["end"])
        out.append(s)
    # 4. stand-alone phantom sentences inside kept segments (e.g. trailing «Продолжение следует.»)
    for s in out:
        parts = re.split(r"(?<=[.!?…])\s+", s["text"])
        if len(parts) > 1:
            kept = [p for p in parts if not is_phantom(p)]
            if len(kept) != len(parts) and kept:
                s["text"] = " ".join(kept)
                keep_norm = set(normalize_text(" ".join(kept)).split())
                s["words"] = [w for w in s["words"] if normalize_text(w["word"]) in keep_norm
                              or not normalize_text(w["word"])]
    return out
