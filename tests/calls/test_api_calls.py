"""The JSON API, part 2: uploading recordings, reading calls with their automatic QA checks, scoring
calls, and the signed telephony webhook (with replay protection in the run's real Redis).

The Whisper model is not run here: transcripts are stored with ``calls.services.save_transcript``,
the same function the transcription job ends with."""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.api.test_api import as_role, assert_error  # noqa: F401  (as_role is a fixture)
from tests.factories import AppealFactory, CitizenFactory
from tests.wavs import tone_wav as sine_wav

ROOT = Path(__file__).resolve().parents[2]
ALL_YES = {"greeting": "yes", "problem_identified": "yes", "correct_information": "yes", "politeness": "yes",
           "closing": "no"}


REAL_CALL = ROOT / "tests" / "data" / "audio" / "speech-ru" / "calls" / "dev_call_01_hot_water.stereo8k.wav"


def real_wav() -> tuple[bytes, int]:
    """``(WAV bytes, channels)``: the simulated stereo hotline call from ``tests/data/audio`` when
    the checkout has it, else a generated mono tone."""
    return (REAL_CALL.read_bytes(), 2) if REAL_CALL.is_file() else (sine_wav(), 1)


@dataclass
class Result:
    """What the transcriber hands to ``save_transcript``."""
    segments: list[dict] = field(default_factory=list)
    status: str = "done"
    language: str = "ru"
    rtf: float = 0.2
    duration_s: float = 65.0


GOOD_SEGMENTS = [
    {"start": 0.3, "end": 4.0, "speaker": "operator", "channel": 0,
     "text": "Горячая линия ЖКХ, оператор Анна, здравствуйте!"},
    {"start": 4.5, "end": 9.0, "speaker": "citizen", "channel": 1, "text": "Здравствуйте, у нас нет горячей воды."},
    {"start": 9.5, "end": 50.0, "speaker": "operator", "channel": 0, "text": "Записала, заявка передана в АДС."},
    {"start": 58.0, "end": 62.0, "speaker": "operator", "channel": 0, "text": "Спасибо за обращение, всего доброго."},
]


@pytest.fixture()
def recordings_dir(ctx) -> Path:
    return Path(ctx.config["CRM_RECORDINGS_DIR"])


def stored_files(recordings_dir: Path) -> list[Path]:
    return [p for p in recordings_dir.rglob("*") if p.is_file()] if recordings_dir.exists() else []


def call_rows() -> int:
    from crm.calls.models import Call
    from crm.db import db

    return db.session.execute(sa.select(sa.func.count()).select_from(Call)).scalar_one()


@pytest.fixture()
def upload(client):
    """POST a recording; the transcription job it enqueues and the stored file are deleted
    afterwards (no worker runs here, and the row wipe between tests leaves files alone)."""
    made = []

    def do(headers, data: bytes, name: str = "call.wav", **form):
        resp = client.post("/api/v1/calls", data={"file": (io.BytesIO(data), name), **form}, headers=headers,
                           content_type="multipart/form-data")
        if resp.status_code == 202:
            from crm.calls import services as calls

            call = calls.get(resp.get_json()["id"])
            made.append((call.job_id, calls.recording_path(call)))
        return resp
    yield do
    from rq.job import Job

    from crm import jobs

    for job_id, path in made:
        path.unlink(missing_ok=True)
        if job_id:
            jobs.queue("transcription").remove(job_id)
            Job(job_id, connection=jobs.redis_connection()).delete()


def transcribe(call_id: str, segments: list[dict], status: str = "done") -> None:
    from crm.calls import services as calls

    calls.save_transcript(calls.get(call_id), Result(segments=segments, status=status))


# --- upload ---------------------------------------------------------------------------------------

