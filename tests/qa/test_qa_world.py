"""What the QA integration tests share besides tests/factories.py (the reference turns of a
simulated call, the ``qa_env`` fixture), and the test of the transcription job's hook: the automatic
checks are stored after the transcript and ``GET /api/v1/calls/{id}`` returns them.

The Whisper model is not run here: a transcript is saved with ``calls.services.save_transcript``
(what the job ends with) or the job runs with the transcriber replaced by the reference turns."""
from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.factories import GOOD_SEGMENTS, RUDE_SEGMENTS, AppealFactory, CallFactory, CitizenFactory
from tests.wavs import tone_wav

ROOT = Path(__file__).resolve().parents[2]


def reference_segments(name: str = "dev_call_01_hot_water") -> list[dict]:
    """Reference turns of a simulated call as transcript segments (project copy, else ../shared)."""
    for folder in (ROOT / "tests" / "data" / "audio" / "calls", ROOT / "tests" / "data" / "audio" / "speech-ru" / "calls"):
        if (folder / f"{name}.json").is_file():
            data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
            break
    else:
        from tests.conftest import shared_path

        data = json.loads(shared_path("data", "speech-ru", "calls", f"{name}.json").read_text(encoding="utf-8"))
    return [{"start": t["start"], "end": t["end"], "speaker": data["channels"][str(t["channel"])],
             "channel": t["channel"], "text": t["text"]} for t in data["turns"]]


@pytest.fixture(autouse=True)
def qa_env(recordings):
    """Recordings in the test's own folder; the transcription jobs queued by ``CallFactory`` removed
    afterwards (the ``recordings`` fixture). Autouse here and in every module that imports it."""
    return recordings


# --- the transcription job's hook --------------------------------------------------------------------

@pytest.fixture()
def fake_transcriber(monkeypatch):
    """The transcription job with the transcriber replaced: it returns ``segments[0]`` (a list)."""
    import crm.calls.jobs as jobs_module
    import crm.calls.transcription as transcription

    segments: list[list[dict]] = [GOOD_SEGMENTS]

    def transcribe(path, **kwargs):
        segs = [dict(s) for s in segments[0]]
        return SimpleNamespace(segments=segs, status="done" if segs else "no_speech", language="ru", rtf=0.05,
                               duration_s=max((s["end"] for s in segs), default=1.0))

    monkeypatch.setattr(transcription, "transcribe", transcribe)
    monkeypatch.setattr(jobs_module, "model_dir", lambda app: Path("/nonexistent-model"))
    return segments


def _consenting_appeal(op):
    """The call's appeal, of a citizen who consented to QA: the checks are QA processing, served only
    for calls that pass the QA-consent gate."""
    return AppealFactory(citizen=CitizenFactory(qa_consent=True), operator=op)


def test_the_job_stores_the_checks_and_the_api_returns_them(ctx, make_user, api_token, client, run_worker,
                                                            fake_transcriber, monkeypatch, tmp_path):
    from crm.calls import services as calls
    from crm.db import db
    from crm.qa.models import CheckResult

    op = make_user("operator")
    sup = api_token(make_user("supervisor"))
    fake_transcriber[0] = reference_segments("dev_call_01_hot_water")
    call_id = calls.store_recording(io.BytesIO(tone_wav()), "c.wav", operator_id=op.id, appeal=_consenting_appeal(op)).id
    db.session.remove()  # SQLite: hold no write lock while the worker's session writes
    run_worker()
    db.session.remove()
    stored = {r.code: r for r in db.session.execute(db.select(CheckResult).where(CheckResult.call_id == call_id)).scalars()}
    assert {"greeting", "closing", "address", "callback_number", "forbidden_phrases", "silence", "overtalk",
            "talk_ratio", "speech_rate"} == set(stored)
    assert all(r.passed for r in stored.values()), {c: r.detail for c, r in stored.items() if not r.passed}
    assert stored["speech_rate"].value == pytest.approx(98.86, abs=0.01)

    data = client.get(f"/api/v1/calls/{call_id}", headers=sup).get_json()
    assert data["status"] == "done"
    got = {c["code"]: c for c in data["qa_checks"]}
    assert all(set(c) == {"code", "passed", "state", "detail"} for c in data["qa_checks"])
    assert {code: c["passed"] for code, c in got.items()} == {code: r.passed for code, r in stored.items()}
    assert got["greeting"]["detail"] == stored["greeting"].detail


