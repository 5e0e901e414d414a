"""Consent and data subject rights (152-ФЗ): withdrawal stops SMS and QA use at once and keeps the
appeal; legal clocks on the working-day calendar; the access export holds everything of one citizen
and nothing of another; erasure needs two different people and leaves a destruction act; retention
on seeded old data; the register of purposes; consent texts and their hashes; append-only events.

Runs on SQLite + embedded Redis by default and on PostgreSQL + Redis with ``DATABASE_URL`` /
``REDIS_URL``; jobs run in a real RQ worker (burst mode).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CallFactory, CitizenFactory
from tests.wavs import tone_wav

MSK = ZoneInfo("Europe/Moscow")
NAME_A, PHONE_A, PHRASE_A = "Согласнова Вера Павловна", "+7 912 404-51-62", "в ванной нет напора горячей воды"
NAME_B, PHONE_B, PHRASE_B = "Посторонний Глеб Ильич", "+7 903 777-12-34", "лифт застрял между этажами"


def entries(**where):
    from crm.security.models import AccessLogEntry

    db.session.commit()
    q = sa.select(AccessLogEntry).order_by(AccessLogEntry.seq)
    for k, v in where.items():
        q = q.where(getattr(AccessLogEntry, k) == v)
    return list(db.session.execute(q).scalars())


def outbox(citizen_id):
    from crm.consent import sms

    db.session.commit()
    return sms.outbox(citizen_id=citizen_id)


def login_as(ctx, user) -> SharedContextClient:
    return SharedContextClient(ctx, user)


@pytest.fixture()
def work(run_worker):
    """Run the real worker once the test's session holds no transaction (on SQLite every transaction
    holds the write lock from BEGIN IMMEDIATE, which would keep the job waiting)."""
    def run():
        db.session.commit()
        run_worker()
        db.session.expire_all()
    return run


@pytest.fixture()
def no_transcription(monkeypatch):
    from crm.calls import services as calls

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)


def seed_citizen(op, name, phone, phrase, *, sms_consent=True, qa_consent=True, with_call=True):
    """A citizen with two appeals (one transition with a comment), a transcribed call with a QA comment,
    consents. Returns a namespace of what was made."""
    from crm.appeals import services as appeals
    from crm.consent import services as consent

    c = CitizenFactory(full_name=name, phone=phone, email=f"{phone[-2:]}@example.ru", address="ул. Гоголя, д. 8",
                       apartment="3")
    events = []
    if sms_consent:
        events.append(consent.record(c, "sms_notifications", channel="call", operator_id=op.id))
    a1 = AppealFactory(citizen=c, operator=op, topic="hot_water", description=f"Жалоба: {phrase}")
    a2 = AppealFactory(citizen=c, operator=op, category="consultation", topic="billing",
                       description=f"Вопрос по счёту ({phrase[:10]})")
    appeals.transition(a1, "escalated", user_id=op.id, comment=f"Передано в АДС: {phrase}")
    call = None
    if with_call:
        call = CallFactory(appeal=a1, operator=op, audio=tone_wav(0.5), checks=False, segments=[
            {"start": 0.0, "end": 0.5, "speaker": "citizen", "channel": None, "text": f"Скажу так: {phrase}"}])
    if qa_consent:
        events.append(consent.record(c, "call_recording_qa", channel="call", operator_id=op.id, appeal_id=a1.id))
    return SimpleNamespace(citizen=c, appeals=[a1, a2], call=call, consents=events, phrase=phrase)


# --- withdrawal: effects at once ------------------------------------------------------------------

def test_withdrawal_stops_sms_and_qa_and_keeps_the_appeal(ctx, make_user, api_token, work, no_transcription):
    from crm.appeals import services as appeals
    from crm.consent import rights, services as consent
    from crm.consent.models import DataSubjectRequest

    op = make_user("operator")
    w = seed_citizen(op, NAME_A, PHONE_A, PHRASE_A)
    cid, appeal = w.citizen.id, w.appeals[0]
    work()  # the SMS of the "escalated" transition
    sent = outbox(cid)
    assert [m.kind for m in sent] == ["status"], sent
    assert sent[0].to_masked == "+7 912 ***-**-62" and "передано исполнителю" in sent[0].body
    assert consent.may_notify(cid, "sms_notifications") and consent.may_use_for_qa(cid)
    assert consent.may_use_for_qa(w.call.citizen_id)

    # by API: the SMS consent; by the operator's button: the recording consent
    sms_consent, qa_consent = w.consents
    resp = ctx.test_client().post(f"/api/v1/consents/{sms_consent.id}/withdraw", json={"channel": "call"},
                                  headers=api_token(op))
    assert resp.status_code == 200 and resp.get_json()["status"] == "withdrawn"
    assert not consent.may_notify(cid, "sms_notifications")
    client = login_as(ctx, op)
    assert client.post(f"/consents/{qa_consent.id}/withdraw", data={"next": f"/appeals/{appeal.id}"}).status_code == 302
    db.session.expire_all()
    assert not consent.may_use_for_qa(cid)

    appeals.transition(db.session.get(type(appeal), appeal.id), "in_progress", user_id=op.id)
    work()
    assert len(outbox(cid)) == 1, "an SMS was sent after the consent was withdrawn"
    # a job queued before the withdrawal sends nothing either
    from crm.appeals import notifications as sms

    assert sms.notify_status(appeal.id, "not-an-event") == "no_consent"

    # the appeals survive, readable, with their history
    db.session.expire_all()
    kept = appeals.get(appeal.id)
    assert kept is not None and kept.description == f"Жалоба: {PHRASE_A}" and kept.status == "in_progress"
    assert len(appeals.for_citizen(cid)) == 2

    # each withdrawal opened a request with the 30-day clock (ст. 21 ч. 5)
    reqs = db.session.execute(sa.select(DataSubjectRequest).where(DataSubjectRequest.citizen_id == cid)).scalars().all()
    assert sorted((r.type, r.purpose_code, r.channel) for r in reqs) == [
        ("withdrawal", "call_recording_qa", "call"), ("withdrawal", "sms_notifications", "call")]
    for r in reqs:
        assert r.due_at == rights.due_for("withdrawal", r.received_at)
        assert timedelta(days=30) <= r.due_at - r.received_at < timedelta(days=31)
    actions = [e.action for e in entries(citizen_id=cid)]
    assert actions.count("consent.withdraw") == 2 and actions.count("dsr.register") == 2
    assert "sms.send" in actions


def test_withdrawing_one_event_withdraws_the_purpose_and_is_always_accepted(ctx, make_user, api_token):
    from crm.consent import services as consent
    from crm.db import utcnow

    op = make_user("operator")
    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    # two consents in force for one purpose: an older text version, then the current one (the same
    # version again would be the same consent: record is idempotent)
    first = consent.record(c, "sms_notifications", channel="call", text_version="sms-2026-1")
    second = consent.record(c, "sms_notifications", channel="web")
    assert second.id != first.id and second.text_version != first.text_version
    consent.withdraw(first, channel="paper")
    assert not consent.has_consent(c.id, "sms_notifications")
    assert second.withdrawn_at == first.withdrawn_at
    c.erased_at = utcnow()
    db.session.commit()
    third = consent.get(second.id)
    resp = ctx.test_client().post(f"/api/v1/consents/{third.id}/withdraw", headers=api_token(op))
    assert resp.status_code == 200
    with pytest.raises(consent.ConsentError) as err:
        consent.record(c, "sms_notifications")
    assert err.value.code == "erased"


def test_demand_to_stop_processing_stops_notifications(ctx, make_user):
    from crm.consent import rights, services as consent

    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    consent.record(c, "sms_notifications")
    consent.record(c, "call_recording_qa")
    assert consent.may_notify(c.id, "sms_notifications")
    req = rights.register(c.id, "stop_processing", channel="paper", purpose="sms_notifications")
    assert not consent.may_notify(c.id, "sms_notifications") and consent.may_use_for_qa(c.id)
    assert req.due_at == rights.due_for("stop_processing", req.received_at)
    assert consent.may_notify(None, "sms_notifications") is False and consent.may_use_for_qa(None) is False


# --- legal clocks ---------------------------------------------------------------------------------

def test_clocks_cross_the_january_holidays():
    from crm.consent import rights

    received = datetime(2026, 12, 30, 15, 0, tzinfo=MSK).astimezone(timezone.utc)
    # 31.12.2026 and 1–8.01.2027 are holidays, 9–10.01 a weekend: the 10th working day is 22.01.2027
    for kind in ("stop_processing", "access"):
        due = rights.due_for(kind, received)
        assert due.astimezone(MSK) == datetime(2027, 1, 22, 23, 59, 59, tzinfo=MSK), kind
        assert due.tzinfo is not None
    assert rights.due_for("withdrawal", received).astimezone(MSK) == datetime(2027, 1, 29, 23, 59, 59, tzinfo=MSK)
    # a request late on 30.12 Moscow time that is already 31.12 in no zone still counts from 30.12
    late = datetime(2026, 12, 30, 23, 30, tzinfo=MSK).astimezone(timezone.utc)
    assert rights.due_for("access", late).astimezone(MSK).date().isoformat() == "2027-01-22"
    # the +5 working-day extension counts from the deadline: 25–29.01.2027
    from crm.timeutil import add_working_days

    assert add_working_days(rights.due_for("access", received), 5).astimezone(MSK).date().isoformat() == "2027-01-29"
    # May holidays of 2026: received 30.04 → 1.05 holiday, 2–3 weekend, 11.05 holiday
    may = rights.due_for("access", datetime(2026, 4, 30, 10, tzinfo=MSK))
    assert may.astimezone(MSK).date().isoformat() == "2026-05-18"
    with pytest.raises(rights.RequestError):
        rights.due_for("telepathy", received)


def test_extension_needs_reasons_happens_once_and_answer_needs_the_export(ctx, make_user):
    from crm.consent import rights

    dpo = make_user("dpo")
    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    req = rights.register(c.id, "access", channel="email", user_id=dpo.id)
    with pytest.raises(rights.RequestError):
        rights.extend(req, "нужно", user=dpo)
    rights.extend(req, "запрошены архивные записи звонков из резервного хранилища", user=dpo)
    from crm.timeutil import add_working_days

    assert req.extended_due_at == add_working_days(req.due_at, 5) and req.deadline == req.extended_due_at
    with pytest.raises(rights.RequestError) as err:
        rights.extend(req, "ещё раз, по тем же причинам", user=dpo)
    assert err.value.code == "already_extended"
    with pytest.raises(rights.RequestError) as err:
        rights.answer(req, "направлены сведения", user=dpo)
    assert err.value.code == "no_export"
    withdrawal = rights.register(c.id, "withdrawal", channel="paper")
    with pytest.raises(rights.RequestError) as err:
        rights.extend(withdrawal, "причины для продления срока", user=dpo)
    assert err.value.code == "not_extendable"
    with pytest.raises(rights.RequestError):
        rights.register(c.id, "access", channel="paper", received_at=datetime.now(timezone.utc) + timedelta(days=2))


# --- the access export ----------------------------------------------------------------------------

def test_access_export_has_every_record_of_the_citizen_and_nothing_of_another(ctx, make_user, work,
                                                                               no_transcription):
    from crm.consent import rights
    from crm.consent.models import DataSubjectRequest
    from crm.qa import services as qa

    op, sup, dpo = make_user("operator"), make_user("supervisor"), make_user("dpo")
    a = seed_citizen(op, NAME_A, PHONE_A, PHRASE_A)
    b = seed_citizen(op, NAME_B, PHONE_B, PHRASE_B)
    card = qa.ensure_default_scorecard()
    qa.evaluate(a.call, evaluator=sup, answers={c["code"]: "yes" for c in card.criteria}, comment="Вежливо, по делу")
    qa.evaluate(b.call, evaluator=sup, answers={c["code"]: "yes" for c in card.criteria}, comment="Чужая оценка")
    work()  # status SMS of both
    stop = rights.register(a.citizen.id, "stop_processing", channel="paper", purpose="csat_survey")

    client = login_as(ctx, dpo)
    resp = client.post("/dpo/requests", data={"citizen_id": a.citizen.id, "type": "access", "channel": "email",
                                              "purpose": "", "note": "просит сведения о своих данных"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    req = db.session.execute(sa.select(DataSubjectRequest).where(DataSubjectRequest.type == "access")).scalar_one()
    # the identity document seen, and a second DPO's approval, come before any export
    rights.verify_identity(req, "document", document_type="passport_rf", user=dpo)
    rights.approve_export(req, user=make_user("dpo"))
    before = max([e.seq for e in entries()] or [0])
    resp = client.get(f"/dpo/requests/{req.id}/export", query_string={"format": "json"})
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    text = resp.get_data(as_text=True)
    data = json.loads(text)

    # every record of A
    assert data["citizen"]["full_name"] == NAME_A and data["citizen"]["phone"] == "+7 912 404-51-62"
    assert data["citizen"]["email"] and data["citizen"]["address"] == "ул. Гоголя, д. 8"
    assert {x["id"] for x in data["appeals"]} == {x.id for x in a.appeals}
    assert {x["number"] for x in data["appeals"]} == {x.number for x in a.appeals}
    assert f"Жалоба: {PHRASE_A}" in text and f"Передано в АДС: {PHRASE_A}" in text
    calls_out = [c for x in data["appeals"] for c in x["calls"]]
    assert [c["id"] for c in calls_out] == [a.call.id]
    assert calls_out[0]["transcript"]["segments"][0]["text"] == f"Скажу так: {PHRASE_A}"
    assert calls_out[0]["evaluations"][0]["comment"] == "Вежливо, по делу"
    assert {c["id"] for c in data["consents"]} == {e.id for e in a.consents}
    assert all(c["text"] and c["text_verified"] for c in data["consents"])
    assert {r["id"] for r in data["requests"]} == {stop.id, req.id}
    assert [m["text"] for m in data["sms"]] == [m.body for m in outbox(a.citizen.id)] and data["sms"]
    assert {p["purpose"] for p in data["processing"]} >= {"appeal_processing", "sms_notifications"}
    assert data["access_log"] and all(set(e) >= {"at", "action", "role"} for e in data["access_log"])
    assert len(data["sha256"]) == 64

    # nothing of B
    for value in (NAME_B, "777-12-34", "79037771234", PHRASE_B, b.citizen.id, b.call.id, "Чужая оценка",
                  *[x.id for x in b.appeals], *[x.number for x in b.appeals], *[e.id for e in b.consents],
                  *[m.id for m in outbox(b.citizen.id)]):
        assert value not in text, value

    # the export is in the access log, with the reads it made, naming A only
    new = [e for e in entries() if e.seq > before]
    assert {e.citizen_id for e in new if e.citizen_id} == {a.citizen.id}
    actions = {e.action for e in new}
    assert {"dsr.export", "citizen.reveal", "appeal.view", "transcript.view", "evaluation.view", "audit.report"} <= actions
    export = [e for e in new if e.action == "dsr.export"][0]
    assert export.actor_id == dpo.id and export.purpose == "data_subject_request" and PHRASE_A not in (export.detail or "")
    db.session.expire_all()
    req = rights.get(req.id)
    assert req.export_sha256 == data["sha256"]

    # the printable document, then the answer
    page = client.get(f"/dpo/requests/{req.id}/export")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert NAME_A in html and PHRASE_A in html and NAME_B not in html and PHRASE_B not in html
    resp = client.post(f"/dpo/requests/{req.id}/answer", data={"decision": "answer", "note": "выгрузка направлена"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert rights.get(req.id).status == "answered"


def test_export_is_for_the_dpo_only(ctx, make_user):
    from crm.consent import rights
    from crm.dpo import services as dpo
    from crm.security.permissions import PermissionDenied

    op = make_user("operator")
    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    req = rights.register(c.id, "access", channel="paper")
    with pytest.raises(PermissionDenied):
        dpo.export_citizen(c.id, user=op, request=req)
    assert login_as(ctx, op).get(f"/dpo/requests/{req.id}/export").status_code == 403


def test_admins_have_no_dpo_pages_and_two_admins_cannot_erase(ctx, make_user, api_token):
    """The DPO audits the administrators too (design.md): no DPO page, DPO API or DPO service lets an
    administrator in, so two administrators cannot erase a citizen or export their data."""
    from crm.consent import rights, services as consent
    from crm.dpo import services as dpo_services
    from crm.security.permissions import PermissionDenied

    dpo, admin, admin2 = make_user("dpo"), make_user("admin"), make_user("admin")
    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    access = rights.register(c.id, "access", channel="paper")
    pending = rights.request_erasure(c.id, "требование заявителя", user=dpo)

    # every page of the DPO's blueprint (generated from the URL map), GET and POST
    args = {"citizen_id": c.id, "request_id": access.id, "consent_id": "x", "alert_id": 1, "act_id": "x",
            "code": "csat_survey", "proposal_id": "x", "decision": "approve"}
    client = login_as(ctx, admin)
    checked = 0
    for rule in ctx.url_map.iter_rules():
        if not rule.endpoint.startswith("dpo."):
            continue
        with ctx.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **{a: args[a] for a in rule.arguments})
        for method in sorted(rule.methods & {"GET", "POST"}):
            resp = getattr(client, method.lower())(url)
            assert resp.status_code == 403, (method, url, resp.status_code)
            checked += 1
    assert checked >= 20
    assert client.post(f"/dpo/requests/{pending.id}/answer", data={"decision": "approve"}).status_code == 403
    assert client.get("/api/v1/audit", headers=api_token(admin)).status_code == 403

    # the services refuse as well (two administrators: one requests, the other approves)
    with pytest.raises(PermissionDenied):
        rights.request_erasure(c.id, "требование заявителя", user=admin2)
    with pytest.raises(PermissionDenied):
        rights.approve_erasure(pending, user=admin)
    with pytest.raises(PermissionDenied):
        rights.reject_erasure(pending, "нет оснований", user=admin)
    with pytest.raises(PermissionDenied):
        dpo_services.export_citizen(c.id, user=admin, request=access)
    with pytest.raises(PermissionDenied):
        rights.answer(access, "ответ", user=admin)
    with pytest.raises(PermissionDenied):
        rights.extend(access, "нужно больше времени на ответ", user=admin)
    with pytest.raises(PermissionDenied):
        consent.history(c.id, user=admin)
    db.session.rollback()
    db.session.expire_all()
    assert rights.get(pending.id).status == "awaiting_approval" and c.erased_at is None


# --- erasure: four eyes, destruction act ----------------------------------------------------------

def test_erasure_needs_two_different_people_and_leaves_an_act(ctx, make_user, api_token, work,
                                                              no_transcription):
    from crm.consent import rights, services as consent
    from crm.consent.models import DataSubjectRequest, DestructionAct
    from crm.security.models import DestructionRecord

    op, dpo1, dpo2 = make_user("operator"), make_user("dpo"), make_user("dpo")
    w = seed_citizen(op, NAME_A, PHONE_A, PHRASE_A)
    other = seed_citizen(op, NAME_B, PHONE_B, PHRASE_B, with_call=False)
    work()
    cid = w.citizen.id
    c1, c2 = login_as(ctx, dpo1), login_as(ctx, dpo2)

    history = c1.get(f"/dpo/citizens/{cid}/consents")
    assert history.status_code == 200 and "Запросить уничтожение" in history.get_data(as_text=True)
    resp = c1.post(f"/dpo/citizens/{cid}/erasure", data={"reason": "требование заявителя от 20.11.2026, вх. № 15",
                                                         "channel": "paper"})
    assert resp.status_code == 302
    req = db.session.execute(sa.select(DataSubjectRequest).where(DataSubjectRequest.type == "erasure")).scalar_one()
    assert req.status == "awaiting_approval" and req.requested_by == dpo1.id

    # the requester cannot approve: not by the page, not by the service, not in the database
    page = c1.get(f"/dpo/requests/{req.id}").get_data(as_text=True)
    assert "Утвердить и уничтожить данные" not in page and "другой сотрудник" in page
    c1.post(f"/dpo/requests/{req.id}/answer", data={"decision": "approve"})
    with pytest.raises(rights.RequestError) as err:
        rights.approve_erasure(rights.get(req.id), user=dpo1)
    assert err.value.code == "four_eyes"
    db.session.expire_all()
    assert rights.get(req.id).status == "awaiting_approval" and w.citizen.__class__ and \
        db.session.get(type(w.citizen), cid).erased_at is None
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.update(DataSubjectRequest).where(DataSubjectRequest.id == req.id)
                           .values(approved_by=dpo1.id))
        db.session.flush()
    db.session.rollback()
    with pytest.raises(rights.RequestError):
        rights.request_erasure(cid, "второй раз то же самое", user=dpo2)  # one pending request is enough

    # a second person approves
    resp = c2.post(f"/dpo/requests/{req.id}/answer", data={"decision": "approve"})
    assert resp.status_code == 302
    db.session.expire_all()
    req = rights.get(req.id)
    assert req.status == "answered" and req.approved_by == dpo2.id and req.destruction_record_id
    citizen = db.session.get(type(w.citizen), cid)
    assert citizen.erased_at is not None and citizen.full_name_enc is None
    record = db.session.get(DestructionRecord, req.destruction_record_id)
    assert record.key_destroyed_at is not None and record.actor_id == dpo2.id
    act = db.session.execute(sa.select(DestructionAct).where(DestructionAct.citizen_id == cid)).scalar_one()
    assert act.destruction_record_id == record.id and act.request_id == req.id and re.fullmatch(r"\d{4}-\d{5}", act.number)
    assert dpo1.username in act.requested_by and dpo2.username in act.approved_by
    assert "требование заявителя" in act.reason and act.method == record.method and act.destroyed_at == record.at
    assert "ФИО" in act.categories and "расшифровки" in act.categories and "номер телефона" in act.categories
    assert cid in act.subject_ref and all(a.number in act.subject_ref for a in w.appeals)
    for value in (NAME_A, "404-51-62", PHRASE_A):
        assert value not in " ".join(str(getattr(act, k)) for k in ("subject_ref", "categories", "reason"))
    printed = c2.get(f"/dpo/destruction-acts/{act.id}")
    assert printed.status_code == 200 and act.number in printed.get_data(as_text=True)
    assert act.number in c2.get("/dpo/destruction-acts").get_data(as_text=True)

    # gone: the SMS outbox rows, the data; kept: the consent events (proof), the appeals' statistics
    assert all(m.body is None and m.to_masked is None for m in outbox(cid))
    assert len(consent.for_citizen(cid)) == 2
    from crm.appeals import services as appeals

    assert len(appeals.for_citizen(cid)) == 2 and appeals.for_citizen(cid)[0].description is None
    assert consent.may_notify(cid, "sms_notifications") is False
    with pytest.raises(consent.ConsentError):
        consent.record(citizen, "sms_notifications")
    # withdrawal is still accepted
    resp = ctx.test_client().post(f"/api/v1/consents/{w.consents[1].id}/withdraw", headers=api_token(op))
    assert resp.status_code == 200
    # the other citizen is untouched
    assert db.session.get(type(w.citizen), other.citizen.id).full_name == NAME_B
    # the act's row cannot be changed
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.update(DestructionAct).where(DestructionAct.id == act.id).values(reason="иное"))
        db.session.flush()
    db.session.rollback()
    history = c2.get(f"/dpo/citizens/{cid}/consents").get_data(as_text=True)
    assert "отозвано" in history and "(данные уничтожены)" in history


# --- retention ------------------------------------------------------------------------------------

def backdate(citizen_id, when, *, status="closed"):
    """Move a seeded citizen's contact into the past (registration, appeals, calls); appeals get ``status``."""
    from crm.appeals.models import Appeal
    from crm.calls.models import Call
    from crm.citizens.models import Citizen

    closed = when + timedelta(days=3) if status == "closed" else None
    db.session.execute(sa.update(Citizen).where(Citizen.id == citizen_id).values(created_at=when))
    db.session.execute(sa.update(Appeal).where(Appeal.citizen_id == citizen_id)
                       .values(created_at=when, resolved_at=None, closed_at=closed, status=status))
    db.session.execute(sa.update(Call).where(Call.citizen_id == citizen_id).values(created_at=when))
    db.session.commit()


