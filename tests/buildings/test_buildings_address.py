"""crm.buildings.address.normalize_address: one key for the many spellings of one address, distinct
keys for distinct buildings (issue 14, point 2)."""
from __future__ import annotations

import unicodedata

import pytest

from crm.buildings.address import normalize_address

SAME = [
    # (spellings of one building)
    ["г. Москва, ул. Ленина, д. 5, к.2", "Москва, улица Ленина, дом 5, корпус 2", "МОСКВА УЛ ЛЕНИНА Д5К2",
     "Москва, Ленина ул., д.5 корп.2", "  москва ,  ул.ленина ,д. 5 , корп. 2 ", "123456, г Москва, ул Ленина 5 к 2",
     "г.Москва, ул. Ленина, д. № 5, корп. 2, кв. 17", "Москва, ул. Ленина, дом 5, корпус 2, квартира 3"],
    ["ул. Ленина, д. 5а", "улица Ленина, дом 5 А", "ул Ленина 5-а", "ул. Ленина, д.5a", "УЛ. ЛЕНИНА, Д. 5А"],
    ["пр-т Мира, д. 3, стр. 1", "проспект Мира 3 строение 1", "Мира пр-т, 3 с.1", "пр. Мира, д.3, с 1",
     "просп. Мира, дом 3, стр.1"],
    ["пер. Огородный, 7", "переулок огородный д 7", "Огородный пер., д. 7"],
    ["ул. Пётра Алексеева, 12", "улица Петра Алексеева, дом 12", "ул. ПЁТРА АЛЕКСЕЕВА д.12"],
    ["ул. Ленина, 5/1", "улица Ленина, дом 5/1"],
    # Unicode forms: decomposed й and ё, full-width digits, a non-breaking space
    ["ул. Майская, д. 9", unicodedata.normalize("NFD", "улица Майская, дом 9"), "ул.\u00a0Майская,\u00a0д.\uff19"],
    [unicodedata.normalize("NFD", "ул. Зелёная, 1"), "ул. Зеленая, 1", "ул.Зелёная д.1"],
]

DISTINCT = ["ул. Ленина, 5", "ул. Ленина, 5а", "ул. Ленина, 5б", "ул. Ленина, 15", "ул. Ленина, 5 к. 2",
            "ул. Ленина, 5 стр. 2", "ул. Ленина, 5/1", "ул. Ленина, 51", "ул. Ленина, 55", "пер. Ленина, 5",
            "пр-т Ленина, 5", "ул. Ленина, 5 к. 1", "ул. Ленинa, 6"]


@pytest.mark.parametrize("spellings", SAME, ids=[s[0] for s in SAME])
def test_spellings_of_one_building_have_one_key(spellings):
    keys = {normalize_address(s) for s in spellings}
    assert len(keys) == 1, keys
    assert keys.pop()  # not empty


def test_distinct_buildings_do_not_collide():
    keys = [normalize_address(a) for a in DISTINCT]
    assert len(set(keys)) == len(keys), keys


def test_the_key_reads_as_expected():
    assert normalize_address("г. Москва, ул. Ленина, д. 5, к.2") == "москва ул ленина 5 корп 2"
    assert normalize_address("Ленина ул., 5-А") == "ул ленина 5а"
    assert normalize_address("ул. Ленина, 5 к") == "ул ленина 5к"  # a letter «к», not «корпус»


def test_empty_and_apartment_only_give_an_empty_key():
    assert normalize_address("") == ""
    assert normalize_address(None) == ""
    assert normalize_address(" , . ; ") == ""
    assert normalize_address("кв. 5") == ""