def test_a_call_that_neither_greets_nor_closes_is_flagged_on_both(ctx, make_user, api_token, client, run_worker,
                                                                   fake_transcriber, monkeypatch, tmp_path):
    from crm.calls import services as calls
    from crm.db import db

    op = make_user("operator")
    headers = api_token(op)
    fake_transcriber[0] = RUDE_SEGMENTS
    call_id = calls.store_recording(io.BytesIO(tone_wav()), "c.wav", operator_id=op.id, appeal=_consenting_appeal(op)).id
    db.session.remove()  # SQLite: hold no write lock while the worker's session writes
    run_worker()
    checks = {c["code"]: c for c in client.get(f"/api/v1/calls/{call_id}", headers=headers).get_json()["qa_checks"]}
    assert checks["greeting"]["passed"] is False and checks["closing"]["passed"] is False
    assert checks["forbidden_phrases"]["passed"] is False and "не знаю" in checks["forbidden_phrases"]["detail"]


def test_retranscription_replaces_the_stored_checks(ctx, make_user, run_worker, fake_transcriber, monkeypatch, tmp_path):
    from crm.calls import jobs as call_jobs
    from crm.calls import services as calls
    from crm.db import db
    from crm.qa import services as qa

    op = make_user("operator")
    call_id = calls.store_recording(io.BytesIO(tone_wav()), "c.wav", operator_id=op.id, appeal=_consenting_appeal(op)).id
    db.session.remove()  # SQLite: hold no write lock while the worker's session writes
    run_worker()
    assert {r["code"]: r["passed"] for r in qa.check_results(call_id)}["greeting"] is True
    fake_transcriber[0] = RUDE_SEGMENTS
    db.session.remove()
    call_jobs.transcribe_call(call_id, force=True)
    db.session.remove()
    assert {r["code"]: r["passed"] for r in qa.check_results(call_id)}["greeting"] is False


def test_checks_of_a_call_transcribed_before_they_existed_are_made_on_first_read(ctx, make_user, api_token, client,
                                                                                  monkeypatch, tmp_path):
    from crm.db import db
    from crm.qa.models import CheckResult

    op = make_user("operator")
    call = CallFactory(operator=op, checks=False, citizen=CitizenFactory(qa_consent=True))  # QA consent: the gate
    assert db.session.execute(db.select(db.func.count()).select_from(CheckResult)).scalar_one() == 0
    data = client.get(f"/api/v1/calls/{call.id}", headers=api_token(op)).get_json()
    assert {"greeting", "closing"} <= {c["code"] for c in data["qa_checks"]}
    assert db.session.execute(db.select(db.func.count()).select_from(CheckResult)
                              .where(CheckResult.call_id == call.id)).scalar_one() == len(data["qa_checks"])


def test_a_failing_check_does_not_fail_the_transcription(ctx, make_user, monkeypatch):
    from crm.calls.models import Call
    from crm.db import db
    from crm.qa import checks as qa_checks
    from crm.qa.models import CheckResult


    def broken(*a, **kw):
        raise RuntimeError("dictionary missing")

    monkeypatch.setattr(qa_checks, "run", broken)
    call = CallFactory(operator=make_user("operator"))
    assert db.session.get(Call, call.id).status == "done"
    assert db.session.execute(db.select(db.func.count()).select_from(CheckResult)).scalar_one() == 0