def test_retention_job_erases_and_deidentifies_old_data(ctx, make_user, work, no_transcription):
    from crm import jobs
    from crm.appeals.models import Appeal, AppealEvent
    from crm.citizens.models import Citizen
    from crm.consent import retention, services as consent
    from crm.consent.models import DataSubjectRequest, DestructionAct, RetentionRun, SmsMessage

    op = make_user("operator")
    six_years_ago = datetime.now(timezone.utc) - timedelta(days=6 * 365)
    # past the 5-year period, all appeals closed: erased
    old = seed_citizen(op, "Давний Пётр Иванович", "+7 912 404-00-02", "давно закрытая заявка", sms_consent=False,
                       qa_consent=False)
    backdate(old.citizen.id, six_years_ago)
    # past the period but an appeal is still being worked on: kept, counted as pending
    busy = seed_citizen(op, "Занятой Олег Петрович", "+7 912 404-00-01", "течёт стояк", sms_consent=False,
                        qa_consent=False, with_call=False)
    backdate(busy.citizen.id, six_years_ago, status="in_progress")
    # recent, SMS consent withdrawn, one SMS older than the 365-day period: messages lose number and text
    fresh = seed_citizen(op, NAME_B, PHONE_B, PHRASE_B, with_call=False, qa_consent=False)
    # recent, SMS consent in force: kept as is
    keeper = seed_citizen(op, NAME_A, PHONE_A, PHRASE_A, with_call=False, qa_consent=False)
    work()  # the status SMS
    old_sms = outbox(fresh.citizen.id)[0]
    db.session.execute(sa.update(SmsMessage).where(SmsMessage.id == old_sms.id)
                       .values(created_at=datetime.now(timezone.utc) - timedelta(days=400)))
    db.session.commit()
    assert consent.get_purpose("appeal_processing").retention_days == 1825
    found, blocked = retention.expired_citizens(1825, datetime.now(timezone.utc))
    assert [cid for cid, _ in found] == [old.citizen.id] and blocked == 1
    consent.withdraw(fresh.consents[0], channel="web")

    jobs.enqueue("crm.consent.jobs.retention_job")
    work()
    db.session.expire_all()
    run = db.session.execute(sa.select(RetentionRun)).scalar_one()
    assert run.finished_at is not None and not run.dry_run and run.actor == "job:retention"
    rep = run.report
    assert rep["erased_citizens"] == [old.citizen.id]
    assert rep["purposes"]["appeal_processing"]["erased"] == 1 and rep["purposes"]["appeal_processing"]["pending"] == 1
    erased = db.session.get(Citizen, old.citizen.id)
    assert erased.erased_at is not None and erased.full_name_enc is None
    act = db.session.execute(sa.select(DestructionAct).where(DestructionAct.citizen_id == old.citizen.id)).scalar_one()
    assert act.number in rep["acts"] and "истёк срок хранения" in act.reason and act.approved_by is None
    assert "job:retention" in act.requested_by and "ст. 21 ч. 4" in act.legal_basis
    for w in (busy, fresh, keeper):
        assert db.session.get(Citizen, w.citizen.id).erased_at is None
    msgs = list(db.session.execute(sa.select(SmsMessage)).scalars())
    assert all(m.body is None and m.deidentified_at is not None for m in msgs if m.citizen_id == fresh.citizen.id)
    assert [m.body is not None for m in msgs if m.citizen_id == keeper.citizen.id] == [True]
    withdrawal = db.session.execute(sa.select(DataSubjectRequest).where(
        DataSubjectRequest.citizen_id == fresh.citizen.id, DataSubjectRequest.type == "withdrawal")).scalar_one()
    assert withdrawal.status == "answered" and withdrawal.id in rep["closed_requests"]
    assert rep["purposes"]["sms_notifications"]["deidentified"] >= 1
    assert rep["purposes"]["call_recording_qa"]["note"]
    # the erased citizen's appeal statistics stay
    assert db.session.execute(sa.select(sa.func.count()).select_from(Appeal)
                              .where(Appeal.citizen_id == old.citizen.id)).scalar_one() == 2
    assert db.session.execute(sa.select(sa.func.count()).select_from(AppealEvent)
                              .where(AppealEvent.citizen_id == old.citizen.id)).scalar_one() >= 3

    # a second run has nothing left to do; the DPO's page shows the report
    again = retention.run()
    assert again.erased == 0 and again.report["erased_citizens"] == [] and again.deidentified == 0
    page = login_as(ctx, make_user("dpo")).get(f"/dpo/retention?run={run.id}")
    assert page.status_code == 200 and act.number in page.get_data(as_text=True)
    for q in jobs.QUEUES:
        jobs.queue(q).empty()


