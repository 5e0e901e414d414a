"""Automatic QA checks on transcript segments, one by one; no app, no database."""
from __future__ import annotations

import pytest

from crm import text_ru
from crm.qa import checks


def seg(start, text, speaker="operator", end=None):
    return {"start": start, "end": end if end is not None else start + 3.0, "speaker": speaker, "text": text}


def by_code(results):
    return {r["code"]: r for r in results}


GOOD_CALL = [
    seg(0.4, "Горячая линия ЖКХ, оператор Анна, здравствуйте!"),
    seg(4.0, "Здравствуйте, у нас третий день нет горячей воды.", "citizen"),
    seg(9.0, "Назовите ваш адрес и телефон для связи, пожалуйста."),
    seg(13.0, "Садовая, пять, квартира семнадцать.", "citizen"),
    seg(18.0, "Записала, заявка передана в управляющую компанию."),
    seg(22.0, "Спасибо.", "citizen"),
    seg(26.0, "Спасибо за обращение, всего доброго!"),
]


def test_good_call_passes_every_check():
    res = by_code(checks.run(GOOD_CALL))
    assert {"greeting", "closing"} <= set(res)
    assert set(res) == set(checks.CODES)
    assert all(r["passed"] for r in res.values()), [r for r in res.values() if not r["passed"]]
    assert all(isinstance(r["detail"], str) and r["detail"] for r in res.values())


# --- greeting --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Добрый день, горячая линия, меня зовут Ольга.",
    "ЗДРАВСТВУЙТЕ. Горячей линии ЖКХ оператор Пётр.",  # word forms, case
    "Горячая линия жилищно-коммунального хозяйства, оператор Анна, здравствуйте.",
    "Доброе утро, горячая линия, оператор Сергей, слушаю вас.",
])
def test_greeting_with_line_and_name_passes(text):
    assert checks.greeting([seg(1.0, text)])["passed"] is True


@pytest.mark.parametrize("text", [
    "Доброе утро! Оператор Сергей, слушаю вас.",
    "Добрый вечер, вы позвонили на горячую линию жилищно-коммунальных услуг.",
    "День добрый, оператор Мария.",
])
def test_greeting_naming_only_one_needs_the_either_setting(text):
    assert checks.greeting([seg(1.0, text)])["passed"] is False
    assert checks.greeting([seg(1.0, text)], {"need": "either"})["passed"] is True


@pytest.mark.parametrize("text, why", [
    ("Алло, слушаю.", "no greeting, no name"),
    ("Здравствуйте, слушаю вас.", "greeting without naming the line or operator"),
    ("Горячая линия, оператор Анна.", "naming without greeting"),
    ("Здравствуйте, горячая линия, я оператор", "«оператор» not followed by a name"),
    ("Добрый, горячая линия, оператор Анна.", "«добрый» alone is no greeting"),
])
def test_greeting_fails(text, why):
    result = checks.greeting([seg(1.0, text)])
    assert result["passed"] is False, why
    assert result["detail"]


def test_greeting_split_over_two_segments_in_window():
    segs = [seg(0.5, "Здравствуйте!"), seg(3.0, "Горячая линия, оператор Анна.")]
    assert checks.greeting(segs)["passed"] is True


def test_greeting_too_late_fails_and_the_window_is_configurable():
    segs = [seg(0.5, "Алло?"), seg(25.0, "Здравствуйте, горячая линия, оператор Анна.")]
    assert checks.greeting(segs)["passed"] is False
    assert checks.greeting(segs, {"window_s": 30})["passed"] is True


def test_greeting_by_citizen_does_not_count_but_unknown_speaker_does():
    text = "Здравствуйте, горячая линия, оператор Анна."
    assert checks.greeting([seg(1.0, text, "citizen")])["passed"] is False
    assert checks.greeting([seg(1.0, text, "unknown")])["passed"] is True


# --- closing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["До свидания!", "Всего хорошего.", "Хорошего дня вам!", "До свиданья.",
                                  "Спасибо за ваше обращение.", "Спасибо за обращение, до свидания."])
def test_closing_passes(text):
    segs = [seg(0.0, "Здравствуйте, горячая линия, оператор Анна."), seg(30.0, "Заявка принята."),
            seg(60.0, text)]
    res = checks.closing(segs)
    assert res["passed"] is True and res["at_s"] == 60.0


