"""A new user's report (a mono call attached to an appeal): the supervisor saw «Вспект мира [адрес],
последний ятаж» where the citizen said «Проспект Мира, дом двенадцать, квартира сорок два», and the
transcript search for «мира» or «вспект» found the call. Street types misheard by Whisper are
recognised by their tails, and the identifiers the system already holds of the call's citizen are
masked wherever they occur. Real PostgreSQL and Redis; the Whisper model is not run."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("text, shown", [
    ("Вспект мира, дом 12, квартира 42, последний ятаж", "[адрес], последний ятаж"),
    ("вспект мира дом 12", "[адрес]"),
    ("спект мира, дом 12", "[адрес]"),
    ("Праспект Мира, 12", "[адрес]"),
    ("живу на пиреулок Тихий", "живу на [адрес]"),
    ("плошадь Ленина, дом 3", "[адрес]"),
    # ordinary words that end like a street type stay
    ("аспект проблемы в том, что воды нет", "аспект проблемы в том, что воды нет"),
    ("перспектива ремонта крыши", "перспектива ремонта крыши"),
    ("конспект разговора и респект вам", "конспект разговора и респект вам"),
    ("в перспекте мира и дружбы", "в перспекте мира и дружбы"),
    ("с лица дома облетает краска", "с лица дома облетает краска"),
])
def test_misheard_street_types_are_masked_and_ordinary_words_stay(text, shown):
    from crm import text_ru

    assert text_ru.mask_text(text, text_ru.personal_spans(text, speaker="unknown")) == shown


# --- numbers typed as words in the transcript search --------------------------------------------------

DEADLINE_SEGMENT = {"start": 30.0, "end": 34.0, "speaker": "operator", "channel": 0,
                    "text": "Ответ придёт в течение десяти рабочих дней.",
                    "words": [{"start": 30.0 + i * 0.5, "end": 30.4 + i * 0.5, "word": w, "probability": 0.9}
                              for i, w in enumerate("Ответ придёт в течение десяти рабочих дней.".split())]}


@pytest.mark.parametrize("phrase", ["10 рабочих дней", "десять рабочих дней", "в течение десяти",
                                    "в течение 10 рабочих дней", "десяти рабочих"])
def test_search_finds_a_number_typed_in_digits_or_in_words(ctx, make_user, phrase):
    from crm.calls import search
    from tests.factories import CallFactory, CitizenFactory

    sup = make_user("supervisor")
    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=True),
                       segments=[dict(DEADLINE_SEGMENT)])
    hits = search.search_transcripts(phrase, user=sup).hits
    assert [h.call_id for h in hits] == [call.id]
    assert "10 рабочих дней" in hits[0].snippet
    assert hits[0].exact  # the word times of «десяти» carry over to «10»
    # a different number does not find it
    assert search.search_transcripts("одиннадцать рабочих дней", user=sup).hits == []
