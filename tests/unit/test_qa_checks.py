"""Automatic QA checks (greeting, closing) on transcript segments; no app, no database."""
from __future__ import annotations

import pytest

from crm.qa import checks


def seg(start, text, speaker="operator", end=None):
    return {"start": start, "end": end if end is not None else start + 3.0, "speaker": speaker, "text": text}


def by_code(results):
    return {r["code"]: r for r in results}


GOOD_CALL = [
    seg(0.4, "Горячая линия ЖКХ, оператор Анна, здравствуйте!"),
    seg(4.0, "Здравствуйте, у нас третий день нет горячей воды.", "citizen"),
    seg(9.0, "Записала, заявка передана в управляющую компанию."),
    seg(40.0, "Спасибо.", "citizen"),
    seg(42.0, "Спасибо за обращение, всего доброго!"),
]


def test_good_call_passes_both():
    res = by_code(checks.run(GOOD_CALL))
    assert set(res) == {"greeting", "closing"}
    assert res["greeting"]["passed"] is True, res
    assert res["closing"]["passed"] is True, res
    assert all(isinstance(r["detail"], str) and r["detail"] for r in res.values())


@pytest.mark.parametrize("text", [
    "Добрый день, горячая линия, меня зовут Ольга.",
    "Доброе утро! Оператор Сергей, слушаю вас.",
    "Добрый вечер, вы позвонили на горячую линию жилищно-коммунальных услуг.",  # word forms
    "ЗДРАВСТВУЙТЕ. Горячей линии ЖКХ оператор Пётр.",
    "День добрый, оператор Мария.",
])
def test_greeting_word_forms_pass(text):
    assert checks.greeting([seg(1.0, text)])["passed"] is True


@pytest.mark.parametrize("text, why", [
    ("Алло, слушаю.", "no greeting, no name"),
    ("Здравствуйте, слушаю вас.", "greeting without naming the line or operator"),
    ("Горячая линия, оператор Анна.", "naming without greeting"),
    ("Здравствуйте, я оператор", "«оператор» not followed by a name"),
    ("Добрый, горячая линия.", "«добрый» alone is no greeting"),
])
def test_greeting_fails(text, why):
    assert checks.greeting([seg(1.0, text)])["passed"] is False, why


def test_greeting_split_over_two_segments_in_window():
    segs = [seg(0.5, "Здравствуйте!"), seg(3.0, "Горячая линия, оператор Анна.")]
    assert checks.greeting(segs)["passed"] is True


def test_greeting_too_late_fails():
    segs = [seg(0.5, "Алло?"), seg(25.0, "Здравствуйте, горячая линия, оператор Анна.")]
    assert checks.greeting(segs)["passed"] is False


def test_greeting_by_citizen_does_not_count_but_unknown_speaker_does():
    text = "Здравствуйте, горячая линия, оператор Анна."
    assert checks.greeting([seg(1.0, text, "citizen")])["passed"] is False
    assert checks.greeting([seg(1.0, text, "unknown")])["passed"] is True


@pytest.mark.parametrize("text", ["До свидания!", "Всего хорошего.", "Хорошего дня вам!", "До свиданья.",
                                  "Спасибо за ваше обращение.", "Спасибо за обращение, до свидания."])
def test_closing_passes(text):
    segs = [seg(0.0, "Здравствуйте, горячая линия, оператор Анна."), seg(30.0, "Заявка принята."),
            seg(60.0, text)]
    assert checks.closing(segs)["passed"] is True


def test_closing_fails_without_phrase_or_when_only_the_citizen_says_it():
    segs = [seg(0.0, "Здравствуйте."), seg(60.0, "Заявка принята, ждите."), seg(64.0, "До свидания.", "citizen")]
    assert checks.closing(segs)["passed"] is False


def test_closing_early_in_a_long_call_does_not_count():
    segs = [seg(0.0, "До свидания, то есть здравствуйте.")] + [seg(10.0 * i, "Уточните адрес.") for i in range(1, 12)]
    assert checks.closing(segs)["passed"] is False


def test_no_speech():
    res = by_code(checks.run([]))
    assert res["greeting"]["passed"] is False and res["closing"]["passed"] is False
    assert "нет речи" in res["greeting"]["detail"]


def test_analyzer_is_cached():
    assert checks._morph() is checks._morph()