def test_retention_dry_run_changes_nothing(ctx, make_user, no_transcription):
    from crm.appeals.models import Appeal
    from crm.citizens.models import Citizen
    from crm.consent import retention

    op = make_user("operator")
    w = seed_citizen(op, NAME_A, PHONE_A, PHRASE_A, sms_consent=False, qa_consent=False, with_call=False)
    long_ago = datetime.now(timezone.utc) - timedelta(days=2000)
    db.session.execute(sa.update(Citizen).where(Citizen.id == w.citizen.id).values(created_at=long_ago))
    db.session.execute(sa.update(Appeal).where(Appeal.citizen_id == w.citizen.id)
                       .values(created_at=long_ago, status="closed", closed_at=long_ago))
    db.session.commit()
    dpo = make_user("dpo")
    resp = login_as(ctx, dpo).post("/dpo/retention", data={"dry_run": "y"})
    assert resp.status_code == 302
    run = retention.runs()[0]
    assert run.dry_run and run.report["purposes"]["appeal_processing"]["found"] == 1 and run.erased == 0
    assert db.session.get(Citizen, w.citizen.id).erased_at is None


# --- register of purposes, texts, one-page history ------------------------------------------------

def test_register_of_purposes_page_edit_csv_and_print(ctx, make_user):
    from crm.consent import services as consent
    from crm.security.models import AccessLogEntry

    dpo, admin = make_user("dpo"), make_user("admin")
    client = login_as(ctx, dpo)
    page = client.get("/dpo/purposes").get_data(as_text=True)
    for code in ("appeal_processing", "sms_notifications", "csat_survey", "call_recording_qa"):
        assert f'data-purpose="{code}"' in page
    assert "152-ФЗ ст. 6 ч. 1 п. 1" in page and "1825 дн." in page
    csv_resp = client.get("/dpo/purposes?format=csv")
    assert csv_resp.status_code == 200 and csv_resp.mimetype == "text/csv"
    rows = csv_resp.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert rows[0].startswith("Код,Цель обработки,Правовое основание") and len(rows) >= 5
    printed = client.get("/dpo/purposes?format=print").get_data(as_text=True)
    assert "Перечень целей обработки персональных данных" in printed and "ст. 18.1" in printed

    form = client.get("/dpo/purposes/csat_survey/edit").get_data(as_text=True)
    assert "Срок хранения, дней" in form
    data = {"name_ru": "Опрос удовлетворённости", "legal_basis": "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)",
            "requires_consent": "y", "data_categories": "телефон, оценка", "subjects": "заявители",
            "actions": "сбор, хранение, уничтожение", "processing_method": "автоматизированная",
            "recipients": "SMS-агрегатор", "retention_days": "180", "retention_basis": "полгода после опроса",
            "retention_action": "deidentify"}
    assert client.post("/dpo/purposes/csat_survey/edit", data={**data, "retention_days": "0"}).status_code == 422
    assert client.post("/dpo/purposes/csat_survey/edit", data=data).status_code == 302
    db.session.expire_all()
    p = consent.get_purpose("csat_survey")
    assert p.retention_days == 180 and p.updated_by == dpo.id and p.recipients == "SMS-агрегатор"
    log = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "purpose.update")).scalar_one()
    assert log.purpose == "csat_survey" and "retention_days" in log.detail
    consent.ensure_purposes()  # the DPO's edits survive the seeding
    assert consent.get_purpose("csat_survey").retention_days == 180
    assert login_as(ctx, admin).get("/dpo/purposes/csat_survey/edit").status_code == 403
    assert login_as(ctx, make_user("operator")).get("/dpo/purposes").status_code == 403


