"""Withdrawing the consent to call recording for QA destroys that citizen's recordings kept only for
QA (issue 13, point 6; 152-ФЗ ст. 21 ч. 5: within 30 days), automatically: a job enqueued on the
``consent.changed`` hook, run here by a real RQ worker (burst mode), with the daily retention run as
the safety net. Each recording goes with its own data key; a destruction record (and act) says
whose, what, why, when and by whom without a personal value, and the DPO's retention page lists it.
A recording that is the evidence of a consent is kept (another legal basis), as are the appeal and
the citizen's other data."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import CallFactory, CitizenFactory

NAME, PHONE = "Отзывова Мария Петровна", "+7 912 555-01-23"


@pytest.fixture()
def no_transcription(monkeypatch):
    from crm.calls import services as calls

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)


def _fresh(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def _world(make_user):
    from crm.consent import services as consent

    op = make_user("operator")
    c = CitizenFactory(full_name=NAME, phone=PHONE, qa_consent=True)
    first, second = CallFactory(operator=op, citizen=c), CallFactory(operator=op, citizen=c)
    # the SMS consent was given on this call: its recording is the evidence (152-ФЗ ст. 9 ч. 3)
    evidence = CallFactory(operator=op, citizen=c)
    consent.record(c, "sms_notifications", channel="call", operator_id=op.id, evidence_call_id=evidence.id,
                   evidence_offset_s=12.5)
    other = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    qa_consent = next(e for e in consent.for_citizen(c.id) if e.purpose_code == "call_recording_qa")
    return op, c, [first, second], evidence, other, qa_consent


def test_withdrawal_destroys_the_qa_recordings_in_a_worker(ctx, make_user, api_token, run_worker, recordings,
                                                             no_transcription):
    from crm import jobs
    from crm.calls import services as calls
    from crm.calls.models import Call, Segment
    from crm.citizens import services as citizens
    from crm.consent.models import DataSubjectRequest, DestructionAct
    from crm.security import keystore, shredding
    from crm.security.models import AccessLogEntry, DestructionRecord

    op, c, doomed, evidence, other, qa_consent = _world(make_user)
    files = {call.id: calls.recording_path(call) for call in [*doomed, evidence, other]}
    assert all(p.exists() for p in files.values())
    assert all(keystore.find_by_owner(call.id) is not None for call in [*doomed, evidence, other])

    resp = ctx.test_client().post(f"/api/v1/consents/{qa_consent.id}/withdraw", json={"channel": "call"},
                                  headers=api_token(op))
    assert resp.status_code == 200 and resp.get_json()["status"] == "withdrawn"
    queued = [j for j in jobs.queue("default").jobs if j.args == (c.id,)]
    assert [j.func_name for j in queued] == ["crm.calls.jobs.destroy_qa_recordings_job"]
    run_worker()
    db.session.expire_all()

    for call in doomed:  # the recording file and its own data key are gone, the transcript too
        assert not files[call.id].exists() and keystore.find_by_owner(call.id) is None
        row = _fresh(Call, call.id)
        assert row.recording_destroyed_at is not None
        assert db.session.execute(sa.select(sa.func.count()).select_from(Segment)
                                  .where(Segment.call_id == call.id)).scalar_one() == 0
    # kept: the consent's evidence, another citizen's call, the citizen's own data key and card
    assert files[evidence.id].exists() and keystore.find_by_owner(evidence.id) is not None
    assert _fresh(Call, evidence.id).recording_destroyed_at is None
    assert files[other.id].exists() and keystore.find_by_owner(other.id) is not None
    assert keystore.find_by_owner(c.id) is not None and citizens.get(c.id).full_name == NAME

    record = db.session.execute(sa.select(DestructionRecord).where(DestructionRecord.citizen_id == c.id)).scalar_one()
    assert record.scope == "recordings" and record.categories == "recordings,transcripts"
    assert record.actor == "job:destroy_qa_recordings" and record.key_destroyed_at is not None
    assert "ст. 21 ч. 5" in record.reason
    detail = json.loads(record.detail)
    assert sorted(detail["calls"]) == sorted(call.id for call in doomed) and detail["recordings"] == 2
    assert detail["kept_as_consent_evidence"] == [evidence.id]
    clear = " ".join([record.reason, record.detail, record.method, record.categories])
    # the phone in any of its written forms (not a bare "912": the record's call ids are random UUIDs)
    assert NAME.split()[0] not in clear and PHONE[-5:] not in clear
    assert not any(form in clear for form in ("9125550123", "912 555", "912555", "+79125550123"))
    # the withdrawal's request is answered, with the act of destruction
    req = db.session.execute(sa.select(DataSubjectRequest).where(
        DataSubjectRequest.citizen_id == c.id, DataSubjectRequest.purpose_code == "call_recording_qa")).scalar_one()
    assert req.status == "answered" and req.destruction_record_id == record.id
    act = db.session.execute(sa.select(DestructionAct).where(DestructionAct.destruction_record_id == record.id)).scalar_one()
    assert "записи разговоров" in act.categories and "ст. 21 ч. 5" in act.legal_basis
    logged = db.session.execute(sa.select(AccessLogEntry.call_id).where(
        AccessLogEntry.action == "recording.destroy")).scalars().all()
    assert sorted(logged) == sorted(call.id for call in doomed)

    # the DPO's retention page lists it
    page = SharedContextClient(ctx, make_user("dpo")).get("/dpo/retention").get_data(as_text=True)
    assert 'id="recording-destructions"' in page and act.number in page and c.id in page
    # the operator finds the recording gone; completing erasures never takes the citizen's key
    opc = SharedContextClient(ctx, op)
    assert opc.get(f"/calls/{doomed[0].id}/audio").status_code == 410
    assert "уничтожен" in opc.get(f"/calls/{doomed[0].id}").get_data(as_text=True)
    assert shredding.complete_pending() == 0 and keystore.find_by_owner(c.id) is not None
    # safe to run twice: nothing more is destroyed
    assert calls.destroy_qa_recordings(c.id) is None
    assert db.session.execute(sa.select(sa.func.count()).select_from(DestructionRecord)).scalar_one() == 1


def test_a_refusal_after_consent_is_destroyed_by_the_retention_run(ctx, make_user, recordings, no_transcription):
    """Redis down or the job lost: the daily retention run destroys what a withdrawal (here a refusal
    after a consent) left, and reports it."""
    from crm import hooks, jobs
    from crm.calls import services as calls
    from crm.consent import retention, services as consent
    from crm.security import keystore

    op, c, doomed, evidence, other, _ = _world(make_user)
    consent.record(c, "call_recording_qa", channel="call", given=False, operator_id=op.id)
    for q in jobs.QUEUES:
        jobs.queue(q).empty()  # the job is lost
    assert all(calls.recording_path(call).exists() for call in doomed)

    run = retention.run()
    entry = run.report["purposes"]["call_recording_qa"]
    assert entry["erased"] == 2 and entry["pending"] == 0 and run.erased >= 2
    assert len(run.report["acts"]) == 1
    for call in doomed:
        assert not calls.recording_path(call).exists() and keystore.find_by_owner(call.id) is None
    assert calls.recording_path(evidence).exists() and calls.recording_path(other).exists()
    assert retention.run().report["purposes"]["call_recording_qa"]["erased"] == 0
    assert hooks.subscribers("retention.destroy_recordings")


def test_a_consent_in_force_destroys_nothing(ctx, make_user, recordings, no_transcription):
    from crm.calls import services as calls

    op, c, doomed, evidence, other, _ = _world(make_user)
    assert calls.destroy_qa_recordings(c.id) is None
    assert all(calls.recording_path(call).exists() for call in [*doomed, evidence, other])
