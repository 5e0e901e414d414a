"""Filters against invented text (crm.calls.transcription.filters): Whisper's phantom phrases, decoder
loops, low confidence. No model needed."""

from __future__ import annotations

import numpy as np
import pytest

from crm.calls.transcription import PipelineOptions, is_phantom
from crm.calls.transcription.filters import filter_segments, find_loop
from tests.speech import fake_segment, norm


@pytest.mark.parametrize(
    "text",
    [
        "Продолжение следует...",
        "Субтитры сделал DimaTorzok",
        "Субтитры создавал DimaTorzok.",
        "Редактор субтитров А.Синецкая Корректор А.Егорова",
        "Спасибо за просмотр!",
        "Аллах Акбар!",
        "ПЕЧАЛЬНАЯ ЗАСТАВКА",
        "Динамичная музыка",
        "...",
    ],
)
def test_phantom_phrases(text):
    assert is_phantom(text)


@pytest.mark.parametrize(
    "text",
    [
        "Спасибо, буду ждать.",
        "Спасибо за обращение, всего доброго.",
        "Продолжение следует завтра, мастер придёт в девять.",
        "Хорошо, спасибо.",
        "У нас нет горячей воды.",
    ],
)
def test_real_speech_is_not_phantom(text):
    assert not is_phantom(text)


def test_loop_detection():
    assert find_loop("да да да да да".split()) is not None
    assert find_loop("в ширкайзу в ширкайзу в ширкайзу в ширкайзу".split()) is not None
    assert find_loop("да да да нет".split()) is None
    assert find_loop("я зарегистрировала заявку и передала ее".split()) is None




def test_filter_segments_removes_phantoms_loops_and_low_confidence():
    opts = PipelineOptions()
    segs = [
        fake_segment("Продолжение следует..."),
        fake_segment("Субтитры сделал DimaTorzok"),
        fake_segment("У нас нет горячей воды."),
        fake_segment("алло алло алло алло алло алло алло алло", start=5.0),
        fake_segment("Что-то невнятное тут", start=9.0, prob=0.1),
        fake_segment("Хорошо, спасибо. Продолжение следует.", start=12.0),
    ]
    out = filter_segments(segs, opts, vad_probs=np.full(1000, 0.3), offset_s=0.0)
    texts = [s["text"] for s in out]
    assert texts[0] == "У нас нет горячей воды."
    assert norm(texts[1]) == "алло"  # loop collapsed to one occurrence
    assert texts[2] == "Хорошо, спасибо."  # trailing stand-alone phantom removed
    assert len(out) == 3
