"""How a stored transcript segment is shown: the citizen's identifiers masked for quality control,
the words with their probabilities, the doubtful words marked (issue 18, points 3 and 4).

A segment is stored (:func:`crm.calls.services.save_transcript`) with its text's numbers written in
digits (:mod:`crm.calls.transcription.numbers`) and its ``words`` as Whisper gave them
(``[{start, end, word, probability}]``, seconds): the words align with the audio, the text reads as
people write. :func:`present` joins the two again — which stretch of the text each word became
(:func:`crm.calls.transcription.numbers.normalise_map`) — so that

* with ``mask`` (QA roles, :func:`crm.calls.services.view`), the stretches
  :func:`crm.text_ru.personal_spans` finds (phone, e-mail, address, name) are replaced by their
  labels («[телефон]», «[адрес]» …) and every word under such a stretch is replaced by the label too
  (consecutive words of one stretch become one word entry): no raw word of a masked stretch leaves
  the server;
* the text is cut into ``pieces`` for the transcript page: plain text, a word (or the words that became
  one number) with its start time and ``unsure`` when its probability is below the threshold
  (``CRM_WORD_UNSURE_P``), a masked stretch (with its words' start time and ``unsure`` by the lowest
  probability of its words, by the same rule: «[телефон]» heard at 0.397 is marked, its digits not shown);
* the transcript search matches the shown text and finds word times in ``pieces``, and a masked
  stretch has no words to match (:mod:`crm.calls.search`).

When the words no longer join into the text (a transcript saved by a tool without words, or a text
edited apart from them), words under a masked stretch are recognised by their tokens instead, and any
number-like word is masked once a phone or an address is; no piece is marked doubtful then.
"""
from __future__ import annotations

import re

from crm import text_ru
from crm.calls.transcription import numbers

#: Default probability under which a word is shown as doubtful (``CRM_WORD_UNSURE_P``).
UNSURE_P = 0.5


def _prob(w: dict) -> float | None:
    p = w.get("probability", w.get("p"))
    try:
        return None if p is None else float(p)
    except (TypeError, ValueError):
        return None


#: A word's letters and digits, a sign or hyphen before a digit kept («-345», «+7»).
_CORE = re.compile(r"(?:[-+]?\d|\w)(?:.*\w)?", re.S)


def _joined(words: list[dict], tight: bool) -> tuple[str, list[tuple[int, int]]]:
    """The words joined into one text and where each word's core (:data:`_CORE`) stands in it. Words are
    stored stripped, so how Whisper joined them is lost: with ``tight`` a word that starts with a hyphen
    or closing punctuation, or follows one that ends with a hyphen or an opening bracket, is joined
    without a space («жилищно-» «коммунального», «812» «-345»), as Whisper's segment text has them."""
    raw, offsets, prev = "", [], ""
    for w in words:
        word = str(w.get("word") or "").strip()
        if raw and not (tight and (word[:1] in "-–,.;:!?)»" or prev[-1:] in "-–(«")):
            raw += " "
        # the word itself, without the punctuation Whisper attaches («-6789.» → «-6789», «Сидоров,» →
        # «Сидоров»): a number's last word would otherwise stretch past the rewritten number and fall
        # into a group of its own, hiding its neighbours' probabilities
        core = _CORE.search(word)
        a, b = (core.start(), core.end()) if core else (0, len(word))
        offsets.append((len(raw) + a, len(raw) + b))
        raw += word
        prev = word
    return raw, offsets


def _word_ranges(text: str, words: list[dict]) -> list[tuple[int, int]] | None:
    """Where in ``text`` each of ``words`` stands (a number said in several words: the whole number for
    each), or None when the words do not join into the text (joined with spaces, else as Whisper joins
    a hyphenated word or a number written in parts, :func:`_joined`)."""
    for tight in (False, True):
        raw, offsets = _joined(words, tight)
        out, pieces = numbers.normalise_map(raw)
        if out.strip() == text.strip():
            shift = (len(text) - len(text.lstrip())) - (len(out) - len(out.lstrip()))
            ranges = []
            for a, b in offsets:
                r = numbers.raw_to_out(pieces, a, b) if pieces else (a, b)
                ranges.append((r[0] + shift, r[1] + shift) if r else (a + shift, a + shift))
            return ranges
        if raw.strip() == text.strip():
            shift = (len(text) - len(text.lstrip())) - (len(raw) - len(raw.lstrip()))
            return [(a + shift, b + shift) for a, b in offsets]
    return None


