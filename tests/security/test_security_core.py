"""Envelope encryption, ciphertext binding, blind indexes and the access-log chain on the real database."""
from __future__ import annotations

import pytest
from sqlalchemy import text, update

from crm.citizens import services as citizens
from crm.citizens.models import Citizen
from crm.db import db
from crm.security import audit, crypto
from crm.security.models import AccessLogEntry, DataKey
from tests.conftest import tamper
from tests.factories import CitizenFactory

PHONE = "8 912 345-67-89"


def test_fields_round_trip_and_are_ciphertext(ctx):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    db.session.expire_all()
    again = db.session.get(Citizen, c.id)
    assert again.full_name == "Петров Иван Сергеевич"
    assert again.phone == "+79123456789"
    raw = db.session.execute(text("SELECT full_name_enc, phone_enc FROM citizens")).one()
    assert "Петров".encode() not in bytes(raw[0]) and b"9123456789" not in bytes(raw[1])
    assert bytes(raw[0])[0] == crypto.FORMAT_V1


def test_ciphertext_copied_to_another_row_does_not_decrypt(ctx):
    a = CitizenFactory(phone=PHONE, sadovaya=True)
    b = CitizenFactory(full_name="Сидорова Анна Павловна", phone="+7 903 111-22-33", sadovaya=True)
    db.session.execute(update(Citizen).where(Citizen.id == b.id).values(full_name_enc=a.full_name_enc))
    db.session.commit()
    db.session.expire_all()
    crypto.clear_caches()
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Citizen, b.id).full_name


def test_ciphertext_moved_to_another_column_does_not_decrypt(ctx):
    a = CitizenFactory(phone=PHONE, sadovaya=True)
    db.session.execute(update(Citizen).where(Citizen.id == a.id).values(address_enc=a.full_name_enc))
    db.session.commit()
    db.session.expire_all()
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Citizen, a.id).address


def test_encrypted_attribute_refuses_sql_comparison(ctx):
    with pytest.raises(TypeError):
        db.select(Citizen).where(Citizen.phone == "+79123456789")


def test_blind_index_finds_every_spelling_and_filters_false_positives(ctx):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    CitizenFactory(full_name="Другой Человек", phone="+7 903 111-22-33", sadovaya=True)
    for spelling in ("8 912 345-67-89", "+7 (912) 345 67 89", "89123456789", "9123456789"):
        assert [x.id for x in citizens.find_by_phone(spelling)] == [c.id]
    with pytest.raises(citizens.CitizenError):
        citizens.find_by_phone("+44 20 7946 0958")


def test_shredding_the_data_key_makes_data_unreadable(ctx):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    db.session.execute(db.delete(DataKey).where(DataKey.owner_id == c.id))
    db.session.commit()
    db.session.expire_all()
    crypto.clear_caches()
    with pytest.raises(crypto.KeyErased):
        _ = db.session.get(Citizen, c.id).full_name


def test_recording_chunks_detect_truncation_and_reordering(ctx, tmp_path):
    import io

    c = CitizenFactory(phone=PHONE, sadovaya=True)
    data = bytes(range(256)) * 1000  # 256,000 bytes → 4 chunks of 64 KiB
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(data), out, file_key="k1", owner_id=c.id)
    db.session.commit()
    blob = out.getvalue()
    assert b"".join(crypto.decrypt_stream(io.BytesIO(blob), file_key="k1", owner_id=c.id)) == data
    chunk = 12 + crypto.CHUNK_SIZE + 16
    header = 25
    truncated = blob[:header + 2 * chunk]
    with pytest.raises(crypto.DecryptError):
        b"".join(crypto.decrypt_stream(io.BytesIO(truncated), file_key="k1", owner_id=c.id))
    swapped = blob[:header] + blob[header + chunk:header + 2 * chunk] + blob[header:header + chunk] + blob[header + 2 * chunk:]
    with pytest.raises(crypto.DecryptError):
        b"".join(crypto.decrypt_stream(io.BytesIO(swapped), file_key="k1", owner_id=c.id))
    with pytest.raises(crypto.DecryptError):
        b"".join(crypto.decrypt_stream(io.BytesIO(blob), file_key="other", owner_id=c.id))


def test_access_log_chain_verifies_and_detects_tampering(ctx):
    for i in range(5):
        CitizenFactory(phone=f"+7 912 345-67-{10 + i}", sadovaya=True)
    count, bad, _ = audit.verify()
    assert bad is None and count >= 5
    # edit an entry
    tamper("UPDATE access_log SET actor = 'someone-else' WHERE seq = 3")
    count, bad, message = audit.verify()
    assert bad == 3, message


def test_access_log_detects_deleted_newest_entries(ctx):
    for i in range(4):
        CitizenFactory(phone=f"+7 912 345-67-{20 + i}", sadovaya=True)
    last = db.session.execute(db.select(db.func.max(AccessLogEntry.seq))).scalar()
    tamper("DELETE FROM access_log WHERE seq = :seq", seq=last)
    _, bad, message = audit.verify()
    assert bad is not None and "removed" in message


def test_access_log_detects_deleted_middle_entry(ctx):
    for i in range(4):
        CitizenFactory(phone=f"+7 912 345-67-{30 + i}", sadovaya=True)
    tamper("DELETE FROM access_log WHERE seq = 2")
    _, bad, _ = audit.verify()
    assert bad == 2


def test_failed_action_writes_no_log_entry(ctx):
    before = db.session.execute(db.select(db.func.count()).select_from(AccessLogEntry)).scalar()
    with pytest.raises(citizens.CitizenError):
        citizens.register(citizens.CitizenData("Иванов", "112"))
    db.session.rollback()
    after = db.session.execute(db.select(db.func.count()).select_from(AccessLogEntry)).scalar()
    assert after == before


def test_swapped_entries_are_detected(ctx):
    for i in range(4):
        CitizenFactory(phone=f"+7 912 345-67-{40 + i}", sadovaya=True)
    tamper("UPDATE access_log SET seq = -1 WHERE seq = 2")
    tamper("UPDATE access_log SET seq = 2 WHERE seq = 3")
    tamper("UPDATE access_log SET seq = 3 WHERE seq = -1")
    _, bad, _ = audit.verify()
    assert bad == 2


def test_postgres_refuses_update_and_delete_of_the_log(ctx):
    import sqlalchemy as sa

    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    CitizenFactory(phone=PHONE, sadovaya=True)
    for sql in ("UPDATE access_log SET actor = 'x'", "DELETE FROM access_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(sql))
