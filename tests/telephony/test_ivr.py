"""The IVR's lookups (issue 16, point 5): an ``ivr`` token answers short Russian sentences for an open
appeal, a closed one and an unknown number, with nothing the caller did not give; every lookup is
logged; the ``ivr`` account can do nothing else (no other endpoint, no sign-in); the GET form, whose
phone is in the URL, is deprecated and the request log drops it."""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from tests.api.test_api import as_role, assert_error  # noqa: F401  (as_role is a fixture)
from crm.telephony.ivr import NO_OPEN_APPEALS, NO_OUTAGE
from tests.factories import PASSWORD, AppealFactory, CitizenFactory

PHONE = "+79161234500"
NAME = "Громова Анна Петровна"


@pytest.fixture()
def ivr(as_role):
    return as_role("ivr")[1]


def lookups():
    from crm.db import db
    from crm.security.models import AccessLogEntry

    return db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "ivr.lookup")
                              .order_by(AccessLogEntry.seq)).scalars().all()


def test_open_appeal_by_number_and_by_phone(ctx, client, ivr):
    citizen = CitizenFactory(full_name=NAME, phone=PHONE, address="ул. Ленина, д. 3")
    appeal = AppealFactory(citizen=citizen, description="Течёт крыша над кухней")
    resp = client.post("/api/v1/ivr/appeal-status", json={"number": appeal.number}, headers=ivr)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    text = resp.get_json()["text"]
    year, seq = appeal.number.split("-")
    assert text.startswith(f"Обращение номер {year} дробь {int(seq)} принято") and "Срок выполнения — до" in text
    for private in ("Громова", "Ленина", "крыша", "9161234500"):
        assert private not in text
    by_phone = client.post("/api/v1/ivr/appeal-status", json={"phone": "8 916 123-45-00"}, headers=ivr)
    assert by_phone.status_code == 200 and by_phone.get_json()["found"] is True
    assert f"{int(seq)}" in by_phone.get_json()["text"] and "Громова" not in by_phone.get_json()["text"]
    logged = lookups()
    assert [e.citizen_id for e in logged] == [citizen.id, citizen.id]
    assert all(e.actor_role == "ivr" and e.appeal_id == appeal.id for e in logged)


def test_closed_appeal(ctx, client, ivr, make_user):
    from crm.appeals import services as appeals

    citizen = CitizenFactory(phone=PHONE)
    appeal = AppealFactory(citizen=citizen, category="consultation")
    user = make_user("operator")
    appeals.transition(appeal, "consulted", user=user)
    text = client.post("/api/v1/ivr/appeal-status", json={"number": appeal.number}, headers=ivr).get_json()["text"]
    assert "закрыто" in text and "Срок" not in text
    by_phone = client.post("/api/v1/ivr/appeal-status", json={"phone": PHONE}, headers=ivr).get_json()
    # by phone only open appeals are told: a closed one is not even hinted at (issue 13 re-audit)
    assert by_phone == {"text": NO_OPEN_APPEALS, "found": False}


def test_unknown_number_and_unknown_phone(ctx, client, ivr):
    resp = client.post("/api/v1/ivr/appeal-status", json={"number": "2026-999999"}, headers=ivr)
    assert resp.status_code == 200 and resp.get_json() == {
        "text": "Обращение с таким номером не найдено. Проверьте номер или дождитесь ответа оператора.",
        "found": False}
    resp = client.post("/api/v1/ivr/appeal-status", json={"phone": "+79169999999"}, headers=ivr)
    assert resp.get_json() == {"text": NO_OPEN_APPEALS, "found": False}
    assert [e.outcome for e in lookups()] == ["not_found", "not_found"]
    assert_error(client.post("/api/v1/ivr/appeal-status", json={"phone": "112"}, headers=ivr), 400, "invalid_phone")
    assert_error(client.post("/api/v1/ivr/appeal-status", json={}, headers=ivr), 400, "number_or_phone")
    assert_error(client.post("/api/v1/ivr/appeal-status", json={"number": "1", "phone": PHONE}, headers=ivr), 400,
                 "number_or_phone")


