"""The citizen's self-service page through the test client: a signed link (single use, expiring,
forgery refused) or an SMS code (attempts limited, never logged), then withdrawal with one button."""
from __future__ import annotations

import logging
import re
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import CitizenFactory
from tests.mfa import sign_in

NAME, PHONE = "Самоделкина Анна Львовна", "+7 912 505-60-70"


Client = SharedContextClient


@pytest.fixture()
def citizen(ctx):
    from crm.consent import services as consent

    c = CitizenFactory(full_name=NAME, phone=PHONE)
    consent.record(c, "sms_notifications", channel="call")
    consent.record(c, "call_recording_qa", channel="call")
    return c


def messages(citizen_id, kind):
    from crm.consent import sms

    db.session.commit()
    return [m for m in sms.outbox(citizen_id=citizen_id) if m.kind == kind]


def delivered(inbox, kind):
    """The texts the SMS gateway got (with their secrets; the outbox keeps them masked)."""
    marker = {"link": "/my/link/", "code": "Код для управления согласиями"}[kind]
    return [m.body for m in inbox if marker in m.body]


def send_link(ctx, make_user, citizen, inbox) -> str:
    """Staff send the link; returns its path (from the SMS text the gateway delivered)."""
    dpo = make_user("dpo")
    staff = Client(ctx)
    sign_in(staff, dpo)
    assert staff.post(f"/citizens/{citizen.id}/selfservice-link").status_code == 302
    assert messages(citizen.id, "link")
    body = delivered(inbox, "link")[-1]
    url = re.search(r"https?://\S+/my/link/\S+", body).group(0)
    return urlparse(url).path


def test_signed_link_opens_once_and_withdrawal_works(ctx, make_user, citizen, sms_inbox):
    from crm.consent import services as consent
    from crm.consent.models import DataSubjectRequest, SelfServiceGrant
    from crm.security.models import AccessLogEntry

    path = send_link(ctx, make_user, citizen, sms_inbox)
    assert messages(citizen.id, "link")[0].to_masked == "+7 912 ***-**-70"
    visitor = Client(ctx)
    page = visitor.get(path)
    assert page.status_code == 200 and "Продолжить" in page.get_data(as_text=True)
    assert visitor.get(path).status_code == 200  # looking at it (a link preview) does not use it up
    resp = visitor.post(path)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/my/consents")
    html = visitor.get("/my/consents").get_data(as_text=True)
    assert html.count("Отозвать согласие") == 2 and "SMS-уведомления о статусе заявки" in html
    assert NAME not in html and "505-60-70" not in html  # no personal values on the page

    sms_consent = [e for e in consent.for_citizen(citizen.id) if e.purpose_code == "sms_notifications"][0]
    resp = visitor.post(f"/my/consents/{sms_consent.id}/withdraw")
    assert resp.status_code == 302
    html = visitor.get("/my/consents").get_data(as_text=True)
    assert "отозвано. Обработка по этой цели прекращена" in html and html.count("Отозвать согласие") == 1
    db.session.expire_all()
    assert not consent.may_notify(citizen.id, "sms_notifications") and consent.may_use_for_qa(citizen.id)
    e = consent.get(sms_consent.id)
    assert e.withdrawn_channel == "web" and e.withdrawn_by is None and e.withdrawn_ref.startswith("selfservice grant ")
    req = db.session.execute(sa.select(DataSubjectRequest)).scalar_one()
    assert (req.type, req.channel, req.purpose_code) == ("withdrawal", "web", "sms_notifications")
    logged = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.citizen_id == citizen.id,
                                                                AccessLogEntry.action == "consent.withdraw")).scalar_one()
    assert logged.actor == "citizen:selfservice" and logged.actor_role == "citizen"

    # the link is used up: refused from another browser, and the id is stored as used
    again = Client(ctx).get(path)
    assert again.status_code == 410 and "уже была использована" in again.get_data(as_text=True)
    assert Client(ctx).post(path).status_code == 410
    grant = db.session.execute(sa.select(SelfServiceGrant)).scalar_one()
    assert grant.used_at is not None and grant.kind == "link"

    # sign out ends the session
    visitor.post("/my/logout")
    assert visitor.get("/my/consents").status_code == 302


def test_forged_and_expired_links_are_refused(ctx, make_user, citizen, sms_inbox, monkeypatch):
    import time

    from crm.consent import selfservice
    from crm.security.models import AccessLogEntry

    path = send_link(ctx, make_user, citizen, sms_inbox)
    token = path.rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    resp = Client(ctx).get(f"/my/link/{forged}")
    assert resp.status_code == 400 and "Ссылка недействительна" in resp.get_data(as_text=True)
    assert Client(ctx).post(f"/my/link/{forged}").status_code == 400
    # a token signed with another key
    from itsdangerous import URLSafeTimedSerializer

    alien = URLSafeTimedSerializer("not-our-secret", salt=selfservice.SALT).dumps({"g": "x"})
    assert Client(ctx).get(f"/my/link/{alien}").status_code == 400

    # a link issued 4 days ago (the default life is 72 h)
    real = time.time
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: real() - 4 * 86400)
    with ctx.test_request_context():
        url, _ = selfservice.issue_link(citizen, user=None, base_url="http://localhost", send=False)
    monkeypatch.setattr("itsdangerous.timed.time.time", real)
    resp = Client(ctx).get(urlparse(url).path)
    assert resp.status_code == 410 and "Срок действия ссылки истёк" in resp.get_data(as_text=True)
    db.session.commit()
    refusals = db.session.execute(sa.select(AccessLogEntry.detail).where(
        AccessLogEntry.action == "selfservice.refused")).scalars().all()
    assert {"forged", "expired"} <= set(refusals)