def test_wav_upload_is_queued(ctx, as_role, upload, recordings_dir):
    from crm import jobs
    from crm.calls.models import Call
    from crm.db import db

    user, headers = as_role("operator")
    before = set(stored_files(recordings_dir))
    audio, channels = real_wav()
    resp = upload(headers, audio, "Запись звонка №5.wav")
    assert resp.status_code == 202, resp.get_json()
    data = resp.get_json()
    assert data["status"] == "queued" and data["id"] and data["error"] is None
    assert data["operator_id"] == user.id and data["sample_rate"] == 8000 and data["channels"] == channels
    assert data["duration_s"] > 0.9
    assert resp.headers["Location"].endswith(f"/api/v1/calls/{data['id']}")
    call = db.session.get(Call, data["id"])
    assert call.original_name == "Запись звонка №5.wav"
    assert call.job_id in jobs.queue("transcription").job_ids  # really in the run's Redis
    stored = sorted(set(stored_files(recordings_dir)) - before)
    assert [p.name for p in stored] == [f"{call.storage_key}.rec"]
    assert b"RIFF" not in stored[0].read_bytes()[:64]  # encrypted at rest


def test_upload_with_appeal_links_the_citizen(ctx, as_role, upload):
    op, _ = as_role("operator")
    _, sup = as_role("supervisor")
    citizen = CitizenFactory(full_name="Сидоров Иван", phone="89161234567")
    appeal = AppealFactory(citizen=citizen, category="emergency", operator_id=op.id)
    data = upload(sup, sine_wav(), appeal_id=appeal.id).get_json()
    assert data["appeal_id"] == appeal.id and data["citizen_id"] == citizen.id
    assert data["operator_id"] == op.id  # the appeal's operator, not the supervisor who uploaded
    assert_error(upload(sup, sine_wav(), appeal_id="no-such-appeal"), 404, "appeal_not_found")


@pytest.mark.parametrize("data, name, code", [
    (b"This is not audio, just a text file.\n" * 20, "notes.txt", "recording_not_audio"),
    (b"This is not audio at all, renamed.\n" * 20, "call.wav", "recording_not_audio"),
    (b"", "empty.wav", "empty_recording"),
    (sine_wav()[:44], "header_only.wav", None),
])
def test_refused_upload_stores_nothing(ctx, as_role, upload, recordings_dir, data, name, code):
    _, headers = as_role("operator")
    before = stored_files(recordings_dir)
    resp = upload(headers, data, name)
    assert resp.status_code in (400, 422), resp.get_json()
    err = assert_error(resp, resp.status_code, code)
    assert err["message"]
    assert call_rows() == 0
    assert stored_files(recordings_dir) == before


def test_upload_without_file_is_400(client, as_role):
    _, headers = as_role("operator")
    resp = client.post("/api/v1/calls", data={"appeal_id": ""}, headers=headers, content_type="multipart/form-data")
    assert_error(resp, 400, "file_required")
    assert_error(client.post("/api/v1/calls", json={"file": "x"}, headers=headers), 400, "file_required")


def test_huge_upload_is_413_json(ctx, client, as_role, recordings_dir):
    _, headers = as_role("operator")
    before = stored_files(recordings_dir)
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n\r\nRIFF\r\n--b--\r\n"
    resp = client.post("/api/v1/calls", data=body, headers=headers,
                       content_type="multipart/form-data; boundary=b",
                       environ_overrides={"CONTENT_LENGTH": str(2 * 1024 ** 3)})  # a 2 GB upload, announced
    err = assert_error(resp, 413)
    assert resp.is_json and err["code"]
    assert call_rows() == 0 and stored_files(recordings_dir) == before


# --- reading calls, automatic checks --------------------------------------------------------------

def test_call_gets_qa_checks_once_transcribed(ctx, as_role, upload, client):
    from crm.security.models import AccessLogEntry
    from crm.db import db

    op_user, op = as_role("operator")
    user, sup = as_role("supervisor")
    # read for quality control: the citizen consents to call_recording_qa
    appeal = AppealFactory(citizen=CitizenFactory(qa_consent=True), operator_id=op_user.id)
    call_id = upload(op, sine_wav(), appeal_id=appeal.id).get_json()["id"]
    queued = client.get(f"/api/v1/calls/{call_id}", headers=sup).get_json()
    assert queued["status"] == "queued" and queued["qa_checks"] == [] and queued["transcript"] == {"segments": []}

    transcribe(call_id, GOOD_SEGMENTS)
    resp = client.get(f"/api/v1/calls/{call_id}", headers=sup)
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["status"] == "done" and data["error"] is None and data["language"] == "ru"
    assert [s["text"] for s in data["transcript"]["segments"]] == [s["text"] for s in GOOD_SEGMENTS]
    assert set(data["transcript"]["segments"][0]) >= {"start", "end", "speaker", "channel", "text"}
    checks = {c["code"]: c for c in data["qa_checks"]}
    assert {"greeting", "closing"} <= set(checks)
    assert all(set(c) == {"code", "passed", "state", "detail"} for c in data["qa_checks"])
    assert all(c["state"] == ("passed" if c["passed"] else "failed") for c in data["qa_checks"])  # no words: all sure
    assert checks["greeting"]["passed"] is True and checks["closing"]["passed"] is True
    logged = db.session.execute(sa.select(AccessLogEntry).where(
        AccessLogEntry.action == "transcript.view", AccessLogEntry.call_id == call_id)).scalars().all()
    assert [e.actor for e in logged] == [user.username] and logged[0].purpose == "call_recording_qa"


