"""crm.text_ru.personal_values: what a free-text note on a record that outlives the citizen's data
(the DPO's notes, erasure reasons, alert comments) must not hold (issue 13, point 7)."""
from __future__ import annotations

import pytest

from crm.text_ru import capitalised_forms, personal_values


@pytest.mark.parametrize("text, found", [
    ("Просит выписку, тел. 8 912 345-67-89", ["номер телефона"]),
    ("перезвонить на +7 (912) 345 67 89", ["номер телефона"]),
    ("ответ отправлен на aglaya@example.ru", ["адрес эл. почты"]),
    ("проживает: ул. Садовая, д. 5, кв. 12", ["адрес"]),
    ("переулок Кленовый 3", ["адрес"]),
    ("Заявление Иванова И. И.", ["ФИО"]),
    ("со слов И.И. Иванова", ["ФИО"]),
    ("звонил Иван Петрович", ["ФИО"]),
    ("Сидорова Анна Ильинична, anna@mail.ru, 89123456789", ["номер телефона", "адрес эл. почты", "ФИО"]),
])
def test_personal_values_are_found(text, found):
    assert personal_values(text) == found


#: Address spellings the first heuristic let through (re-audit): no space after the dot, the street type
#: after the name, the words in other case forms, house and apartment without a street word.
ADDRESS_SPELLINGS = [
    "ул. Ленина, д. 5, кв. 12",
    "ул.Ленина,5-12",
    "УЛ. ЛЕНИНА, Д. 5",
    "Ленина ул., 5",
    "Ленинский пр-т, 5",
    "пр.Мира 10",
    "просп. Мира, 1",
    "ш.Энтузиастов, 3",
    "Ленинградское ш., 5",
    "наб.реки Фонтанки 20",
    "б-р Рокоссовского",
    "пер.Чистый, 3",
    "проживает на улице Ленина",
    "на Садовой улице",
    "по проспекту Мира",
    "в переулке Гоголя",
    "в доме 5 по Садовой",
    "в квартире 12",
    "квартира 12",
    "кв.12",
    "кв-ра 5",
    "корп.2",
    "Садовая, 5, стр. 1",
    "строение 1",
    "Садовая 5-12",
    "по адресу: Садовая, 5",
]


@pytest.mark.parametrize("text", ADDRESS_SPELLINGS)
def test_addresses_in_any_spelling_are_found(text):
    assert personal_values(text) == ["адрес"]


@pytest.mark.parametrize("text", [
    "8.912.345.67.89",  # dots: phonenumbers' matcher finds it, the digit rule did not
    "перезвонить по № 89123456789",  # after «№», yet a valid Russian mobile number
    "тел: 8 (912) 3456789",
])
def test_phones_in_any_spelling_are_found(text):
    assert personal_values(text) == ["номер телефона"]


@pytest.mark.parametrize("text", [
    "отзыв согласия, заявление от 01.05.2026",
    "улица не убрана, жалоба на УК",  # a street word, no name or number beside it
    "см. стр. 2 заявления",  # «стр.» is a page here
    "ответ к 5 числу",
    "ответ направлен по адресу регистрации заказным письмом",
    "переданы сведения в 3 адреса",
    "подрядчик ООО «Дом-Сервис», дом культуры",
    "Домофон не работает, и пр. документы",
    "архив записей за 2024-2025 годы",
    "продлено на 5 рабочих дней: запрошены сведения у АДС и РСО",
    "вх. 12/3 от 3 марта; п. 3 ч. 1 ст. 6 152-ФЗ",
    "заявление от 2026-05-01 по 152-ФЗ ст. 14 ч. 3",
    "Запрос по почте, вх. № 1234567",
    "запрошены архивные записи звонков из резервного хранилища за 2024 год",
    "согласно п. 5 ст. 21 ч. 5; ночная смена АДС",
    "",
    None,
])
def test_ordinary_notes_pass(text):
    assert personal_values(text) == []


def test_capitalised_forms_give_a_surname_in_its_normal_form():
    assert {"шредеров", "шредерова"} <= capitalised_forms("Заявление Шредеровой по почте")
    assert "почте" not in capitalised_forms("Заявление Шредеровой по почте")


# --- re-audit of issue 13: names in other spellings, birth dates, documents; appeal numbers ---------------