def test_sms_code_flow_limits_attempts_and_never_logs_the_code(ctx, citizen, sms_inbox, caplog, run_worker):
    from crm.consent import selfservice
    from crm.consent.models import SelfServiceGrant
    from crm.security.models import AccessLogEntry

    caplog.set_level(logging.DEBUG)
    visitor = Client(ctx)
    start = visitor.get("/my")
    assert start.status_code == 200 and "Номер телефона" in start.get_data(as_text=True)
    assert visitor.post("/my", data={"phone": "12"}).status_code == 422
    resp = visitor.post("/my", data={"phone": "8 (912) 505 60 70"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/my/code")
    run_worker()  # the code is sent by a background job
    assert messages(citizen.id, "code")
    body = delivered(sms_inbox, "code")[0]
    code = re.search(r"\b(\d{6})\b", body).group(1)
    wrong = "000000" if code != "000000" else "111111"
    resp = visitor.post("/my/code", data={"code": wrong})
    assert resp.status_code == 400 and "Осталось попыток: 4" in resp.get_data(as_text=True)
    resp = visitor.post("/my/code", data={"code": f"{code[:3]} {code[3:]}"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/my/consents")
    assert visitor.get("/my/consents").get_data(as_text=True).count("Отозвать согласие") == 2
    grant = db.session.execute(sa.select(SelfServiceGrant)).scalar_one()
    assert grant.kind == "code" and grant.used_at is not None and grant.attempts == 2 and code not in grant.code_hash

    # a used code is refused
    with pytest.raises(selfservice.SelfServiceError) as err:
        selfservice.verify_code(grant.id, code)
    assert err.value.code == "used"
    # the code is nowhere but in the SMS: not in the access log, not in the application log
    db.session.commit()
    details = " ".join(d or "" for d in db.session.execute(sa.select(AccessLogEntry.detail)).scalars())
    assert code not in details
    assert code not in caplog.text


def test_code_attempts_run_out_and_unknown_numbers_look_the_same(ctx, citizen, sms_inbox, run_worker):
    from crm.consent import selfservice

    visitor = Client(ctx)
    resp = visitor.post("/my", data={"phone": "+7 999 000-00-00"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/my/code")  # same answer, no SMS
    assert visitor.post("/my/code", data={"code": "123456"}).status_code == 400

    grant_id = selfservice.request_code(PHONE)
    run_worker()  # the code is sent by a background job
    for _ in range(selfservice.MAX_ATTEMPTS):
        with pytest.raises(selfservice.SelfServiceError):
            selfservice.verify_code(grant_id, "999999x")
    code = re.search(r"\b(\d{6})\b", delivered(sms_inbox, "code")[-1]).group(1)
    with pytest.raises(selfservice.SelfServiceError) as err:
        selfservice.verify_code(grant_id, code)  # even the right code, after five wrong ones
    assert err.value.code == "too_many"
    # at most three codes an hour for one number
    for _ in range(3):
        selfservice.request_code(PHONE)
    run_worker()
    assert len(messages(citizen.id, "code")) == selfservice.MAX_CODES_PER_HOUR


def test_session_sees_only_its_citizen_and_expires(ctx, make_user, citizen, sms_inbox):
    import time

    from crm.consent import services as consent

    other = CitizenFactory(full_name="Чужой Иван", phone="+7 903 111-22-33")
    theirs = consent.record(other, "sms_notifications")
    path = send_link(ctx, make_user, citizen, sms_inbox)
    visitor = Client(ctx)
    visitor.post(path)
    assert visitor.post(f"/my/consents/{theirs.id}/withdraw").status_code == 404
    assert consent.has_consent(other.id, "sms_notifications")
    with visitor.session_transaction() as s:
        s["ss_until"] = int(time.time()) - 1
    assert visitor.get("/my/consents").status_code == 302
    mine = consent.for_citizen(citizen.id)[0]
    assert visitor.post(f"/my/consents/{mine.id}/withdraw").status_code == 302
    assert consent.has_consent(citizen.id, mine.purpose_code)  # nothing happened without a session


def test_link_for_an_erased_citizen_is_refused(ctx, make_user, citizen, sms_inbox):
    from crm.security.shredding import erase_citizen

    path = send_link(ctx, make_user, citizen, sms_inbox)
    from crm.security import audit

    erase_citizen(citizen.id, "тест", actor=audit.system_actor("test"))
    resp = Client(ctx).post(path)
    assert resp.status_code == 410 and "уничтожены" in resp.get_data(as_text=True)
