"""Documents for citizens and the regulator speak Russian: the DPO's «Отчёт по заявителю» (page and
printable) and the printed answer to an access request show purpose names, statuses, channels,
outcomes and system actors in words (the codes stay in CSV/JSON); mono calls' speakers are
«Говорящий» everywhere; API error messages are Russian while their ``code`` stays stable."""
from __future__ import annotations

import re

import pytest
from flask import g

from crm.db import db
from crm.security import audit
from tests.factories import AppealFactory, CallFactory, CitizenFactory
from tests.mfa import sign_in

NAME, PHONE = "Документова Инна Петровна", "+7 916 333-44-55"
RAW = ("sms_notifications", "call_recording_qa", ">active<", ">withdrawn<", ">call<", "anonymous", ">none<",
       "job:transcribe_call", ">system<", ">ok<", "Голос:")
MONO = [{"start": 0.0, "end": 2.0, "speaker": "speaker", "channel": 0, "text": "Здравствуйте, нет горячей воды."},
        {"start": 2.0, "end": 4.0, "speaker": "speaker", "channel": 0, "text": "Заявку приняли."}]


def _get(client, url, **kw):
    g.pop("_login_user", None)
    resp = client.get(url, **kw)
    g.pop("_login_user", None)
    return resp


@pytest.fixture()
def case(ctx, make_user, client):
    """A citizen with consents (one withdrawn), a mono call, entries by a job and an anonymous actor."""
    from crm.consent import services as consent

    op, dpo = make_user("operator"), make_user("dpo")
    citizen = CitizenFactory(full_name=NAME, phone=PHONE, address="ул. Садовая, д. 5")
    appeal = AppealFactory(citizen=citizen, topic="hot_water", description="Нет горячей воды", operator_id=op.id)
    consent.record(citizen, "sms_notifications", channel="call", operator_id=op.id)
    qa_consent = consent.record(citizen, "call_recording_qa", channel="call", operator_id=op.id)
    consent.withdraw(qa_consent, channel="call", user_id=op.id)
    call = CallFactory(operator=op, appeal=appeal, segments=MONO)
    audit.record("transcript.view", citizen_id=citizen.id, call_id=call.id, fields=["transcript"],
                 purpose="appeal_processing", actor=audit.system_actor("transcribe_call"))
    audit.record("citizen.view", citizen_id=citizen.id, fields=["full_name"], purpose="appeal_processing",
                 outcome="denied", actor=audit.Actor(None, "anonymous", "none"))
    db.session.commit()
    sign_in(client, dpo)
    g.pop("_login_user", None)
    return citizen, call


def _visible(html: str) -> str:
    """The page without attribute values and scripts (codes in hrefs and data-* are fine)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", lambda m: "<>", html)


def test_access_report_page_and_print_show_words_not_codes(case, client):
    citizen, _ = case
    for url in (f"/dpo/citizens/{citizen.id}/access-report", f"/dpo/citizens/{citizen.id}/access-report/print"):
        resp = _get(client, url)
        assert resp.status_code == 200, url
        text = _visible(resp.get_data(as_text=True))
        for raw in RAW:
            assert raw not in text.replace("<>", "><"), (url, raw)
        assert "SMS-уведомления о статусе заявки" in text and "Запись звонка для контроля качества" in text
        assert "действует" in text and "отозвано" in text and "звонок" in text
        assert "система: расшифровка звонка" in text
        assert "неизвестный пользователь" in text and "выполнено" in text and "отказано" in text
    # the CSV keeps the codes (machine-readable) under Russian headers
    csv = _get(client, f"/dpo/citizens/{citizen.id}/access-report", query_string={"format": "csv"}) \
        .get_data(as_text=True)
    assert "Действие (код)" in csv and "job:transcribe_call" in csv and "appeal_processing" in csv


def test_subject_request_printout_shows_words_and_json_keeps_codes(case, client, make_user):
    from crm.consent import rights
    from crm.users.models import User

    citizen, _ = case
    dpo = db.session.execute(db.select(User).where(User.role == "dpo")).scalars().first()
    req = rights.register(citizen.id, "access", channel="paper", user_id=dpo.id)
    # before any export: the identity document seen, then a second DPO's approval
    rights.verify_identity(req, "document", document_type="passport_rf", user=dpo)
    rights.approve_export(req, user=make_user("dpo"))
    resp = _get(client, f"/dpo/requests/{req.id}/export")
    assert resp.status_code == 200
    text = _visible(resp.get_data(as_text=True)).replace("<>", "><")
    for raw in RAW:
        assert raw not in text, raw
    assert re.search(r"Говорящий: Здравствуйте, нет горячей воды", text)
    assert "система: расшифровка звонка" in text and "отказано" in text
    data = _get(client, f"/dpo/requests/{req.id}/export", query_string={"format": "json"}).get_json()
    assert {c["purpose"] for c in data["consents"]} == {"sms_notifications", "call_recording_qa"}
    assert any(e["outcome"] == "ok" and e["role"] == "system" for e in data["access_log"])


def test_call_page_and_export_name_mono_speakers_alike(case, make_user, login):
    from crm.calls import services as calls

    from crm.users import services as users

    _, call = case
    # the citizen withdrew the QA consent: the transcript is shown to the operator who took the call (for
    # the appeal), not for quality control
    page = login(users.get(call.operator_id)).get(f"/calls/{call.id}").get_data(as_text=True)
    assert "Говорящий:" in page and "Голос:" not in page
    assert calls.get(call.id) is not None


@pytest.mark.parametrize(("headers", "status", "code", "words"), [
    ({}, 401, "unauthorized", "нужен токен"),
    ({"Authorization": "Bearer nope"}, 401, "unauthorized", "токен недействителен или отозван"),
])
def test_api_auth_errors_are_russian_with_stable_codes(ctx, client, headers, status, code, words):
    resp = client.get("/api/v1/citizens/x/consents", headers=headers)
    err = resp.get_json()["error"]
    assert (resp.status_code, err["code"]) == (status, code) and words in err["message"]


def test_api_role_and_body_errors_are_russian(ctx, client, make_user, api_token):
    resp = client.post("/api/v1/citizens/x/consents", json={"purpose": "csat_survey"},
                       headers=api_token(make_user("supervisor")))
    err = resp.get_json()["error"]
    assert resp.status_code == 403 and err["code"] == "forbidden"
    assert err["message"] == "роли «супервизор» это действие не разрешено"
    resp = client.post("/api/v1/citizens/x/consents", data="[1]", content_type="application/json",
                       headers=api_token(make_user("operator")))
    err = resp.get_json()["error"]
    assert resp.status_code in (400, 404) and not re.search(r"[A-Za-z]{4,} [a-z]{3,}", err["message"]), err
    resp = client.get("/api/v1/no-such-thing", headers=api_token(make_user("operator")))
    err = resp.get_json()["error"]
    assert resp.status_code == 404 and err["code"] == "not_found" and err["message"] == "Не найдено"
