"""The intake of an appeal is one use case, one service, one transaction
(:func:`crm.appeals.services.register_appeal`): the operator's form and ``POST /api/v1/appeals``
register the citizen, the appeal, the call recording and the consent answers through it, all or
nothing. A failure in the last step (a consent the real consent service refuses) leaves no citizen,
appeal, call, consent or recording file; the form and the API give the same rows for the same
input, and stop alike on a phone that belongs to someone else.

Runs on SQLite + embedded Redis by default and on PostgreSQL + Redis with ``DATABASE_URL`` /
``REDIS_URL`` set (CSRF is off in the ``app`` fixture).
"""
from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from tests.clients import SharedContextClient
from tests.core.test_pages import clean_side_effects, stored_files  # noqa: F401 (a fixture)
from tests.factories import CitizenFactory
from tests.wavs import tone_wav

WRITES = ("citizen.create", "appeal.create", "call.create", "consent.grant", "consent.refuse")


def count(model, *where) -> int:
    from crm.db import db

    db.session.expire_all()
    return db.session.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar_one()


def counts() -> dict[str, int]:
    from crm.appeals.models import Appeal
    from crm.calls.models import Call
    from crm.citizens.models import Citizen
    from crm.consent.models import ConsentEvent

    return {"citizens": count(Citizen), "appeals": count(Appeal), "calls": count(Call),
            "consents": count(ConsentEvent)}


def logged(*actions: str) -> list:
    from crm.db import db
    from crm.security.models import AccessLogEntry

    db.session.expire_all()
    return list(db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action.in_(actions))
                                   .order_by(AccessLogEntry.seq)).scalars())


def queued_jobs(app) -> int:
    from crm import jobs

    return sum(jobs.queue(q).count for q in jobs.QUEUES)


def path_of(resp) -> str:
    return urlparse(resp.headers["Location"]).path


@pytest.fixture()
def operator(make_user):
    return make_user("operator")


@pytest.fixture()
def op(ctx, operator, clean_side_effects):
    return SharedContextClient(ctx, operator)


def form_data(recording: bytes | None = None, **over) -> dict:
    data = {"submission_key": uuid.uuid4().hex, "category": "routine", "topic": "heating", "channel": "phone",
            "description": "Холодные батареи в квартире", "consent_sms": "yes", "consent_recording": "no"}
    data.update(over)
    if recording is not None:
        data["recording"] = (io.BytesIO(recording), "Звонок.wav")
    return data


def post_form(op, citizen_id: str, data: dict):
    return op.post(f"/citizens/{citizen_id}/appeals/new", data=data, content_type="multipart/form-data")


def api_body(full_name: str, phone: str, **over) -> dict:
    body = {"citizen": {"full_name": full_name, "phone": phone}, "category": "routine", "topic": "heating",
            "description": "Холодные батареи в квартире", "channel": "phone",
            "consents": {"sms_notifications": True, "call_recording_qa": False}}
    body.update(over)
    return body


# --- a failure in the last step leaves nothing ----------------------------------------------------

def test_service_consent_refused_in_the_last_step_leaves_no_citizen_appeal_call_consent_or_file(ctx, operator, app,
                                                                                                clean_side_effects):
    """A new citizen, an appeal, a recording and two answers, the second for a purpose the consent
    service does not know: the whole intake is rolled back and the encrypted file removed."""
    from crm.appeals import services as appeals
    from crm.citizens import services as citizens
    from crm.consent import services as consent

    from crm import jobs

    before, jobs_before = stored_files(app), queued_jobs(app)
    transcriptions_before = jobs.queue("transcription").count
    with pytest.raises(consent.ConsentError) as err:
        appeals.register_appeal(
            operator, citizen=citizens.CitizenData("Откатов Роман Ильич", "8 916 700-10-01"), category="emergency",
            topic="sewerage", description="Засор канализации в подвале", channel="phone",
            consents={"sms_notifications": True, "no_such_purpose": True},
            recording=(io.BytesIO(tone_wav()), "Звонок.wav"), submission_key="intake-fail-1")
    assert err.value.purpose == "no_such_purpose" and "неизвестная цель" in str(err.value)
    assert counts() == {"citizens": 0, "appeals": 0, "calls": 0, "consents": 0}
    assert stored_files(app) == before and queued_jobs(app) == jobs_before
    assert logged(*WRITES) == []  # the access-log entries of the writes went with them
    assert appeals.by_submission_key("intake-fail-1") is None
    # the same intake with good answers then goes through, and registers everything once
    intake = appeals.register_appeal(
        operator, citizen=citizens.CitizenData("Откатов Роман Ильич", "8 916 700-10-01"), category="emergency",
        topic="sewerage", description="Засор канализации в подвале", channel="phone",
        consents={"sms_notifications": True}, recording=(io.BytesIO(tone_wav()), "Звонок.wav"),
        submission_key="intake-fail-1")
    assert not intake.replayed and intake.citizen_registered and intake.call is not None
    assert counts() == {"citizens": 1, "appeals": 1, "calls": 1, "consents": 1}
    # queued: the transcription and, the citizen having consented to SMS, the message with the appeal's number
    assert len(stored_files(app) - before) == 1 and queued_jobs(app) == jobs_before + 2
    assert jobs.queue("transcription").count == transcriptions_before + 1
    assert [j.func_name for j in jobs.queue("default").jobs][-1:] == ["crm.appeals.jobs.send_registration_notice"]


