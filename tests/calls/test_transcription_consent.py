"""A supervisor's re-run of a transcription is quality control, so it passes the QA-consent gate that
reading the transcript passes (re-audit 13.2c): refused with a clear error by the service (page and
API), and refused again by the job when it runs if the consent was withdrawn after it was queued
(run here by a real RQ worker in burst mode; a refused job decrypts nothing, so no model is needed).
An upload's transcription for its appeal is not quality control and stays allowed."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm import jobs
from crm.calls.models import Call
from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import CallFactory, CitizenFactory

ONE_TURN = [{"start": 0.0, "end": 1.5, "speaker": "operator", "channel": 0, "text": "Горячая линия, слушаю."}]


def _fresh(call_id: str) -> Call:
    db.session.expire_all()
    return db.session.get(Call, call_id)


def _entries(action: str, call_id: str) -> list:
    from crm.security.models import AccessLogEntry

    db.session.commit()
    return list(db.session.execute(sa.select(AccessLogEntry).where(
        AccessLogEntry.action == action, AccessLogEntry.call_id == call_id)).scalars())


@pytest.fixture()
def world(ctx, make_user, recordings):
    from crm.consent import services as consent

    op, sup = make_user("operator"), make_user("supervisor")
    citizen = CitizenFactory(qa_consent=True)
    call = CallFactory(operator=op, citizen=citizen, segments=ONE_TURN, checks=False)
    jobs.queue("transcription").empty()  # the upload's job: done with
    return SimpleNamespace(op=op, sup=sup, citizen=citizen, call=call,
                           refuse=lambda: consent.record(citizen, "call_recording_qa", channel="call", given=False,
                                                         operator_id=op.id))


def test_retranscription_without_qa_consent_is_refused(ctx, world, api_token):
    world.refuse()
    resp = ctx.test_client().post(f"/api/v1/calls/{world.call.id}/transcription", headers=api_token(world.sup))
    assert resp.status_code == 403, resp.get_data()
    assert resp.json["error"]["code"] == "no_consent" and "согласия" in resp.json["error"]["message"]
    page = SharedContextClient(ctx, world.sup)
    resp = page.post(f"/calls/{world.call.id}/retranscribe")
    assert resp.status_code == 302
    assert "не давал согласия на запись звонка для контроля качества" in page.get(
        f"/calls/{world.call.id}").get_data(as_text=True)
    call = _fresh(world.call.id)
    assert call.status == "done" and call.error is None, "nothing changed"
    assert jobs.queue("transcription").count == 0 and not _entries("call.retranscribe", call.id)


def test_the_job_checks_the_consent_again_when_it_runs(ctx, world, run_worker):
    from crm.calls import services as calls

    queued = calls.retranscribe(world.call)  # consent in force: queued for quality control
    assert queued.status == "queued"
    [job] = jobs.queue("transcription").jobs
    assert job.args == (world.call.id, False, "call_recording_qa")
    world.refuse()  # withdrawn before the job runs
    jobs.queue("default").empty()  # (the withdrawal's destruction job: tests/consent/test_consent_recording_destruction.py)
    run_worker()
    call = _fresh(world.call.id)
    assert job.latest_result().return_value == "refused"
    assert call.status == "done" and call.error_code == "no_consent" and "согласия" in call.error
    assert [s.text for s in call.segments] == [ONE_TURN[0]["text"]], "the transcript in place stays"
    assert not _entries("call.decrypt", call.id), "the recording was not decrypted"


def test_an_uploads_transcription_for_the_appeal_needs_no_qa_consent(ctx, make_user, recordings):
    from crm.calls import services as calls

    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=False), transcribed=False)
    [job] = [j for j in jobs.queue("transcription").jobs if j.args[0] == call.id]
    assert job.args[2] == "appeal_processing"
    assert calls.transcription_refusal(call, "appeal_processing") is None
    assert calls.transcription_refusal(call, "call_recording_qa").code == "no_consent"
    jobs.queue("transcription").empty()


def test_a_reconciled_qa_rerun_keeps_its_purpose(ctx, world, run_worker):
    """The reconciler re-queues a dead QA re-run for quality control, not as an upload's transcription:
    its job still checks the QA consent when it runs (issue 13 re-audit)."""
    from crm.calls import services as calls

    calls.retranscribe(world.call)
    jobs.queue("transcription").empty()  # the job is lost (worker killed, Redis flushed)
    call = _fresh(world.call.id)
    call.status, call.attempts = "processing", 1
    db.session.commit()
    assert calls.reconcile() == {"requeued": 1, "failed": 0}
    [job] = jobs.queue("transcription").jobs
    assert job.args == (world.call.id, False, "call_recording_qa")
    world.refuse()  # withdrawn before the re-queued job runs
    jobs.queue("default").empty()
    run_worker()
    call = _fresh(world.call.id)
    assert job.latest_result().return_value == "refused" and call.error_code == "no_consent"
    assert not _entries("call.decrypt", call.id), "the recording was not decrypted"
