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


@pytest.mark.parametrize("text", [
    "отзыв согласия, заявление от 01.05.2026",
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