def test_closing_fails_without_phrase_or_when_only_the_citizen_says_it():
    segs = [seg(0.0, "Здравствуйте."), seg(60.0, "Заявка принята, ждите."), seg(64.0, "До свидания.", "citizen")]
    assert checks.closing(segs)["passed"] is False


def test_closing_early_in_a_long_call_does_not_count():
    segs = [seg(0.0, "До свидания, то есть здравствуйте.")] + [seg(10.0 * i, "Уточните адрес.") for i in range(1, 12)]
    assert checks.closing(segs)["passed"] is False


def test_closing_phrases_are_configurable():
    segs = [seg(0.0, "Здравствуйте."), seg(20.0, "Удачи!")]
    assert checks.closing(segs)["passed"] is False
    assert checks.closing(segs, {"phrases": ["удача"]})["passed"] is True


# --- address, callback number, forbidden phrases ---------------------------------------------------

@pytest.mark.parametrize("text", ["Какой у вас адрес?", "Назовите, пожалуйста, ваш адрес.",
                                  "Улица Садовая, дом пять, верно?", "Номер квартиры подскажите."])
def test_address_asked(text):
    res = checks.address([seg(5.0, text)])
    assert res["passed"] is True and res["at_s"] == 5.0


def test_address_said_only_by_the_citizen_does_not_count():
    segs = [seg(1.0, "Слушаю вас."), seg(4.0, "Улица Садовая, дом пять, квартира семнадцать.", "citizen")]
    assert checks.address(segs)["passed"] is False


@pytest.mark.parametrize("text", ["По какому телефону с вами связаться?", "Оставьте номер для связи.",
                                  "Мы вам перезвоним по этому номеру, верно? Телефон восемь девятьсот…",
                                  "Подскажите контактный номер."])
def test_callback_number_asked(text):
    assert checks.callback_number([seg(5.0, text)])["passed"] is True


def test_callback_number_missing():
    assert checks.callback_number([seg(1.0, "Заявка принята, ожидайте.")])["passed"] is False


@pytest.mark.parametrize("text, phrase", [
    ("Я не знаю, это не ко мне.", "не знаю"),
    ("Успокойтесь, пожалуйста.", "успокойтесь"),
    ("Я же вам сказала, ждите.", "я же вам сказал"),
    ("Короче, звоните завтра.", "короче"),
])
def test_forbidden_phrases_found_by_lemma(text, phrase):
    res = checks.forbidden_phrases([seg(2.0, "Здравствуйте."), seg(7.0, text)])
    assert res["passed"] is False
    assert phrase in res["detail"] and res["at_s"] == 7.0 and res["value"] == 1


def test_forbidden_phrases_by_the_citizen_do_not_count_and_the_list_is_configurable():
    segs = [seg(1.0, "Здравствуйте."), seg(3.0, "Я не знаю, что делать!", "citizen"), seg(6.0, "Сейчас разберёмся.")]
    assert checks.forbidden_phrases(segs)["passed"] is True
    assert checks.forbidden_phrases(segs, {"phrases": ["разобраться"]})["passed"] is False


# --- timing ----------------------------------------------------------------------------------------

def test_silence_longer_than_the_limit_is_flagged_with_its_place():
    segs = [seg(0.0, "Здравствуйте.", end=2.0), seg(2.5, "Добрый день.", "citizen", end=4.0),
            seg(16.5, "Извините за ожидание.", end=18.0)]
    res = checks.silence(segs)
    assert res["passed"] is False and res["value"] == pytest.approx(12.5) and res["at_s"] == 4.0
    assert checks.silence(segs, {"max_s": 15})["passed"] is True


def test_silence_ignores_overlapping_segments_and_the_edges():
    segs = [seg(5.0, "а", end=10.0), seg(8.0, "б", "citizen", end=20.0), seg(21.0, "в", end=22.0)]
    res = checks.silence(segs)
    assert res["passed"] is True and res["value"] == pytest.approx(1.0)


def test_overtalk_sums_the_overlaps_of_both_sides():
    segs = [seg(0.0, "Здравствуйте, горячая линия", end=5.0), seg(3.0, "Алло, у меня", "citizen", end=8.0),
            seg(7.0, "Слушаю вас", end=10.0)]
    res = checks.overtalk(segs)
    assert res["value"] == pytest.approx(3.0) and res["passed"] is True  # 2 s + 1 s = the limit
    res = checks.overtalk(segs, {"max_total_s": 2.5})
    assert res["passed"] is False and res["at_s"] == 3.0


