"""Search through blind indexes: every phone spelling finds the same citizen, foreign numbers and
garbage are clear errors, the surname + building index, and lookups decrypt only the candidates."""
from __future__ import annotations

import pytest

from crm.citizens import services as citizens
from crm.db import db
from crm.security import blind_index, crypto
from tests.factories import CitizenFactory

PHONE = "8 912 345-67-89"


def test_every_phone_spelling_finds_the_same_citizen(ctx):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    CitizenFactory(full_name="Другой Человек", phone="+7 903 111-22-33", sadovaya=True)
    for spelling in ("8 912 345-67-89", "+7 (912) 345 67 89", "89123456789", "9123456789", "+79123456789",
                     "8-912-345-67-89", " +7 912 345 6789 "):
        assert [x.id for x in citizens.find_by_phone(spelling)] == [c.id], spelling


@pytest.mark.parametrize("bad,message", [("+44 20 7946 0958", "российские"), ("112", "короткий"),
                                         ("hello", "не номер"), ("", "укажите")])
def test_foreign_and_garbage_numbers_are_clear_errors(ctx, bad, message):
    with pytest.raises(citizens.CitizenError, match=message):
        citizens.find_by_phone(bad)


def test_api_answers_400_for_a_bad_phone(ctx, make_user, api_token):
    headers = api_token(make_user("operator"))
    resp = ctx.test_client().get("/api/v1/citizens", query_string={"phone": "+44 20 7946 0958"}, headers=headers)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_phone"


def test_surname_and_building_index(ctx):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    CitizenFactory(full_name="Петров Олег", phone="+7 903 111-22-34", address="ул. Лесная, д. 2", apartment="17")
    CitizenFactory(full_name="Сидоров Иван", phone="+7 903 111-22-35", sadovaya=True)
    assert c.name_building_bidx and c.name_building_bidx != c.surname_bidx
    for name, address in (("Петров", "ул. Садовая, д. 5"), ("ПЕТРОВ И.С.", "ул Садовая д 5"),
                          ("петров", "Ул. Садовая,  д.5")):
        found = citizens.find_by_name_and_building(name, address)
        assert [x.id for x in found] == [c.id], (name, address)
    assert citizens.find_by_name_and_building("Петров", "ул. Садовая, д. 7") == []


def test_a_lookup_decrypts_only_its_candidates(ctx, monkeypatch):
    ids = [CitizenFactory(full_name=f"Житель{i}", phone=f"+7 912 500-{i // 100:02d}-{i % 100:02d}", sadovaya=True).id
           for i in range(40)]
    db.session.expire_all()
    crypto.clear_caches()
    opened = []
    real = crypto.open_field
    monkeypatch.setattr(crypto, "open_field", lambda *a, **k: opened.append(1) or real(*a, **k))
    found = citizens.find_by_phone("+7 912 500-00-07")
    assert [c.id for c in found] == [ids[7]]
    bits = blind_index.configured_bits(ctx.config)
    assert len(opened) <= 3 + 40 / 2 ** bits * 10  # the true match and a rare truncation collision


def test_a_lookup_reads_its_candidates_keys_in_one_statement_outside_a_transaction(ctx):
    """Cold data-key cache: the key store sees one SELECT for all candidates, in autocommit (no
    BEGIN/ROLLBACK round trips of its own)."""
    import sqlalchemy as sa

    ids = [CitizenFactory(full_name=f"Житель{i}", phone=f"+7 912 600-{i // 100:02d}-{i % 100:02d}", sadovaya=True).id
           for i in range(30)]
    db.session.expire_all()
    crypto.clear_caches()
    seen = []

    def in_transaction(conn) -> bool:
        dbapi = conn.connection.dbapi_connection
        return not dbapi.autocommit if conn.dialect.name == "postgresql" else dbapi.in_transaction

    def before(conn, cursor, statement, params, context, executemany):
        seen.append((statement.split()[0].upper(), in_transaction(conn)))

    eng = db.engines["keystore"]
    sa.event.listen(eng, "before_cursor_execute", before)
    try:
        found = citizens.find_by_phone("+7 912 600-00-11")
    finally:
        sa.event.remove(eng, "before_cursor_execute", before)
    assert [c.id for c in found] == [ids[11]]
    assert seen == [("SELECT", False)]