def test_service_invalid_recording_registers_and_looks_up_nobody(ctx, operator, app, clean_side_effects):
    from crm.appeals import services as appeals
    from crm.calls import services as calls
    from crm.citizens import services as citizens

    before = stored_files(app)
    with pytest.raises(calls.CallError):
        appeals.register_appeal(
            operator, citizen=citizens.CitizenData("Откатов Роман Ильич", "8 916 700-10-02"), category="routine",
            topic="lift", description="Лифт не работает", channel="phone", consents={"sms_notifications": True},
            recording=(io.BytesIO(b"\x00\x13\x37\x42" * 512), "Звонок.wav"))
    assert counts() == {"citizens": 0, "appeals": 0, "calls": 0, "consents": 0}
    assert stored_files(app) == before
    assert logged(*WRITES, "citizen.search") == []  # the file is checked before anything else


def test_form_consent_refused_in_the_last_step_keeps_no_appeal_call_consent_or_file(op, ctx, app, monkeypatch):
    """Before, the form committed the appeal and the recording, then the consents one by one: a
    consent refused left the appeal and its call behind. Now the form comes back (422) with the
    reason beside the answer, and nothing of the submission is stored."""
    from crm.consent import services as consent

    cid = CitizenFactory(full_name="Формина Ольга", phone="8 916 700-10-03").id
    monkeypatch.setitem(consent.DEFAULT_VERSION, "call_recording_qa", "no-such-version")  # refused by record()
    before, jobs_before, rows = stored_files(app), queued_jobs(app), counts()
    resp = post_form(op, cid, form_data(tone_wav(), consent_sms="yes", consent_recording="yes"))
    assert resp.status_code == 422, resp.headers.get("Location")
    html = resp.get_data(as_text=True)
    m = re.search(r'<p class="err">([^<]+)</p>', html)
    assert m and "Ответ о согласии не записан" in m.group(1) and "no-such-version" in m.group(1), html[:3000]
    assert counts() == rows  # no appeal, call or consent (the citizen was registered before, by its own form)
    assert stored_files(app) == before and queued_jobs(app) == jobs_before
    assert logged("appeal.create", "call.create", "consent.grant", "consent.refuse") == []


# --- the form and the API give the same result ----------------------------------------------------

def _rows_of(citizen_id: str) -> dict:
    """What an intake stored for a citizen, without ids and times."""
    from crm.appeals.models import Appeal
    from crm.consent.models import ConsentEvent
    from crm.db import db
    from crm.security.models import AccessLogEntry

    db.session.expire_all()
    appeals = db.session.execute(sa.select(Appeal).where(Appeal.citizen_id == citizen_id)).scalars().all()
    events = db.session.execute(sa.select(ConsentEvent).where(ConsentEvent.citizen_id == citizen_id)
                                .order_by(ConsentEvent.purpose_code)).scalars().all()
    actions = db.session.execute(sa.select(AccessLogEntry.action).where(
        AccessLogEntry.citizen_id == citizen_id, AccessLogEntry.action.in_(WRITES))
        .order_by(AccessLogEntry.seq)).scalars().all()
    return {"appeals": [(a.status, a.category, a.topic, a.channel, a.operator_id, a.description, a.repeat_of_id)
                        for a in appeals],
            "consents": [(e.purpose_code, e.given, e.channel, e.text_version, e.text_hash, e.operator_id, e.status)
                         for e in events],
            "log": list(actions)}