def _is_numberish(word: str) -> bool:
    toks = text_ru.WORD.findall(word.lower().replace("ё", "е"))
    return any(t.isdigit() or numbers._classify(t) is not None for t in toks)


def present(seg: dict, *, mask: bool, unsure_p: float = UNSURE_P, keep_names: frozenset[str] = frozenset(),
            streets: text_ru.StreetNames | None = None, detect: bool = False,
            known: text_ru.KnownIdentifiers | None = None) -> dict:
    """The shown form of one segment ``seg`` (``{start, end, speaker, channel, text, words}``, words
    as stored: ``[{start, end, word, probability}]``).

    Returns ``{start, end, speaker, channel, text, words, pieces, masked}``: ``text`` masked when
    ``mask``; ``words`` ``[{start, end, word, p}]`` (seconds; ``p`` the probability, 0–1, or None),
    masked words replaced by their label (``keep_names``: name forms never masked, the operator's own,
    :func:`operator_name_forms`; ``streets``: the register's street names, masked in any case,
    :func:`crm.calls.vocabulary.register_streets`; ``known``: what the system holds of the call's
    citizen, masked wherever it occurs, :func:`crm.calls.services.known_identifiers`); ``pieces`` ``[{text, start, end, unsure, mask}]`` that
    concatenate to ``text`` (``start``/``end`` seconds for a word piece, else None; ``mask`` the kind
    of a masked stretch, else None); ``masked`` the kinds masked, in order. With ``detect`` (and no
    ``mask``: a QA reader's reveal) also ``found``: the kinds the mask would have hidden, in order —
    what the reveal shows, for its access-log entry (kinds only, never the values)."""
    text = seg.get("text") or ""
    words = [w for w in (seg.get("words") or []) if str(w.get("word") or "").strip()]
    found = (text_ru.personal_spans(text, speaker=seg.get("speaker"), keep_names=keep_names, streets=streets,
                                    known=known)
             if mask or detect else [])
    spans = found if mask else []
    ranges = _word_ranges(text, words) if words else None

    # which words fall under a masked stretch
    word_kind: list[str | None] = [None] * len(words)
    word_span: list[object] = [None] * len(words)  # which stretch: consecutive words of one become one entry
    if spans and words:
        if ranges is not None:
            for i, (a, b) in enumerate(ranges):
                for k, (sa, sb, kind) in enumerate(spans):
                    if a < sb and sa < b:
                        word_kind[i], word_span[i] = kind, k
                        break
        else:
            hidden = {t for sa, sb, _ in spans for t in text_ru.WORD.findall(text[sa:sb].lower().replace("ё", "е"))}
            kinds = {k for _, _, k in spans}
            numeric_kind = "phone" if "phone" in kinds else "address" if "address" in kinds else None
            for i, w in enumerate(words):
                toks = set(text_ru.WORD.findall(str(w["word"]).lower().replace("ё", "е")))
                if toks & hidden:
                    word_kind[i] = next(k for sa, sb, k in spans
                                        if toks & set(text_ru.WORD.findall(text[sa:sb].lower().replace("ё", "е"))))
                elif numeric_kind and _is_numberish(str(w["word"])):
                    word_kind[i] = numeric_kind
                word_span[i] = word_kind[i]

    shown_words: list[dict] = []
    last_span = None
    for i, w in enumerate(words):
        p = _prob(w)
        kind = word_kind[i]
        if kind is not None:
            span_id = word_span[i]
            if shown_words and last_span == span_id:
                prev = shown_words[-1]
                prev["end"] = float(w["end"])
                if p is not None:
                    prev["p"] = p if prev["p"] is None else min(prev["p"], p)
                continue
            last_span = span_id
            shown_words.append({"start": float(w["start"]), "end": float(w["end"]), "word": text_ru.MASK_LABELS[kind],
                                "p": p})
        else:
            last_span = None
            shown_words.append({"start": float(w["start"]), "end": float(w["end"]), "word": str(w["word"]).strip(),
                                "p": p})
    for w in shown_words:
        if w["p"] is not None:
            w["p"] = round(w["p"], 3)

    pieces = _pieces(text, spans, words, ranges, unsure_p)
    return {"start": seg.get("start"), "end": seg.get("end"), "speaker": seg.get("speaker"),
            "channel": seg.get("channel"), "text": "".join(p["text"] for p in pieces) if pieces else "",
            "words": shown_words, "pieces": pieces, "masked": [k for _, _, k in spans],
            **({"found": [k for _, _, k in found]} if detect else {})}


