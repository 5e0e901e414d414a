"""Numbers as people write them (issue 18, point 2): :mod:`crm.calls.transcription.numbers`, the
normaliser the stored transcript goes through, and the benchmark's number-aware WER normalisation."""
from __future__ import annotations

import pytest

from crm.calls.transcription.numbers import normalise, wer_normalise


@pytest.mark.parametrize("said, written", [
    # cardinals, compounds, case forms
    ("двенадцать", "12"),
    ("двести тридцать пять", "235"),
    ("двадцать два", "22"),
    ("сорок", "40"),
    ("девяносто девять", "99"),
    ("около пятистах метров", "около 500 метров"),
    ("у двухсот жильцов", "у 200 жильцов"),
    ("с тремя детьми", "с 3 детьми"),
    ("до восьмидесяти градусов", "до 80 градусов"),
    # тысяча, миллион
    ("тысяча", "1000"),
    ("тысячу рублей", "1000 рублей"),
    ("тысяча двести рублей", "1200 рублей"),
    ("пять тысяч", "5000"),
    ("сто тысяч", "100000"),
    ("два миллиона триста тысяч", "2300000"),
    ("тысячи людей", "тысячи людей"),  # «thousands»: no one number
    # ноль
    ("ноль", "0"),
    ("ноль пять", "0 5"),
    # one / одна / один stay words alone, become digits after a house, apartment, entrance, number
    ("один вопрос", "один вопрос"),
    ("одна минута", "одна минута"),
    ("ни одного раза", "ни одного раза"),
    ("квартира один", "квартира 1"),
    ("в доме один", "в доме 1"),
    ("двадцать одна квартира", "21 квартира"),
    # numbers next to numbers: a compound only by place value
    ("восемь девятьсот", "8 900"),
    ("два три раза", "2 3 раза"),
    ("семь восемь девять", "7 8 9"),
    ("пять сто", "5 100"),
    ("квартира двенадцать пять человек", "квартира 12 5 человек"),
    # words that only look like numbers
    ("обеспечить семью", "обеспечить семью"),
    ("второе блюдо", "второе блюдо"),
    ("первый раз", "первый раз"),
    ("добрый день", "добрый день"),
])
def test_cardinals_and_non_numbers(said, written):
    assert normalise(said) == written


@pytest.mark.parametrize("said, written", [
    ("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "8 916 123-45-67"),
    ("плюс семь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "+7 916 123-45-67"),
    ("восемь девять один шесть один два три четыре пять шесть семь", "8 916 123-45-67"),
    ("восемь, девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь", "8 916 123-45-67"),
    ("мой номер 812-345-6789 записали?", "мой номер 812 345-67-89 записали?"),  # Whisper's own formatting
    ("8 916 1234567", "8 916 123-45-67"),
    ("89161234567", "8 916 123-45-67"),
    ("+7 (916) 123 45 67", "+7 916 123-45-67"),
    ("телефон девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "телефон 916 123-45-67"),
    ("сто двадцать три сорок пять шестьдесят семь", "123-45-67"),
    ("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь, квартира пять",
     "8 916 123-45-67, квартира 5"),
])
def test_phone_numbers(said, written):
    assert normalise(said) == written


@pytest.mark.parametrize("text, written", [
    ("заявка 2026-000042", "заявка 2026-000042"),  # an appeal's number is no phone
    ("в 2024-2025 годах", "в 2024-2025 годах"),
    ("с 01.02.2026 по 05.02.2026", "с 01.02.2026 по 05.02.2026"),
    ("сто двадцать три сорок пять", "123 45"),  # five digits: no phone
])
def test_not_phones(text, written):
    assert normalise(text) == written


@pytest.mark.parametrize("said, written", [
    ("дом пять квартира двенадцать", "дом 5, квартира 12"),
    ("улица Ленина дом пять корпус два квартира двенадцать", "улица Ленина дом 5, корпус 2, квартира 12"),
    ("дом пять этажей", "дом 5 этажей"),
    ("на третьем этаже", "на 3-м этаже"),
    ("в третьем подъезде", "в 3-м подъезде"),
    ("третья секция", "3-я секция"),
    ("третий подъезд", "3-й подъезд"),
    ("пятое число", "5-е число"),
    ("пятого числа", "5-го числа"),
])
def test_addresses_and_ordinals(said, written):
    assert normalise(said) == written


@pytest.mark.parametrize("said, written", [
    ("пятого марта", "5 марта"),
    ("первое мая", "1 мая"),
    ("двадцать первого декабря две тысячи двадцать пятого года", "21 декабря 2025 года"),
    ("тридцатого апреля", "30 апреля"),
    ("в две тысячи двадцать шестом году", "в 2026 году"),
    ("двухтысячного года", "2000 года"),
    ("приходите в десять тридцать", "приходите в 10:30"),
    ("к девяти ноль пять", "к 9:05"),
    ("с восьми сорока пяти", "с 8:45"),
    ("в десять утра", "в 10 утра"),
    ("в два три раза", "в 2 3 раза"),  # three is no minutes
    ("в двадцать пять шестнадцать", "в 25 16"),  # no 25th hour
])
def test_dates_and_times(said, written):
    assert normalise(said) == written


@pytest.mark.parametrize("text", [
    "Здравствуйте, дом пять квартира двенадцать, телефон восемь девятьсот шестнадцать сто двадцать три сорок пять "
    "шестьдесят семь, приходите пятого марта в десять тридцать.",
    "Горячая линия ЖКХ, оператор Анна.",
    "",
])
def test_idempotent_and_leaves_other_text(text):
    once = normalise(text)
    assert normalise(once) == once
    if text.startswith("Здравствуйте"):
        assert once == ("Здравствуйте, дом 5, квартира 12, телефон 8 916 123-45-67, приходите 5 марта в 10:30.")
    elif text:
        assert once == text


def test_wer_normalisation_treats_words_and_digits_alike():
    assert wer_normalise("Двенадцать") == wer_normalise("12") == "12"
    assert (wer_normalise("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь")
            == wer_normalise("8-916-123-45-67") == wer_normalise("89161234567") == "89161234567")
    assert wer_normalise("один вопрос") == wer_normalise("1 вопрос") == "1 вопрос"
    assert wer_normalise("Квартира — двенадцать, ёлки!") == "квартира 12 елки"
    assert wer_normalise(None) == ""


def test_map_points_raw_words_at_their_digits():
    """The stored text is normalised while the words stay raw: the map says which stretch of the text
    each raw word became (used to mark doubtful words and to mask words under a masked span)."""
    from crm.calls.transcription.numbers import normalise_map, raw_to_out

    raw = "Пётр, дом пять квартира двенадцать, тел восемь девятьсот шестнадцать сто двадцать три сорок пять " \
          "шестьдесят семь."
    out, pieces = normalise_map(raw)
    assert out == "Пётр, дом 5, квартира 12, тел 8 916 123-45-67."

    def became(word):
        a = raw.index(word)
        lo, hi = raw_to_out(pieces, a, a + len(word))
        return out[lo:hi]

    assert became("Пётр") == "Пётр"
    assert became("пять") == "5"
    assert became("квартира") == "квартира"
    assert became("двенадцать") == "12"
    assert became("шестнадцать") == became("восемь") == "8 916 123-45-67"
