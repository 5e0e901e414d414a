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