def operator_name_forms(full_name: str | None) -> frozenset[str]:
    """The forms of each part of the operator's name (:func:`crm.text_ru.word_forms`: «Анна» → «анна»,
    «анну» …) that masking leaves alone: the operator naming themselves is not the citizen's data."""
    out: set[str] = set()
    for part in text_ru.WORD.findall((full_name or "").lower().replace("ё", "е")):
        if len(part) >= 2 and not part.isdigit():
            out |= text_ru.word_forms(part)
    return frozenset(out)


def _pieces(text: str, spans, words, ranges, unsure_p: float) -> list[dict]:
    """The shown text cut into plain stretches, words (grouped when several became one number) and
    masked stretches, in order (see :func:`present`)."""
    marks: list[tuple[int, int, dict]] = []
    for sa, sb, k in spans:
        # a masked stretch keeps its words' doubt and time (the same rule as a word or a number): the
        # reader does not see the words, but may see that «[телефон]» was misheard and listen there
        under = [w for r, w in zip(ranges or [], words) if r[1] > r[0] and r[0] < sb and sa < r[1]]
        probs = [p for p in (_prob(w) for w in under) if p is not None]
        marks.append((sa, sb, {"text": text_ru.MASK_LABELS[k],
                               "start": min(float(w["start"]) for w in under) if under else None,
                               "end": max(float(w["end"]) for w in under) if under else None,
                               "unsure": bool(probs) and min(probs) < unsure_p, "mask": k}))
    if ranges is not None:
        # words whose stretches overlap became one token (a number said or written in parts): one
        # group, doubtful when any of its words is (the lowest probability of them)
        groups: list[tuple[int, int, list[dict]]] = []
        for (a, b), w in sorted(((r, w) for r, w in zip(ranges, words) if r[1] > r[0]), key=lambda rw: rw[0]):
            if groups and a < groups[-1][1]:
                ga, gb, ws = groups[-1]
                groups[-1] = (ga, max(gb, b), ws + [w])
            else:
                groups.append((a, b, [w]))
        for a, b, ws in groups:
            if any(a < sb and sa < b for sa, sb, _ in spans):
                continue
            probs = [p for p in (_prob(w) for w in ws) if p is not None]
            marks.append((a, b, {"text": text[a:b], "start": min(float(w["start"]) for w in ws),
                                 "end": max(float(w["end"]) for w in ws),
                                 "unsure": bool(probs) and min(probs) < unsure_p, "mask": None}))
    marks.sort(key=lambda m: (m[0], -m[1]))
    out, pos = [], 0
    for a, b, piece in marks:
        if a < pos:
            continue  # overlaps what is already placed (a word inside a masked stretch)
        if a > pos:
            out.append({"text": text[pos:a], "start": None, "end": None, "unsure": False, "mask": None})
        out.append(piece)
        pos = b
    if pos < len(text):
        out.append({"text": text[pos:], "start": None, "end": None, "unsure": False, "mask": None})
    return out
