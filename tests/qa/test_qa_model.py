"""The automatic checks after a real transcription: the worker transcribes the simulated hot-water
call with the real Whisper model, stores the checks, and the operator who follows the script
passes the greeting and the closing. (One call only: the model is slow on the test machines.)"""
from __future__ import annotations

import pytest

from tests.qa.test_qa_world import qa_env, reference_segments  # noqa: F401
from tests.conftest import TEST_DATA, shared_path
from tests.factories import AppealFactory, CitizenFactory

pytestmark = pytest.mark.model


def test_worker_transcribes_then_stores_the_checks(ctx, run_worker, make_user, api_token, client):
    from crm.calls import services as calls
    from crm.db import db
    from crm.qa import checks
    from crm.qa import services as qa

    name = "dev_call_01_hot_water.stereo8k.wav"
    wav = TEST_DATA / "audio" / "speech-ru" / "calls" / name
    if not wav.exists():
        wav = shared_path("data", "speech-ru", "calls", name)
    op = make_user("operator")
    headers = api_token(op)
    citizen = CitizenFactory(full_name="Петров Иван Сергеевич", phone="89123456789", qa_consent=True)  # QA consent: the gate
    appeal = AppealFactory(citizen=citizen, category="emergency", topic="hot_water", description="Нет горячей воды",
                           operator_id=op.id)
    with open(wav, "rb") as fh:
        call_id = calls.store_recording(fh, name, appeal=appeal, operator_id=op.id).id
    db.session.remove()  # SQLite: no write lock held while the worker writes
    run_worker()

    stored = {r["code"]: r for r in qa.check_results(call_id)}
    assert stored["greeting"]["passed"], stored["greeting"]
    assert stored["closing"]["passed"], stored["closing"]
    assert stored["forbidden_phrases"]["passed"] and stored["silence"]["passed"]
    # the measured figures are close to those of the reference turns
    ref = {r["code"]: r for r in checks.run(reference_segments())}
    assert stored["speech_rate"]["value"] == pytest.approx(ref["speech_rate"]["value"], rel=0.35)
    api = client.get(f"/api/v1/calls/{call_id}", headers=headers).get_json()
    assert {c["code"]: c["passed"] for c in api["qa_checks"]} == {c: r["passed"] for c, r in stored.items()}


def test_a_recheck_right_after_transcription_changes_nothing(ctx, run_worker, make_user, runner):
    """The job computes the checks from the transcript as stored (numbers in digits), the segments
    ``crm qa recheck`` reads: before, it counted Whisper's raw words («семьдесят два» two words, the
    stored «72» one), so the first recheck of an untouched call reported it changed (speech rate)."""
    from crm.calls import services as calls
    from crm.db import db
    from crm.qa import services as qa

    name = "dev_call_01_hot_water.mono8k.wav"  # mono: the citizen's numbers count too
    wav = TEST_DATA / "audio" / "speech-ru" / "calls" / name
    if not wav.exists():
        wav = shared_path("data", "speech-ru", "calls", name)
    op = make_user("operator")
    citizen = CitizenFactory(full_name="Петров Иван Сергеевич", phone="89123456789", qa_consent=True)
    appeal = AppealFactory(citizen=citizen, category="emergency", topic="hot_water", description="Нет горячей воды",
                           operator_id=op.id)
    with open(wav, "rb") as fh:
        call_id = calls.store_recording(fh, name, appeal=appeal, operator_id=op.id).id
    db.session.remove()
    run_worker()

    stored = qa.check_results(call_id)
    assert {r["code"] for r in stored} >= {"greeting", "closing", "speech_rate"}
    out = runner("qa", "recheck", "--call", call_id)
    assert out.exit_code == 0, out.output
    assert "rechecked 1 (changed 0)" in out.output, (out.output, stored)
    db.session.expire_all()
    assert qa.check_results(call_id) == stored
