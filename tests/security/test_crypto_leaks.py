"""A stolen database file, dump, backup, recording or log reveals no citizen.

A planted name, phone, e-mail, address and transcript phrase go through the real paths (API,
services, recording upload, transcript save, reads, a failed decryption); then the SQLite files
(main database, its WAL, the key store), ``pg_dump`` of both PostgreSQL databases, the recordings
folder and everything the application logged are searched for them in every usual spelling."""
from __future__ import annotations

import io
import logging
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.citizens.models import Citizen
from crm.db import db
from crm.security import crypto
from tests.files import read_from_another_process
from tests.wavs import pcm_wav

NAME = "Зюзюкина Евлампия Феоктистовна"
PHONE = "+7 915 372-84-19"
EMAIL = "evlampia.zyuzyukina@example.ru"
ADDRESS = "ул. Вязовая, д. 17"
APARTMENT = "кв-908"
DESCRIPTION = "В подвале Вязовой течёт ржавая вода"
PHRASE = "у нас в подъезде пахнет газом возле лифта"
NEEDLES = ["Зюзюкин", "Евлампия", "Феоктистовна", "9153728419", "915 372", "372-84-19", "3728419", "zyuzyukina",
           "Вязов", "кв-908", "ржавая вода", "пахнет газом", "возле лифта"]


def _needles_bytes() -> list[bytes]:
    out = []
    for n in NEEDLES:
        for variant in {n, n.lower(), n.upper()}:
            out += [variant.encode("utf-8"), variant.encode("utf-16-le")]
    return out


def _wav_with(text: str, seconds: int = 1) -> bytes:
    """A valid 8 kHz mono WAV whose samples are the UTF-8 bytes of ``text`` (a planted recording)."""
    return pcm_wav((text.encode("utf-8") * 4000)[:8000 * 2 * seconds])


@pytest.fixture()
def captured_logs():
    """Every log record of the application, SQLAlchemy (with bound parameters) and werkzeug."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    names = ["sqlalchemy.engine", "werkzeug", "crm", "rq", "alembic"]
    saved = {n: logging.getLogger(n).level for n in names}
    saved_root = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for n in names:
        logging.getLogger(n).setLevel(logging.INFO if n == "sqlalchemy.engine" else logging.DEBUG)
    db.engine.dispose()  # new connections pick up the engine log level
    yield buf
    root.removeHandler(handler)
    root.setLevel(saved_root)
    for n, lvl in saved.items():
        logging.getLogger(n).setLevel(lvl)
    db.engine.dispose()


def _plant(ctx, make_user, api_token, monkeypatch) -> dict:
    """Drive the planted citizen through the application; returns ids."""
    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)  # no job for other tests' workers
    op = make_user("operator")
    headers = api_token(op)
    client = ctx.test_client()
    resp = client.post("/api/v1/appeals", headers=headers, json={
        "citizen": {"full_name": NAME, "phone": PHONE, "email": EMAIL, "address": ADDRESS, "apartment": APARTMENT},
        "category": "emergency", "topic": "gas", "description": DESCRIPTION, "channel": "phone"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    appeal_id, citizen_id = resp.json["id"], resp.json["citizen_id"]
    assert client.get("/api/v1/citizens", query_string={"phone": "8 (915) 372-84-19"}, headers=headers).json["items"]
    card = client.get(f"/api/v1/citizens/{citizen_id}?reveal=true", headers=headers).json
    assert card["full_name"] == NAME and card["email"] == EMAIL
    appeal = appeals.get(appeal_id)
    appeals.transition(appeal, "escalated", user_id=op.id, comment=f"Передано в АДС: {PHRASE}")
    call = calls.store_recording(io.BytesIO(_wav_with(PHRASE)), f"Звонок {NAME}.wav", appeal=appeal, operator_id=op.id)
    result = SimpleNamespace(status="done", language="ru", rtf=0.1, duration_s=1.0, segments=[
        {"start": 0.0, "end": 0.5, "speaker": "citizen", "channel": None, "text": PHRASE,
         "words": [{"start": 0.0, "end": 0.2, "word": w, "probability": 0.9} for w in PHRASE.split()]},
        {"start": 0.5, "end": 1.0, "speaker": "operator", "channel": None, "text": f"{NAME}, записала: {ADDRESS}"}])
    calls.save_transcript(db.session.get(type(call), call.id), result)
    data = calls.view(db.session.get(type(call), call.id), purpose="appeal_processing")  # the operator reads it
    assert data["transcript"]["segments"][0]["text"] == PHRASE
    assert b"".join(calls.stream_recording(db.session.get(type(call), call.id))) == _wav_with(PHRASE)
    assert appeals.view(appeals.get(appeal_id), reveal=True)["description"] == DESCRIPTION
    # a failed decryption is logged too: its message must hold ids only
    c = db.session.get(Citizen, citizen_id)
    db.session.execute(sa.update(Citizen).where(Citizen.id == citizen_id).values(email_enc=c.full_name_enc))
    db.session.commit()
    db.session.expire_all()
    crypto.clear_caches()
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Citizen, citizen_id).email
    db.session.rollback()
    return {"citizen_id": citizen_id, "appeal_id": appeal_id, "call_id": call.id}


def _scan(blob: bytes, where: str) -> None:
    for needle in _needles_bytes():
        assert needle not in blob, f"{needle!r} found in {where}"


def test_planted_citizen_never_appears_in_files_dumps_recordings_or_logs(ctx, make_user, api_token, monkeypatch,
                                                                        captured_logs, tmp_path):
    ids = _plant(ctx, make_user, api_token, monkeypatch)
    db.session.commit()
    with pytest.raises(AssertionError):  # the search itself works
        _scan(_wav_with(PHRASE) + NAME.encode() + b"+79153728419", "plaintext")
    # recordings on disk
    rec = Path(ctx.config["CRM_RECORDINGS_DIR"])
    files = [p for p in rec.rglob("*") if p.is_file()]
    assert files, "the recording was stored"
    for p in files:
        _scan(p.read_bytes(), str(p))
    # database files or dumps
    if db.engine.dialect.name == "sqlite":
        instance = Path(ctx.instance_path)
        dbfiles = [p for p in instance.rglob("*.sqlite3*") if p.is_file()]
        assert any(p.name.startswith("keystore") for p in dbfiles) and len(dbfiles) >= 2
        for p in dbfiles:
            _scan(read_from_another_process(p), str(p))  # by another process: tests/files.py
    else:
        for engine in (db.engines[None], db.engines["keystore"]):
            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            dump = subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True).stdout
            assert b"COPY public.citizens" in dump or b"COPY public.data_keys" in dump
            _scan(dump, f"pg_dump of {engine.url.database}")
    # the application's logs (SQLAlchemy with parameters, werkzeug, crm)
    text = captured_logs.getvalue()
    assert "security.decrypt_failed" in text and "INSERT INTO citizens" in text
    _scan(text.encode("utf-8"), "the logs")
    # and the ciphertext really is there
    row = db.session.execute(sa.select(Citizen.full_name_enc, Citizen.phone_bidx).where(Citizen.id == ids["citizen_id"])).one()
    assert row[0] and row[1]