def test_qa_checks_fail_on_a_rude_call(ctx, as_role, upload, client):
    op_user, op = as_role("operator")
    # the checks are QA processing: the citizen consents to call_recording_qa
    appeal = AppealFactory(citizen=CitizenFactory(qa_consent=True), operator_id=op_user.id)
    call_id = upload(op, sine_wav(), appeal_id=appeal.id).get_json()["id"]
    transcribe(call_id, [{"start": 0.5, "end": 3.0, "speaker": "operator", "text": "Алло, что у вас?"},
                         {"start": 3.0, "end": 9.0, "speaker": "citizen", "text": "Добрый день, нет света."},
                         {"start": 9.0, "end": 12.0, "speaker": "operator", "text": "Ждите."}])
    checks = {c["code"]: c for c in client.get(f"/api/v1/calls/{call_id}", headers=op).get_json()["qa_checks"]}
    assert checks["greeting"]["passed"] is False and checks["closing"]["passed"] is False


def test_no_speech_call_has_unsure_checks(ctx, as_role, upload, client):
    op_user, op = as_role("operator")
    # the checks are QA processing: the citizen consents to call_recording_qa
    appeal = AppealFactory(citizen=CitizenFactory(qa_consent=True), operator_id=op_user.id)
    call_id = upload(op, sine_wav(), appeal_id=appeal.id).get_json()["id"]
    transcribe(call_id, [], status="no_speech")
    data = client.get(f"/api/v1/calls/{call_id}", headers=op).get_json()
    assert data["status"] == "no_speech" and data["transcript"]["segments"] == []
    # passed stays a boolean (False: not passed); nothing is pinned on the operator: «не уверено»
    assert {c["code"]: (c["passed"], c["state"]) for c in data["qa_checks"]} == {
        "greeting": (False, "unsure"), "closing": (False, "unsure")}
    assert all("нет речи" in c["detail"] for c in data["qa_checks"])


def test_operator_sees_only_own_calls(ctx, as_role, upload, client):
    _, op = as_role("operator")
    _, other = as_role("operator")
    _, admin = as_role("admin")
    call_id = upload(op, sine_wav()).get_json()["id"]
    assert client.get(f"/api/v1/calls/{call_id}", headers=op).status_code == 200
    assert_error(client.get(f"/api/v1/calls/{call_id}", headers=other), 403, "forbidden")
    assert client.get(f"/api/v1/calls/{call_id}", headers=admin).status_code == 200


# --- evaluations ----------------------------------------------------------------------------------