def test_outage_at_the_callers_house(ctx, client, ivr, make_user):
    from datetime import timedelta

    from crm.buildings.services import import_csv
    from crm.db import utcnow
    from crm.incidents import services as incidents

    import_csv('address\n"г. Москва, ул. Ленина, д. 5"\n"г. Москва, ул. Ленина, д. 7"\n'.encode())
    citizen = CitizenFactory(full_name=NAME, phone=PHONE, address="г. Москва, ул. Ленина, д. 5")
    CitizenFactory(phone="+79161234501", address="г. Москва, ул. Ленина, д. 7")
    # nothing registered yet
    resp = client.post("/api/v1/ivr/outage", json={"phone": PHONE}, headers=ivr)
    assert resp.status_code == 200 and resp.get_json() == {"text": NO_OUTAGE, "found": False}
    incidents.create(make_user("supervisor"), topic="hot_water", starts_at=utcnow() - timedelta(hours=1),
                     ends_at=utcnow() + timedelta(hours=5), addresses=["г. Москва, ул. Ленина, д. 5"],
                     text="Отключено горячее водоснабжение: авария на теплотрассе")
    answer = client.post("/api/v1/ivr/outage", json={"phone": "8 916 123-45-00"}, headers=ivr).get_json()
    assert answer["found"] is True
    assert answer["text"].startswith("Отключено горячее водоснабжение: авария на теплотрассе.")
    assert "Ориентировочное время восстановления" in answer["text"] and "Громова" not in answer["text"]
    # the neighbour's house is not covered; an unknown caller gets the very same answer
    other = client.post("/api/v1/ivr/outage", json={"phone": "+79161234501"}, headers=ivr).get_json()
    unknown = client.post("/api/v1/ivr/outage", json={"phone": "+79169999999"}, headers=ivr).get_json()
    assert other == unknown == {"text": NO_OUTAGE, "found": False}
    logged = [e for e in lookups() if e.detail == "outage"]
    assert [e.outcome for e in logged] == ["not_found", "ok", "not_found", "not_found"]
    assert logged[1].citizen_id == citizen.id


def test_get_form_is_deprecated_and_the_request_log_drops_the_phone(ctx, client, ivr, caplog):
    from crm.weblog import redact_text

    CitizenFactory(phone=PHONE)
    resp = client.get(f"/api/v1/ivr/appeal-status?phone={PHONE}", headers=ivr)
    assert resp.status_code == 200
    assert resp.headers["Deprecation"].startswith("@")
    assert resp.headers["Link"] == '</api/v1/ivr/appeal-status>; rel="successor-version"'
    resp = client.get("/api/v1/ivr/outage", query_string={"phone": PHONE}, headers=ivr)
    assert resp.status_code == 200 and "successor-version" in resp.headers["Link"]
    line = f'127.0.0.1 - - "GET /api/v1/ivr/appeal-status?phone=%2B79161234500 HTTP/1.1" 200 -'
    assert "9161234500" not in redact_text(line)


def test_the_ivr_token_can_do_nothing_else(ctx, client, ivr, make_user):
    citizen = CitizenFactory(phone=PHONE)
    appeal = AppealFactory(citizen=citizen)
    for path in (f"/api/v1/appeals/{appeal.id}", f"/api/v1/citizens/{citizen.id}", "/api/v1/appeals",
                 "/api/v1/telephony/queue", "/api/v1/telephony/callbacks", "/api/v1/audit"):
        resp = client.get(path, headers=ivr)
        assert resp.status_code == 403, (path, resp.status_code)
    assert client.post("/api/v1/citizens/search", json={"phone": PHONE}, headers=ivr).status_code == 403
    # and no staff may use the IVR's endpoints with their token
    for role in ("operator", "supervisor", "admin"):
        user = make_user(role)
        from crm.users.services import issue_token
        headers = {"Authorization": f"Bearer {issue_token(user)}"}
        assert client.post("/api/v1/ivr/outage", json={"phone": PHONE}, headers=headers).status_code == 403