def test_overtalk_and_talk_ratio_need_both_speakers():
    mono = [seg(0.0, "Здравствуйте", "unknown", end=5.0), seg(6.0, "Добрый день", "unknown", end=9.0)]
    assert checks.overtalk(mono) is None and checks.talk_ratio(mono) is None
    assert {r["code"] for r in checks.run(mono)} >= {"greeting", "closing", "silence"}
    assert not {"overtalk", "talk_ratio"} & {r["code"] for r in checks.run(mono)}


def test_talk_ratio_bounds():
    balanced = [seg(0.0, "а", end=6.0), seg(6.0, "б", "citizen", end=10.0)]
    res = checks.talk_ratio(balanced)
    assert res["passed"] is True and res["value"] == pytest.approx(0.6)
    monologue = [seg(0.0, "а", end=9.0), seg(9.0, "б", "citizen", end=10.0)]
    assert checks.talk_ratio(monologue)["passed"] is False
    silent_operator = [seg(0.0, "а", end=1.0), seg(1.0, "б", "citizen", end=10.0)]
    assert checks.talk_ratio(silent_operator)["passed"] is False
    assert checks.talk_ratio(monologue, {"max_share": 0.95})["passed"] is True


def test_speech_rate_in_words_per_minute():
    words = " ".join(["слово"] * 30)
    res = checks.speech_rate([seg(0.0, words, end=15.0)])  # 30 words in 15 s = 120 wpm
    assert res["passed"] is True and res["value"] == pytest.approx(120.0)
    fast = checks.speech_rate([seg(0.0, " ".join(["слово"] * 60), end=15.0)])  # 240 wpm
    assert fast["passed"] is False and "быстрее" in fast["detail"]
    slow = checks.speech_rate([seg(0.0, "слово " * 10, end=15.0)])  # 40 wpm
    assert slow["passed"] is False and "медленнее" in slow["detail"]
    assert checks.speech_rate([seg(0.0, "слово", end=3.0)]) is None  # too little speech to judge


# --- run() and configuration -----------------------------------------------------------------------

def test_no_speech_gives_only_greeting_and_closing_unsure():
    """Silence or hold music (status ``no_speech``): nothing was heard, so nothing is pinned on the
    operator — greeting and closing are «не уверено», not failed (a newcomer's report)."""
    for silent in ([], [{"start": 0.0, "end": 30.0, "speaker": "operator", "text": "  "}]):
        res = by_code(checks.run(silent))
        assert set(res) == {"greeting", "closing"}
        for code in ("greeting", "closing"):
            assert (res[code]["state"], res[code]["passed"]) == ("unsure", False), res[code]
            assert res[code]["detail"] == "в записи нет речи — проверить нельзя"
    # each check called alone that would fail only for lack of speech says the same
    for check in (checks.greeting, checks.closing, checks.address, checks.callback_number):
        assert check([])["state"] == "unsure" and "нет речи" in check([])["detail"]


def test_checks_can_be_disabled_except_greeting_and_closing():
    overrides = {code: {"enabled": False} for code in checks.CODES}
    assert [r["code"] for r in checks.run(GOOD_CALL, overrides)] == ["greeting", "closing"]


def test_overrides_change_one_key_and_keep_the_others():
    cfg = checks.config({"silence": {"max_s": 3}, "nonsense": {"x": 1}})
    assert cfg["silence"] == {"enabled": True, "max_s": 3}
    assert cfg["greeting"] == checks.DEFAULTS["greeting"] and "nonsense" not in cfg
    assert checks.DEFAULTS["silence"]["max_s"] == 10.0  # defaults untouched


def test_analyzer_is_cached():
    assert text_ru.morph() is text_ru.morph()


# --- recogniser errors -----------------------------------------------------------------------------

#: The opening of the simulated hot-water call as Whisper base heard it (stereo, 2 cores, int8):
#: «оператор Анна» became «операто, рано».
ASR_OPENING = [seg(0.66, "Горячая линия жилищинокому.", end=2.6),
               seg(2.94, "Унального хозяйства, операто, рано, здравствуйте, чем могу помочь.", end=8.7)]