def test_evaluation_needs_a_transcript_then_scores(ctx, as_role, upload, client):
    from crm.qa.models import Evaluation
    from crm.db import db

    op_user, op = as_role("operator")
    sup_user, sup = as_role("supervisor")
    appeal = AppealFactory(citizen=CitizenFactory(qa_consent=True), operator_id=op_user.id)
    call_id = upload(op, sine_wav(), appeal_id=appeal.id).get_json()["id"]
    url = f"/api/v1/calls/{call_id}/evaluations"
    assert_error(client.post(url, json={"answers": ALL_YES}, headers=sup), 409, "not_transcribed")

    transcribe(call_id, GOOD_SEGMENTS)
    err = assert_error(client.post(url, json={"answers": {"greeting": "yes"}}, headers=sup), 400, "invalid_answers")
    assert "нет ответа" in err["message"]
    assert_error(client.post(url, json={"answers": {**ALL_YES, "politeness": "maybe"}}, headers=sup),
                 400, "invalid_answers")
    assert_error(client.post(url, json={"answers": ["yes"]}, headers=sup), 400, "invalid_answers")
    assert_error(client.post(url, json={"answers": {**ALL_YES, "closing": 1}}, headers=sup), 400, "invalid_closing")
    assert_error(client.post(url, data="{", content_type="application/json", headers=sup), 400, "invalid_json")
    assert db.session.execute(sa.select(sa.func.count()).select_from(Evaluation)).scalar_one() == 0

    resp = client.post(url, json={"answers": ALL_YES, "comment": "Не назвала срок"}, headers=sup)
    assert resp.status_code == 201, resp.get_json()
    ev = resp.get_json()
    assert ev["call_id"] == call_id and ev["evaluator_id"] == sup_user.id and ev["operator_id"] == op_user.id
    assert ev["score"] == 85.0 and ev["answers"] == ALL_YES
    critical = client.post(url, json={"answers": {**ALL_YES, "correct_information": "no"}}, headers=sup).get_json()
    assert critical["score"] == 0.0
    assert_error(client.post("/api/v1/calls/nope/evaluations", json={"answers": ALL_YES}, headers=sup), 404)


# --- telephony webhook ----------------------------------------------------------------------------

SECRET = "pbx-shared-secret-for-tests"


@pytest.fixture()
def telephony(ctx, client, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_SECRET", SECRET)

    def post(event: dict | bytes, *, secret: str = SECRET, signature: str | None = None):
        raw = event if isinstance(event, bytes) else json.dumps(event).encode()
        sig = signature if signature is not None else "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"X-CRM-Signature": sig} if sig else {}
        return client.post("/api/v1/telephony/events", data=raw, content_type="application/json", headers=headers)
    return post


def event(**kw) -> dict:
    return {"event_id": f"evt-{uuid.uuid4().hex}", "type": "call.started", "call_id": "pbx-1", "from": "+79123456789",
            **kw}


def test_telephony_not_configured_is_503(ctx, client, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_SECRET", None)
    assert_error(client.post("/api/v1/telephony/events", json=event()), 503, "telephony_not_configured")


def test_telephony_valid_event_then_replay(ctx, telephony):
    from crm import jobs

    e = event(type="call.ended")
    first = telephony(e)
    assert first.status_code == 202 and first.get_json() == {"accepted": True, "duplicate": False,
                                                              "event_id": e["event_id"]}
    key = f"{ctx.config['CRM_QUEUE_PREFIX']}crm:telephony:event:{e['event_id']}"
    assert 0 < jobs.redis_connection().ttl(key) <= 7 * 86400
    again = telephony(e)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert telephony(event()).status_code == 202  # another id is accepted


def test_telephony_forged_or_missing_signature_is_401(ctx, telephony):
    from crm import jobs

    e = event()
    assert_error(telephony(e, secret="guessed-secret"), 401, "invalid_signature")
    assert_error(telephony(e, signature=""), 401, "invalid_signature")
    assert_error(telephony(e, signature="sha256=" + "0" * 64), 401, "invalid_signature")
    assert_error(telephony(e, signature="sha256=Ünicode"), 401, "invalid_signature")
    good = "sha256=" + hmac.new(SECRET.encode(), json.dumps(e).encode(), hashlib.sha256).hexdigest()
    assert_error(telephony(json.dumps({**e, "type": "call.ended"}).encode(), signature=good), 401)  # body altered
    key = f"{ctx.config['CRM_QUEUE_PREFIX']}crm:telephony:event:{e['event_id']}"
    assert not jobs.redis_connection().exists(key)  # a forged event does not burn its id
    assert telephony(e).status_code == 202


@pytest.mark.parametrize("payload, code", [
    (b"{not json", "invalid_json"),
    ({"type": "call.started"}, "invalid_event_id"),
    ({"event_id": "", "type": "call.started"}, "invalid_event_id"),
    ({"event_id": "e1", "type": "call.exploded"}, "invalid_type"),
    ({"event_id": 42, "type": "call.started"}, "invalid_event_id"),
])
def test_telephony_bad_event_is_400(telephony, payload, code):
    assert_error(telephony(payload), 400, code)


def test_telephony_body_over_64k_is_413(telephony):
    assert_error(telephony(event(padding="x" * 70_000)), 413)