def test_consent_texts_carry_the_article_9_items_and_verify(ctx, monkeypatch):
    from crm.consent import services as consent
    from crm.consent.texts import DEFAULT_VERSION, TEXTS, text_hash

    for purpose in ("sms_notifications", "csat_survey", "call_recording_qa"):
        assert TEXTS[(purpose, DEFAULT_VERSION[purpose])].complete, purpose
    monkeypatch.setitem(ctx.config, "CRM_CONTROLLER_NAME", "ООО «УК Северная»")
    monkeypatch.setitem(ctx.config, "CRM_CONTROLLER_ADDRESS", "г. Казань, ул. Баумана, д. 1")
    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    e = consent.record(c, "sms_notifications", channel="call")
    words, verified = consent.consent_text(e)
    assert verified and "ООО «УК Северная»" in words and "ул. Баумана" in words and "отозвать" in words
    assert e.expires_at is not None and 364 <= (e.expires_at - e.at).days <= 365
    labels = [label for label, _ in consent.text_items(e)]
    assert any("п. 2" in x for x in labels) and any("п. 8" in x for x in labels)
    # the controller's later renaming does not change what this citizen agreed to
    monkeypatch.setitem(ctx.config, "CRM_CONTROLLER_NAME", "ООО «Другая»")
    assert consent.consent_text(e) == (words, True)
    legacy = consent.record(c, "sms_notifications", text_version="sms-2026-1")
    assert legacy.text_hash == text_hash("sms_notifications", "sms-2026-1") and consent.consent_text(legacy)[1]


