"""Check details of a mono call (a new user's report): «оператор уточнил адрес («адрес») на 8.0 с» while
the word is said at about 17 s: 8.0 was the start of the long merged segment. A check now reports the
matched word's own start from the segment's ``words`` (the segment's start without words), and the call
page's hint seeks the player to that word. And a failed detail says what is missing first and then,
labelled apart («Найдено: …»), what was found, so the finding does not read as part of the failure.

Unit tests (no app) and the call page on PostgreSQL + Redis."""
from __future__ import annotations

import re

import pytest

from crm.qa import checks


def timed(start: float, text: str, step: float = 0.5, speaker: str = "unknown", p: float = 0.95) -> dict:
    """A segment whose ``words`` are its text's words, one every ``step`` seconds from ``start``."""
    ws = text.split()
    return {"start": start, "end": round(start + step * len(ws), 2), "speaker": speaker, "channel": 0, "text": text,
            "words": [{"start": round(start + i * step, 2), "end": round(start + (i + 1) * step, 2), "word": w, "p": p}
                      for i, w in enumerate(ws)]}


# A merged mono segment from 8.0 s, a word every 0.5 s: «адрес» is its 21st word (18.0 s), then the
# callback question and the forbidden «короче» later still.
LONG = ("Понятно, у вас нет горячей воды уже второй день, и в подъезде тоже жалуются соседи, "
        "я записываю. Назовите, пожалуйста, ваш адрес полностью. И номер телефона для связи, если можно. "
        "Короче, мы передадим заявку.")
OPENING = "Горячая линия ЖКХ, оператор Анна, здравствуйте."
FAREWELL = "Спасибо, всего доброго."


def word_start(seg: dict, word: str) -> float:
    return next(w["start"] for w in seg["words"] if w["word"].strip(",.?").lower() == word)


def mono_call() -> list[dict]:
    return [timed(0.0, OPENING), timed(8.0, LONG), timed(48.0, FAREWELL)]


def by_code(results):
    return {r["code"]: r for r in results}


def test_a_check_reports_the_matched_word_own_time_not_the_segment_start():
    segs = mono_call()
    long = segs[1]
    assert word_start(long, "адрес") == pytest.approx(18.0)
    got = by_code(checks.run(segs))
    assert got["address"]["detail"] == "оператор уточнил адрес («адрес») на 18,0 с"
    assert got["address"]["at_s"] == pytest.approx(18.0)
    assert got["callback_number"]["at_s"] == pytest.approx(word_start(long, "телефона"))
    assert f"на {word_start(long, 'телефона'):.1f} с".replace(".", ",") in got["callback_number"]["detail"]
    assert got["forbidden_phrases"]["at_s"] == pytest.approx(word_start(long, "короче"))
    assert f"«короче» на {word_start(long, 'короче'):.1f} с".replace(".", ",") in got["forbidden_phrases"]["detail"]
    # the farewell: «всего» is the second word of the last segment
    assert got["closing"]["at_s"] == pytest.approx(48.5) and "на 48,5 с" in got["closing"]["detail"]
    # the greeting points at «здравствуйте» (the 6th word), where the greeting is said
    assert got["greeting"]["at_s"] == pytest.approx(2.5)


def test_without_words_the_segment_start_is_kept():
    segs = [{k: v for k, v in s.items() if k != "words"} for s in mono_call()]
    got = by_code(checks.run(segs))
    assert got["address"]["at_s"] == 8.0 and "на 8,0 с" in got["address"]["detail"]
    assert got["closing"]["at_s"] == 48.0 and got["greeting"]["at_s"] == 0.0


def test_narration_address_word_reports_its_own_time_labelled_as_found():
    seg = timed(4.0, "Она пошла через улицу и там упала.")
    got = checks.address([seg])
    assert got["state"] == "failed" and got["at_s"] == pytest.approx(5.5)
    assert got["detail"] == ("адрес не уточнён: оператор не спросил и не повторил адрес. "
                             "Найдено: слово «улица» на 5,5 с, но не в вопросе и без дома или номера")


def test_failed_details_say_what_is_missing_first_then_what_was_found():
    script = [{"number": 3, "stage": "closing", "text": "Назовите номер обращения.", "phrases": ["номер обращения"],
               "script": "Общий"}]
    segs = [timed(0.0, OPENING, speaker="operator"), timed(10.0, "Понятно, я записала.", speaker="operator"),
            timed(50.0, "Спасибо, всего доброго.", speaker="operator")]
    closing = by_code(checks.run(segs, script_lines=script))["closing"]
    assert closing["state"] == "failed"
    assert closing["detail"] == ("по сценарию не сказана строка 3 сценария «Общий»: Назовите номер обращения. "
                                 "Найдено: прощание «всего доброго» на 50,5 с")
    greet = checks.greeting([timed(0.0, "Здравствуйте, горячая линия.", speaker="operator")])
    assert greet["detail"] == "оператор не назвал своё имя. Найдено: приветствие «здравствуйте»"
    greet = checks.greeting([timed(0.0, "Горячая линия, оператор Анна.", speaker="operator")])
    assert greet["detail"] == "нет приветствия в первые 20 с. Найдено: представление «горячая линия», «оператор …»"
    # a mono call: the note on speakers is a sentence of its own, not part of what was found
    mono = by_code(checks.run([timed(0.0, "Здравствуйте, горячая линия."), timed(9.0, "Всё понятно, спасибо.")]))
    assert mono["greeting"]["state"] == "unsure"
    assert mono["greeting"]["detail"] == ("оператор не назвал своё имя. Найдено: приветствие «здравствуйте»"
                                          + checks.NOT_SEPARATED_NOTE)
    assert checks.NOT_SEPARATED_NOTE.startswith(". Говорящие")


def test_the_call_page_hint_seeks_the_player_to_the_word(ctx, client, make_user, login, api_token):
    from tests.factories import CallFactory, CitizenFactory

    op, sup = make_user("operator"), make_user("supervisor")
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), segments=mono_call())
    page = login(sup).get(f"/calls/{call.id}").get_data(as_text=True)
    hint = re.search(r'<div class="qa-hint[^"]*" data-code="address"[^>]*>', page)
    assert hint, page
    assert 'data-seek="18.0"' in hint.group(0), hint.group(0)
    # the API keeps its fields and gives the word's time in the detail
    body = client.get(f"/api/v1/calls/{call.id}", headers=api_token(sup)).get_json()
    address = next(c for c in body["qa_checks"] if c["code"] == "address")
    assert {"code", "passed", "detail"} <= set(address) and address["detail"].endswith("на 18,0 с")