def test_an_ivr_account_cannot_sign_in_to_the_pages(ctx, client, make_user):
    user = make_user("ivr")
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert resp.status_code != 302 or "/login" in resp.headers.get("Location", "")
    assert client.get("/appeals").status_code in (302, 401)


def test_crm_users_create_and_token_for_an_ivr_account(ctx, runner):
    result = runner("users", "create", "pbx-ivr", "--role", "ivr", "--password-stdin", input="long-enough-pass-1\n")
    assert result.exit_code == 0, result.output
    result = runner("users", "token", "pbx-ivr")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    client = ctx.test_client()
    resp = client.post("/api/v1/ivr/outage", json={"phone": PHONE}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200


def test_a_lookup_by_phone_does_not_tell_who_is_a_citizen(ctx, client, ivr, make_user):
    """Issue 13 re-audit: an unknown number, a citizen without appeals, a citizen whose appeals are all
    closed and a citizen without a known address get answers identical to the byte, for the appeal
    status and the outage alike (before: «обращений не найдено» vs «Открытых обращений … нет. Обращение
    номер … закрыто», and «адрес … не определён» vs «отключений … не зарегистрировано»)."""
    from crm.appeals import services as appeals

    CitizenFactory(phone="+79161234510", address=None)  # registered, no appeal, no address
    closed = CitizenFactory(phone="+79161234511", address="г. Москва, ул. Садовая, д. 1")
    appeal = AppealFactory(citizen=closed, category="consultation", description="Где оплатить квитанцию")
    appeals.transition(appeal, "consulted", user=make_user("operator"))
    phones = ("+79169999990", "+79161234510", "+79161234511")
    status = [client.post("/api/v1/ivr/appeal-status", json={"phone": p}, headers=ivr) for p in phones]
    outage = [client.post("/api/v1/ivr/outage", json={"phone": p}, headers=ivr) for p in phones]
    assert len({r.get_data() for r in status}) == 1 and status[0].get_json()["text"] == NO_OPEN_APPEALS
    assert len({r.get_data() for r in outage}) == 1 and outage[0].get_json()["text"] == NO_OUTAGE
    assert all(r.status_code == 200 for r in status + outage)


def test_the_ivr_token_is_rate_limited(app_config, make_user):
    """Issue 13 re-audit: the ``ivr`` token has one budget of lookups (``CRM_IVR_LIMIT``) over all the IVR's
    endpoints; beyond it the answer is 429 and nothing is looked up; another token keeps its own budget.
    Runs on an app of its own with rate limiting on (the suite's app has it off)."""
    from crm import create_app
    from crm.extensions import limiter
    from crm.users.services import issue_token

    was_enabled = limiter.enabled
    limited = create_app({**app_config, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True,
                          "CRM_IVR_LIMIT": "3 per minute"})
    try:
        with limited.app_context():
            from crm.db import db

            first, second = make_user("ivr"), make_user("ivr")
            one = {"Authorization": f"Bearer {issue_token(first)}"}
            two = {"Authorization": f"Bearer {issue_token(second)}"}
            client = limited.test_client()
            codes = [client.post("/api/v1/ivr/appeal-status", json={"phone": PHONE}, headers=one).status_code,
                     client.get(f"/api/v1/ivr/outage?phone={PHONE}", headers=one).status_code,
                     client.post("/api/v1/ivr/outage", json={"phone": PHONE}, headers=one).status_code]
            assert codes == [200, 200, 200]
            before = len(lookups())
            over = client.post("/api/v1/ivr/appeal-status", json={"number": "2026-000001"}, headers=one)
            assert over.status_code == 429
            assert len(lookups()) == before  # refused before any lookup
            assert client.post("/api/v1/ivr/outage", json={"phone": PHONE}, headers=two).status_code == 200
            db.session.remove()
    finally:
        limiter.enabled = was_enabled  # the limiter is one object: the suite's app runs without limits
        limiter.reset()