def test_consent_events_are_append_only(ctx):
    from crm.consent import services as consent
    from crm.consent.models import ConsentEvent

    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    e = consent.record(c, "sms_notifications")
    for values in ({"purpose_code": "csat_survey"}, {"given": False}, {"text_hash": "0" * 64}):
        with pytest.raises(sa.exc.DatabaseError):
            db.session.execute(sa.update(ConsentEvent).where(ConsentEvent.id == e.id).values(**values))
            db.session.flush()
        db.session.rollback()
    consent.withdraw(consent.get(e.id), channel="call")
    with pytest.raises(sa.exc.DatabaseError):  # a withdrawal is recorded once
        db.session.execute(sa.update(ConsentEvent).where(ConsentEvent.id == e.id).values(withdrawn_channel="web"))
        db.session.flush()
    db.session.rollback()


def test_one_page_history_shows_evidence_and_is_logged(ctx, make_user, no_transcription):
    from crm.consent import services as consent

    op, dpo = make_user("operator"), make_user("dpo")
    w = seed_citizen(op, NAME_A, PHONE_A, PHRASE_A)
    paper = consent.record(w.citizen, "csat_survey", channel="paper", evidence_ref="вх. № 42 от 01.11.2026")
    consent.withdraw(w.consents[0], channel="call", user_id=op.id, evidence_call_id=w.call.id, evidence_offset_s=75)
    html = login_as(ctx, dpo).get(f"/dpo/citizens/{w.citizen.id}/consents").get_data(as_text=True)
    assert NAME_A in html and "404-51-62" not in html  # masked card
    assert html.count('class="event"') == 3
    assert "вх. № 42 от 01.11.2026" in html and "скан документа" in html
    assert f"звонок <code>{w.call.id[:8]}</code>" in html  # the QA consent's evidence: the appeal's call
    assert "текст совпадает" in html and "не совпадает" not in html
    assert "Цель обработки (п. 4)" in html and "Способ отзыва (п. 8)" in html
    assert "Отзыв согласия" in html  # the request the withdrawal opened
    assert paper.evidence_kind == "scan"
    logged = entries(citizen_id=w.citizen.id, action="consent.history")
    assert len(logged) == 1 and logged[0].actor_id == dpo.id


