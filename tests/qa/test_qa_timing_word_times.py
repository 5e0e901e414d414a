"""«Долгие паузы» (``silence``) and «Перебивание» (``overtalk``) measured from the words' own times
(issue 18): a segment's span is not all speech. In a mono call, or wherever turns were merged into one
segment, a long pause between two of its words was invisible; and a segment that runs on through
silence was counted as talking over the other side. Segments without ``words`` count whole, as before.
Hand-built segments; no app, no database."""
from __future__ import annotations

import pytest

from crm.qa import checks


def worded(start: float, end: float, words: list[tuple[float, float, str]], speaker: str = "unknown") -> dict:
    """A segment from ``start`` to ``end`` whose ``words`` are ``[(start, end, word)]``."""
    return {"start": start, "end": end, "speaker": speaker, "channel": None,
            "text": " ".join(w for _, _, w in words),
            "words": [{"start": a, "end": b, "word": w, "p": 0.9} for a, b, w in words]}


def plain(start: float, end: float, text: str, speaker: str) -> dict:
    return {"start": start, "end": end, "speaker": speaker, "channel": None, "text": text}


def by_code(results):
    return {r["code"]: r for r in results}


def test_a_long_pause_between_two_words_of_one_segment_is_a_pause_where_it_starts():
    # one merged mono segment 0–20 s: «подождите, пожалуйста» until 2.6 s, then 12 s of nothing
    seg = worded(0.0, 20.0, [(0.0, 1.2, "Подождите,"), (1.3, 2.6, "пожалуйста."),
                             (14.6, 15.4, "Спасибо"), (15.5, 16.0, "за"), (16.1, 20.0, "ожидание.")])
    res = checks.silence([seg])
    assert res["passed"] is False and res["state"] == "failed"
    assert res["value"] == pytest.approx(12.0) and res["at_s"] == pytest.approx(2.6)
    assert res["detail"] == "пауза 12,0 с на 2,6 с (допустимо до 10 с)"
    # the same in the whole run of a mono call: a pause is anybody's, judged as usual (not «не уверено»)
    got = by_code(checks.run([seg]))["silence"]
    assert got["state"] == "failed" and got["at_s"] == pytest.approx(2.6)
    # the configured limit still decides
    assert checks.silence([seg], {"max_s": 12.5})["passed"] is True


def test_talking_at_once_is_one_overlap_across_the_small_gaps_between_words():
    # both sides talk 0.2–3.4 s, a word every 0.5 s with 0.1 s between words; each segment's span runs
    # on through silence (to 6 s and 8 s). Word by word the overlaps are 0.2 s each, under min_overlap_s:
    # the small gaps are no pause, so this is one overlap of 3.2 s
    op = worded(0.0, 6.0, [(0.5 * i, 0.5 * i + 0.4, f"о{i}") for i in range(7)], "operator")
    cit = worded(0.2, 8.0, [(0.2 + 0.5 * i, 0.2 + 0.5 * i + 0.4, f"з{i}") for i in range(7)], "citizen")
    res = checks.overtalk([op, cit])
    assert res["value"] == pytest.approx(3.2) and res["at_s"] == pytest.approx(0.2)
    assert res["passed"] is False and res["detail"] == "стороны говорили одновременно 3,2 с (1 раз), первый раз на 0,2 с"
    # and the gaps between words are no pause either
    assert checks.silence([op, cit])["value"] == 0.0


def test_segments_whose_spans_overlap_but_whose_words_do_not_are_no_overtalk():
    # the operator's segment runs on to 10 s though their words end at 4 s; the citizen speaks 5–8.5 s
    op = worded(0.0, 10.0, [(0.0, 1.5, "Назовите"), (1.6, 2.2, "ваш"), (2.3, 4.0, "адрес.")], "operator")
    cit = worded(5.0, 9.0, [(5.0, 6.0, "Садовая,"), (6.1, 7.0, "дом"), (7.1, 8.5, "пять.")], "citizen")
    res = checks.overtalk([op, cit])
    assert res["passed"] is True and res["value"] == 0.0 and res["at_s"] is None
    assert res["detail"] == "стороны не перебивали друг друга"


def test_overtalk_counts_the_time_the_words_overlap():
    # the spans overlap 3–10 s (7 s); the words overlap 6.0–7.5 s and 8.0–9.0 s only
    op = worded(0.0, 10.0, [(0.0, 2.0, "Сейчас"), (6.0, 7.5, "подождите"), (7.6, 9.0, "минуту")], "operator")
    cit = worded(3.0, 12.0, [(5.0, 7.5, "Алло"), (8.0, 11.5, "слышите")], "citizen")
    res = checks.overtalk([op, cit])
    assert res["value"] == pytest.approx(2.5) and res["at_s"] == pytest.approx(6.0)
    assert res["passed"] is True  # 2.5 s is within the default 3 s
    assert checks.overtalk([op, cit], {"max_total_s": 2.0})["passed"] is False
    # an overlap shorter than min_overlap_s is not counted
    assert checks.overtalk([op, cit], {"min_overlap_s": 1.2})["value"] == pytest.approx(1.5)


def test_a_segment_without_words_counts_whole_beside_one_with_words():
    # the operator's segment has no words (a transcript saved by a tool): 0–10 s is all speech; the
    # citizen's segment spans 4–12 s but speaks from 8 s
    op = plain(0.0, 10.0, "Слушаю вас, говорите.", "operator")
    cit = worded(4.0, 12.0, [(8.0, 9.0, "Алло,"), (9.1, 12.0, "здравствуйте.")], "citizen")
    res = checks.overtalk([op, cit])
    assert res["value"] == pytest.approx(2.0) and res["at_s"] == pytest.approx(8.0)
    # silence: the operator's segment without words ends at 10 s, after the citizen's long quiet start;
    # a later one (no words) 12 s after the citizen's last word
    later = plain(24.0, 26.0, "Вы меня слышите?", "operator")
    res = checks.silence([op, cit, later])
    assert res["passed"] is False and res["value"] == pytest.approx(12.0) and res["at_s"] == pytest.approx(12.0)