def test_form_and_api_store_the_same_for_the_same_input(op, ctx, operator, api_token):
    from crm.citizens.models import Citizen

    form_cid = re.fullmatch(r"/citizens/([^/]+)/appeals/new", path_of(op.post("/citizens", data={
        "full_name": "Одинаков Иван", "phone": "8 916 700-20-01", "submission_key": uuid.uuid4().hex}))).group(1)
    assert post_form(op, form_cid, form_data()).status_code == 302
    resp = op.post("/api/v1/appeals", json=api_body("Одинаков Пётр", "8 916 700-20-02"), headers=api_token(operator))
    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()
    # by purpose code, whatever order the form's fields or the JSON object's keys have
    assert [c["purpose"] for c in created["consents"]] == ["call_recording_qa", "sms_notifications"]
    assert [c["status"] for c in created["consents"]] == ["refused", "active"] and created["consent_error"] is None
    form_rows, api_rows = _rows_of(form_cid), _rows_of(created["citizen_id"])
    assert form_rows == api_rows
    assert form_rows["consents"][0][:3] == ("call_recording_qa", False, "call")
    assert form_rows["consents"][1][:3] == ("sms_notifications", True, "call")
    assert form_rows["log"] == ["citizen.create", "appeal.create", "consent.refuse", "consent.grant"]
    assert count(Citizen) == 2


def test_form_and_api_stop_alike_on_a_phone_in_use_and_register_once_confirmed(op, ctx, operator, api_token):
    """The form's citizen step and the API answer 409 for the same citizens and register nobody; with
    the confirmation both register one new citizen, whose intake then stores the same rows."""
    from crm.citizens.models import Citizen

    existing = {CitizenFactory(full_name="Занятова Мария", phone="8 916 700-30-01").id,
                CitizenFactory(full_name="Занятов Игорь", phone="89167003001").id}
    headers = api_token(operator)
    form = {"full_name": "Новиков Артём", "phone": "+7 (916) 700 30 01", "submission_key": uuid.uuid4().hex}
    refused = op.post("/citizens", data=form)
    assert refused.status_code == 409
    listed = set(re.findall(r"/citizens/([0-9a-f-]{36})/appeals/new", refused.get_data(as_text=True)))
    api_refused = op.post("/api/v1/appeals", json=api_body("Новиков Артём", "8 916 700-30-01"), headers=headers)
    assert api_refused.status_code == 409 and api_refused.get_json()["error"]["code"] == "phone_in_use"
    assert listed == set(api_refused.get_json()["citizen_ids"]) == existing
    assert count(Citizen) == 2 and logged("appeal.create", "consent.grant", "consent.refuse") == []

    confirmed = op.post("/citizens", data=form | {"confirm_duplicate": "y", "confirmed_phone": form["phone"]})
    form_cid = re.fullmatch(r"/citizens/([^/]+)/appeals/new", path_of(confirmed)).group(1)
    assert post_form(op, form_cid, form_data()).status_code == 302
    api_ok = op.post("/api/v1/appeals", json=api_body("Новиков Артём", "8 916 700-30-01", confirm_duplicate=True),
                     headers=headers)
    assert api_ok.status_code == 201, api_ok.get_json()
    api_cid = api_ok.get_json()["citizen_id"]
    assert len({form_cid, api_cid} | existing) == 4 and count(Citizen) == 4
    assert _rows_of(form_cid) == _rows_of(api_cid)


def test_api_unknown_consent_purpose_is_400_and_registers_nothing(client, operator, api_token):
    resp = client.post("/api/v1/appeals", headers=api_token(operator), json=api_body(
        "Откатов Роман", "8 916 700-40-01", consents={"sms_notifications": True, "telepathy": True}))
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["code"] == "invalid_purpose"
    assert counts() == {"citizens": 0, "appeals": 0, "calls": 0, "consents": 0}
    assert logged(*WRITES) == []


def test_api_without_a_configured_controller_registers_the_appeal_as_the_form_does(ctx, client, operator, api_token,
                                                                                    monkeypatch):
    """No consent may be stored without the controller's name and address: the form registers the
    appeal and says the answers were not recorded (test_consent_controller); the API does the same."""
    from crm.consent import services as consent

    monkeypatch.setitem(ctx.config, "CRM_CONTROLLER_NAME", None)
    resp = client.post("/api/v1/appeals", json=api_body("Безоператоров Иван", "8 916 700-50-01"),
                       headers=api_token(operator))
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["consents"] == [] and data["consent_error"] == consent.CONTROLLER_NOT_CONFIGURED
    assert counts() == {"citizens": 1, "appeals": 1, "calls": 0, "consents": 0}


def test_views_and_api_leave_transactions_to_the_service():
    """No ``rollback()`` in the appeals' views and API: the service rolls back (crm.db.atomic)."""
    root = Path(__file__).resolve().parents[2] / "crm" / "appeals"
    for name in ("views.py", "api.py"):
        assert "rollback(" not in (root / name).read_text(encoding="utf-8"), name