def test_operator_one_click_consent_on_the_appeal(ctx, make_user, no_transcription):
    from crm.consent import services as consent

    op = make_user("operator")
    w = seed_citizen(op, NAME_A, PHONE_A, PHRASE_A, sms_consent=False, qa_consent=False)
    client = login_as(ctx, op)
    resp = client.post(f"/appeals/{w.appeals[0].id}/consents", data={"purpose": "sms_notifications", "given": "yes",
                                                                     "offset_s": "42.5"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/appeals/{w.appeals[0].id}")
    e = consent.for_citizen(w.citizen.id)[-1]
    assert (e.purpose_code, e.channel, e.operator_id, e.appeal_id) == ("sms_notifications", "call", op.id,
                                                                        w.appeals[0].id)
    assert e.evidence_call_id == w.call.id and e.evidence_offset_s == 42.5 and e.evidence_kind == "call"
    assert consent.may_notify(w.citizen.id, "sms_notifications")


def test_giving_consent_again_is_idempotent(ctx, make_user, api_token):
    from crm.consent import services as consent
    from crm.consent.models import ConsentEvent

    op = make_user("operator")
    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    first = consent.record(c, "sms_notifications", channel="call", operator_id=op.id)
    assert first.repeated is False
    again = consent.record(c, "sms_notifications", channel="web")
    assert again.id == first.id and again.repeated is True and again.channel == "call"
    assert [e.id for e in consent.for_citizen(c.id)] == [first.id]
    assert [e.outcome for e in entries(citizen_id=c.id, action="consent.grant")] == ["ok", "repeat"]
    # the API answers 200 with the consent in force instead of 201 with a new one
    headers = api_token(op)
    resp = ctx.test_client().post(f"/api/v1/citizens/{c.id}/consents", json={"purpose": "sms_notifications"},
                                  headers=headers)
    assert resp.status_code == 200 and resp.get_json()["id"] == first.id
    # another text version, a refusal, or a consent after a withdrawal are new events
    older = consent.record(c, "sms_notifications", text_version="sms-2026-1")
    assert older.id != first.id and older.repeated is False
    other = consent.record(c, "csat_survey")
    refused = consent.record(c, "csat_survey", given=False)
    assert refused.id != other.id and not consent.has_consent(c.id, "csat_survey")
    assert consent.record(c, "csat_survey").id not in (other.id, refused.id)  # refused last: a new consent
    consent.withdraw(consent.get(first.id), channel="paper")
    fresh = consent.record(c, "sms_notifications")
    assert fresh.id != first.id and fresh.repeated is False and consent.has_consent(c.id, "sms_notifications")
    resp = ctx.test_client().post(f"/api/v1/citizens/{c.id}/consents", json={"purpose": "call_recording_qa"},
                                  headers=headers)
    assert resp.status_code == 201
    assert db.session.execute(sa.select(sa.func.count()).select_from(ConsentEvent).where(
        ConsentEvent.citizen_id == c.id, ConsentEvent.purpose_code == "sms_notifications")).scalar_one() == 3


def test_outbox_page_hides_codes(ctx, make_user, sms_inbox, run_worker):
    from crm.consent import selfservice

    dpo = make_user("dpo")
    c = CitizenFactory(full_name=NAME_A, phone=PHONE_A)
    selfservice.request_code(PHONE_A)
    run_worker()  # the code is sent by a background job
    assert outbox(c.id)
    body = sms_inbox[0].body  # the delivered text: the outbox keeps the code masked
    code = re.search(r"\d{6}", body).group(0)
    html = login_as(ctx, dpo).get("/dpo/sms-outbox").get_data(as_text=True)
    assert "(одноразовый код)" in html and code not in html and "+7 912 ***-**-62" in html


def test_retention_keeps_one_schedule(ctx):
    from rq.registry import ScheduledJobRegistry

    from crm import jobs, schedule

    q = jobs.queue("default")
    try:
        schedule.plant(only=["consent-retention"])
        schedule.plant(only=["consent-retention"])
        assert ScheduledJobRegistry(queue=q).get_job_ids() == [q.name + "-consent-retention"]
    finally:
        for job_id in ScheduledJobRegistry(queue=q).get_job_ids():
            ScheduledJobRegistry(queue=q).remove(job_id, delete_job=True)