def test_greeting_tolerates_a_garbled_long_word():
    res = checks.greeting(ASR_OPENING)
    assert res["passed"] is True and "«оператор …»" in res["detail"]
    # the detail names the configured phrase, not what the recogniser heard (issue 13 re-audit)
    assert "операто" not in res["detail"].replace("оператор", "") and "рано" not in res["detail"]
    assert checks.greeting(ASR_OPENING, {"fuzzy": 0})["passed"] is False  # exact lemmas only
    assert checks.greeting([seg(1.0, "Здраствуйте, горячая линия, оператор Анна.")])["passed"] is True


def test_near_misses_are_not_everything():
    assert checks.greeting([seg(1.0, "Здравствуйте, горячая линия, операция Анна.")])["passed"] is False
    assert checks.closing([seg(0.0, "Алло."), seg(9.0, "Всего.")])["passed"] is False
    # forbidden phrases never match loosely: «корочке» is a near miss of «короче», not the word
    assert checks._similar("корочке", "короче", 0.85)
    assert checks.forbidden_phrases([seg(1.0, "Сыр с корочке сверху.")])["passed"] is True
    assert "fuzzy" not in checks.DEFAULTS["forbidden_phrases"]


def test_details_quote_no_word_of_the_transcript():
    """Issue 13 re-audit: the checks' details (stored, shown to reviewers, in the API) hold only the
    phrases of the configuration. On a mono call (speaker ``unknown``) the words after «меня зовут» or a
    fuzzy match can be the citizen's: «меня зовут Ковальчук», «операто рано» were quoted before."""
    segs = [seg(0.5, "Горячая линия ЖКХ, здравствуйте, меня зовут Ковальчук Зинаида, у меня течёт крыша.", "unknown"),
            seg(5.0, "Адрес улица Перекопская, квартира девять, телефон для связи прежний.", "unknown"),
            seg(9.0, "Успокойтесь пожалуйста, Зинаида.", "unknown"),
            seg(14.0, "Всего доброго, Зинаида Петровна.", "unknown")]
    res = {r["code"]: r for r in checks.run(segs)}
    words = {w for _, w in [(0, w) for s in segs for w in text_ru.WORD.findall(s["text"].lower())]}
    configured = {w for phrases in (checks.GREETINGS, checks.LINE_NAMES, checks.OPERATOR_NAMES, checks.CLOSINGS,
                                    checks.ADDRESS_PHRASES, checks.CALLBACK_PHRASES, checks.FORBIDDEN_PHRASES)
                  for p in phrases for w in text_ru.WORD.findall(p)}
    for code in ("greeting", "closing", "address", "callback_number", "forbidden_phrases"):
        quoted = set(text_ru.WORD.findall(res[code]["detail"].lower()))
        leaked = (quoted & words) - configured
        assert not leaked, (code, leaked, res[code]["detail"])
    assert res["greeting"]["passed"] and "«меня зовут …»" in res["greeting"]["detail"]
    for name in ("ковальчук", "зинаида", "перекопская", "петровна"):
        assert all(name not in r["detail"].lower() for r in res.values())


def test_details_write_figures_with_the_russian_decimal_comma():
    """A newcomer's report: details said «на 17.8 с», «7.4 с» while the page writes «55,5 с». The
    details are Russian text: seconds, limits and probabilities take the decimal comma, as the page's
    ``number`` filter writes durations (:func:`crm.i18n.format_number`)."""
    import re

    pause = [seg(0.0, "Здравствуйте, горячая линия, оператор Анна.", end=2.6),
             seg(20.4, "Всего доброго.", end=22.0)]
    res = checks.silence(pause, {"max_s": 7.5})
    assert res["detail"] == "пауза 17,8 с на 2,6 с (допустимо до 7,5 с)"
    assert checks.silence(pause)["detail"] == "пауза 17,8 с на 2,6 с (допустимо до 10 с)"
    doubtful = [seg(0.0, "Спасибо, до свидания.", end=7.4)]
    doubtful[0]["words"] = [{"start": 0.0, "end": 1.0, "word": "Спасибо,", "probability": 0.9},
                            {"start": 5.4, "end": 6.0, "word": "до", "probability": 0.3},
                            {"start": 6.0, "end": 7.4, "word": "свидания.", "probability": 0.9}]
    closing = checks.closing(doubtful)
    assert closing["detail"] == ("прощание «до свидания» на 5,4 с; распознано неуверенно (вероятность 0,30) — "
                                 "прослушайте запись")
    for r in checks.run(GOOD_CALL) + [res, closing]:
        assert not re.search(r"\d\.\d", r["detail"]), r