@pytest.mark.parametrize("text, found", [
    ("звонил Иван Петров", ["ФИО"]),  # a first name and a surname, no patronymic
    ("со слов Петрова Ивана", ["ФИО"]),
    ("ПЕТРОВ ИВАН, просит выписку", ["ФИО"]),  # in capitals
    ("ИВАНОВ И.И. просит выписку", ["ФИО"]),
    ("ИВАН ПЕТРОВИЧ звонил повторно", ["ФИО"]),
    ("letter from Ivan Petrov", ["ФИО"]),  # Latin
    ("дата рождения: со слов заявителя 1 февраля 1980 года", ["дата рождения"]),
    ("родилась, по её словам, 01.02.1980", ["дата рождения"]),
    ("заявитель 1980 г.р.", ["дата рождения"]),
    ("паспорт серия 45 10, выдан ОВД района, номер 123456", ["номер документа"]),
    ("предъявлен паспорт: серия 4510 № 123456", ["номер документа"]),
    ("СНИЛС: первые цифры 123-456, далее 789-01", ["номер документа"]),
])
def test_names_birth_dates_and_documents_are_found(text, found):
    assert personal_values(text) == found


@pytest.mark.parametrize("text", [
    "по обращению 2026-000042 ответ направлен заказным письмом",  # an appeal's number is no phone
    "обращения 2026-000042 и 2025-123456 объединены",
    "паспорт гражданина РФ предъявлен лично",  # the kind of document, no number
    "личность подтверждена паспортом, заявление от 01.05.2026",
    "ответ по почте России, жалоба на УК",
    "заявление по 152-ФЗ ст. 14 ч. 3, вх. № 1234567",
])
def test_appeal_numbers_and_document_kinds_pass(text):
    assert personal_values(text) == []


@pytest.mark.parametrize("latin, cyrillic", [
    ("Shrederova", "шредерова"),  # ICAO, ГОСТ 7.79-B, BGN alike
    ("Iureva", "юрьева"),  # ICAO drops «ь»
    ("Yur'eva", "юрьева"),  # МВД 310
    ("Czoj", "цой"),  # ГОСТ 7.79-B
    ("Tsoy", "цой"),
    ("Solovyev", "соловьев"),
    ("Khokhlova", "хохлова"),
])
def test_latin_names_are_read_back(latin, cyrillic):
    from crm.text_ru import latin_readings
    assert cyrillic in latin_readings(latin)


# --- second re-audit of issue 13: one initial, spelled-out e-mails, a street without its word ------------

@pytest.mark.parametrize("text, found", [
    ("Петрова М.", ["ФИО"]),  # a surname with one initial
    ("заявитель Петрова М. просила перезвонить", ["ФИО"]),
    ("со слов М. Петровой", ["ФИО"]),
    ("ответ на ivan (at) mail.ru", ["адрес эл. почты"]),  # spelled to get past a filter
    ("почта ivan собака mail ru", ["адрес эл. почты"]),  # as dictated
    ("ivan[at]mail.ru", ["адрес эл. почты"]),
    ("ivan at mail dot ru", ["адрес эл. почты"]),
    ("ivan @ mail . ru", ["адрес эл. почты"]),
    ("Ленина 5", ["адрес"]),  # a street's name and a house, no street word
    ("живёт на Ленина, 5а", ["адрес"]),
    ("ул Ленина д5 кв 3", ["адрес"]),
    ("на Тверской 12 кв 3", ["адрес"]),
])
def test_names_emails_and_addresses_in_other_spellings_are_found(text, found):
    assert personal_values(text) == found


@pytest.mark.parametrize("text", [
    "Приложение А. к акту",  # one capital letter after an ordinary word is no initial
    "Вариант Б. согласован с УК",
    "Петрова 5 раз звонила",  # a number of times, not a house (the surname alone is checked per citizen)
    "первая 3 недели без воды",
    "ответ через 10 дней, к 15 числу",
    "повторное обращение 2 раза за месяц",
    "Срочная 1 заявка передана в АДС",
    "ответ направлен по электронной почте, собака у подъезда не мешает",
    "meeting at noon, see attachment",
    "обращение закрыто. А. согласовал продление",
])
def test_ordinary_sentences_still_pass(text):
    assert personal_values(text) == []
