"""Crypto-shredding: erase_citizen deletes the data key, ciphertext, blind indexes and recordings,
keeps de-identified statistics, writes a destruction record and an access-log entry; a copy of the
main database taken before the erasure and restored afterwards still reveals nothing."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import pytest
import sqlalchemy as sa

from crm.appeals import services as appeals
from crm.appeals.models import Appeal, AppealEvent
from crm.calls import services as calls
from crm.calls.models import Call, Segment
from crm.citizens import services as citizens
from crm.citizens.models import Citizen
from crm.db import db
from crm.qa.models import Evaluation
from crm.security import audit, crypto, keystore, shredding
from crm.security.models import AccessLogEntry, DestructionRecord
from tests.factories import AppealFactory, CallFactory, CitizenFactory, EvaluationFactory
from tests.wavs import pcm_wav

NAME = "Шредерова Аглая Пантелеевна"
PHONE = "+7 916 204-73-58"
ADDRESS = "пер. Кленовый, д. 3"
PHRASE = "батарея в детской ледяная третий день"


def _world(make_user, monkeypatch) -> dict:
    """A citizen with two appeals (one commented transition), a call with a recording, a transcript
    and a QA evaluation; plus an unrelated citizen."""
    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)
    op = make_user("operator")
    sup = make_user("supervisor")
    # she consents to quality control, so QA may score her call
    c = CitizenFactory(full_name=NAME, phone=PHONE, email="aglaya@example.ru", address=ADDRESS, apartment="12",
                       qa_consent=True)
    other = CitizenFactory(full_name="Посторонний Пётр", phone="+7 903 000-11-22", address=ADDRESS, apartment="13")
    a1 = AppealFactory(citizen=c, description=f"Холодно: {PHRASE}", operator_id=op.id)
    a2 = AppealFactory(citizen=c, category="emergency", topic="roof_leak", description="Течёт крыша",
                       operator_id=op.id)
    appeals.transition(a1, "escalated", user_id=op.id, comment=f"Передано: {PHRASE}")
    a3 = AppealFactory(citizen=other, description="Тоже холодно", operator_id=op.id)
    wav = _wav()
    call = CallFactory(appeal=a1, operator=op, audio=wav, original_name="Звонок Шредеровой.wav", checks=False,
                       segments=[{"start": 0.0, "end": 1.0, "speaker": "citizen", "channel": None, "text": PHRASE,
                                  "words": [{"start": 0.0, "end": 1.0, "word": "батарея", "probability": 0.9}]}])
    ev = EvaluationFactory(call=call, evaluator=sup, comment=f"Цитата: {PHRASE}")
    return {"citizen": c.id, "other": other.id, "appeals": [a1.id, a2.id], "other_appeal": a3.id, "call": call.id,
            "storage_key": call.storage_key, "evaluation": ev.id, "dpo": make_user("dpo"), "wav": wav}


def _wav() -> bytes:
    return pcm_wav((PHRASE.encode() * 1000)[:16000])


def _stats() -> list[tuple]:
    """The appeals' de-identified columns (the building key is not one: it is a copy of the citizen's
    blind index, cleared by erasure; issue 13)."""
    return db.session.execute(sa.select(Appeal.id, Appeal.category, Appeal.topic, Appeal.status,
                                        Appeal.created_at, Appeal.resolve_by, Appeal.escalated_at)
                              .order_by(Appeal.id)).all()


def test_erase_citizen_shreds_everything_personal_and_keeps_statistics(ctx, make_user, monkeypatch):
    from crm.reports import services as reports

    w = _world(make_user, monkeypatch)
    cid = w["citizen"]
    stats_before = _stats()
    kpi_before = reports.kpi(reports.period(None, None))
    durations_before = db.session.execute(sa.select(Call.id, Call.duration_s, Call.status)).all()
    rec = calls.recording_path(db.session.get(Call, w["call"]))
    assert rec.exists()

    record = shredding.erase_citizen(cid, "отзыв согласия, заявление от 01.05.2026", w["dpo"])
    db.session.expire_all()

    # destruction record: who, what, why, how, when, by whom
    assert record.citizen_id == cid and record.actor == w["dpo"].username and record.actor_role == "dpo"
    assert record.key_destroyed_at is not None and "crypto-shredding" in record.method
    assert set(record.categories.split(",")) >= {"full_name", "phone", "email", "address", "apartment", "appeal_text",
                                                 "appeal_comments", "transcripts", "recordings", "qa_comments",
                                                 "call_file_names"}
    assert json.loads(record.detail)["appeals"] == 2
    # access log, with ids only
    entry = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "citizen.erase")).scalar_one()
    assert entry.citizen_id == cid and record.id in entry.detail and "отзыв" not in (entry.detail or "")
    assert audit.verify()[1] is None
    # key store: the data key is gone, with a tombstone
    assert keystore.find_by_owner(cid) is None
    with pytest.raises(crypto.KeyErased):
        crypto.dek_for_owner(cid)
    # main database: no ciphertext, no blind index
    c = db.session.get(Citizen, cid)
    assert c.erased_at is not None
    for col in [f"{f}_enc" for f in Citizen.PERSONAL_FIELDS] + list(Citizen.BLIND_INDEX_COLUMNS):
        assert getattr(c, col) is None, col
    assert all(a.description_enc is None and a.building_key is None for a in db.session.execute(
        sa.select(Appeal).where(Appeal.citizen_id == cid)).scalars())
    assert db.session.get(Appeal, w["other_appeal"]).building_key is not None  # the neighbour keeps theirs
    assert all(e.comment_enc is None for e in db.session.execute(
        sa.select(AppealEvent).where(AppealEvent.citizen_id == cid)).scalars())
    assert all(s.text_enc is None and s.words_enc is None for s in db.session.execute(sa.select(Segment)).scalars())
    assert db.session.get(Call, w["call"]).original_name_enc is None
    assert db.session.get(Evaluation, w["evaluation"]).comment_enc is None
    assert not rec.exists()
    # statistics still add up
    assert _stats() == stats_before
    assert db.session.execute(sa.select(Call.id, Call.duration_s, Call.status)).all() == durations_before
    kpi_after = reports.kpi(reports.period(None, None))
    assert kpi_after["appeals_total"] == kpi_before["appeals_total"] == 3
    assert kpi_after["by_category"] == kpi_before["by_category"]
    assert kpi_after["qa_score_avg"] == kpi_before["qa_score_avg"]
    # the application shows an erased card, finds nothing, and the neighbour is untouched
    assert citizens.view(c, purpose="appeal_processing")["erased"] is True
    assert citizens.find_by_phone(PHONE) == []
    assert citizens.find_by_name_and_building(NAME, ADDRESS) == []
    assert db.session.get(Citizen, w["other"]).full_name == "Посторонний Пётр"
    assert appeals.get(w["other_appeal"]).description == "Тоже холодно"
    # erasing again is harmless and returns the same record
    assert shredding.erase_citizen(cid, "повторно", w["dpo"]).id == record.id
    assert db.session.execute(sa.select(sa.func.count()).select_from(DestructionRecord)).scalar() == 1


def test_a_failed_key_store_step_is_completed_later(ctx, make_user, monkeypatch):
    w = _world(make_user, monkeypatch)
    real = keystore.delete_owner

    def down(owner_id):
        raise sa.exc.OperationalError("DELETE", {}, Exception("key store down"))

    monkeypatch.setattr(keystore, "delete_owner", down)
    with pytest.raises(sa.exc.OperationalError):
        shredding.erase_citizen(w["citizen"], "удаление по запросу", w["dpo"])
    db.session.rollback()
    assert db.session.get(Citizen, w["citizen"]).erased_at is not None  # the application already shows nothing
    assert [r.citizen_id for r in shredding.pending()] == [w["citizen"]]
    assert keystore.find_by_owner(w["citizen"]) is not None
    monkeypatch.setattr(keystore, "delete_owner", real)
    assert shredding.complete_pending() == 1
    assert keystore.find_by_owner(w["citizen"]) is None and shredding.pending() == []


def test_every_model_with_encrypted_fields_is_covered_by_erasure(ctx):
    covered = {model for model, _ in shredding._owned()}
    assert set(shredding.models_with_encrypted_fields()) <= covered


def test_the_erase_requires_a_reason(ctx):
    c = CitizenFactory(full_name=NAME, phone=PHONE)
    with pytest.raises(shredding.ErasureError):
        shredding.erase_citizen(c.id, "  ", None)
    with pytest.raises(shredding.ErasureError):
        shredding.erase_citizen("00000000-0000-0000-0000-000000000000", "x", None)


def _restore_copy(ctx, tmp_path):
    """Take a copy of the main database now; returns a function that restores it into a new
    database and returns its URL (SQLite: the backup API; PostgreSQL: pg_dump, then psql into a new
    database)."""
    url = ctx.config["SQLALCHEMY_DATABASE_URI"]
    db.session.commit()
    if url.startswith("sqlite"):
        src = sa.make_url(url).database
        copy = tmp_path / "backup.sqlite3"
        s, d = sqlite3.connect(src), sqlite3.connect(copy)
        try:
            s.backup(d)
        finally:
            d.close()
            s.close()
        data = subprocess.run(["cat", str(copy)], capture_output=True, check=True).stdout  # see test_crypto_leaks
        return lambda: f"sqlite:///{copy}", lambda: data, None
    plain = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run(["pg_dump", "--no-owner", plain], capture_output=True, check=True).stdout
    from tests.conftest import _make_database

    holder = {}

    def restore():
        new_url, holder["drop"] = _make_database(os.environ["DATABASE_URL"])
        target = sa.make_url(new_url).set(drivername="postgresql").render_as_string(hide_password=False)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", target], input=dump, capture_output=True, check=True)
        return new_url

    return restore, lambda: dump, holder


def test_a_backup_from_before_the_erasure_restored_after_it_reveals_nothing(ctx, app_config, make_user,
                                                                           monkeypatch, tmp_path):
    from crm import create_app

    w = _world(make_user, monkeypatch)
    cid = w["citizen"]
    restore, backup_bytes, holder = _restore_copy(ctx, tmp_path)
    blob = backup_bytes()
    for needle in (NAME, "Шредерова", "9162047358", "Кленовый", PHRASE):
        assert needle.encode() not in blob
    shredding.erase_citizen(cid, "отзыв согласия", w["dpo"])
    crypto.clear_caches()
    restored_url = restore()
    try:
        old = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": restored_url,
                          "CRM_REDIS_SOCKET": ctx.config["CRM_REDIS_SOCKET"]})
        with old.app_context():
            c = db.session.get(Citizen, cid)
            assert c is not None and c.erased_at is None and c.full_name_enc  # the old ciphertext is there…
            with pytest.raises(crypto.KeyErased):  # …but its key is not
                _ = c.full_name
            db.session.rollback()
            with pytest.raises(crypto.KeyErased):
                _ = db.session.get(Appeal, w["appeals"][0]).description
            db.session.rollback()
            with pytest.raises(crypto.KeyErased):
                _ = db.session.execute(sa.select(Segment)).scalars().first().text
            db.session.rollback()
            # the phone still matches its (truncated) blind index in the old copy, yet finds nobody
            assert citizens.find_by_phone(PHONE) == []
            assert db.session.get(Citizen, w["other"]).full_name == "Посторонний Пётр"
            db.session.remove()
            for e in db.engines.values():
                e.dispose()
    finally:
        if holder and holder.get("drop"):
            holder["drop"]()
