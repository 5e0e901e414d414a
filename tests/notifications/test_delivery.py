"""Notifications that are really sent (issue 15, point 2): real SMTP to a local aiosmtpd server, a real
HTTP round trip to a local server speaking SMSC.ru's API with its delivery callback, forged callbacks
refused, quiet hours, consent, retries with RQ's Retry, and an outbox that never claims «sent»."""
from __future__ import annotations

import json
import socket
import threading
import time as clock
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CitizenFactory

PHONE = "+7 912 515-22-33"
E164 = "+79125152233"
EMAIL = "zhitel.testov@example.ru"
TOKEN = "callback-secret-0123456789"


# --- local servers ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: every message the server accepted (envelope recipients, parsed message)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture()
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


class FakeSmsc:
    """A local HTTP server that answers as SMSC.ru's ``/sys/send.php`` (``fmt=3``: JSON ``{"id", "cnt"}``);
    ``fail_next`` requests are answered 503 first, ``error_code`` answers every request with an error."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail_next = 0
        self.error_code: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
                fake.requests.append(form)
                if fake.fail_next:
                    fake.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                answer = ({"error": "invalid phone", "error_code": fake.error_code} if fake.error_code
                          else {"id": 7000 + len(fake.requests), "cnt": 1})
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sys/send.php"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def callback(self, index: int, status: int) -> dict:
        """The delivery report SMSC would post for request ``index`` (its id, phone, numeric status)."""
        return {"id": str(7001 + index), "phone": self.requests[index]["phones"].lstrip("+"), "status": str(status),
                "err": "0"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def transports(ctx):
    """Install transports on the test app for one test; the outbox backends come back afterwards."""
    from crm.consent import sms
    from crm.notifications import services

    before_sms = ctx.extensions.get("crm_sms_gateway")
    before_email = ctx.extensions.get("crm_email_transport")
    yield sms, services
    ctx.extensions.pop("crm_sms_gateway", None)
    if before_sms is not None:
        ctx.extensions["crm_sms_gateway"] = before_sms
    ctx.extensions["crm_email_transport"] = before_email


@pytest.fixture()
def smsc(transports):
    from crm.notifications.transports import SmscGateway

    sms, _ = transports
    fake = FakeSmsc()
    sms.set_gateway(current_app(), SmscGateway(fake.url, "hotline", "s3cret-psw", sender="GKH", timeout_s=5))
    yield fake
    fake.close()


def current_app():
    from flask import current_app as app

    return app._get_current_object()


@pytest.fixture()
def config(ctx):
    """Change app settings for one test."""
    saved = {}

    def set_(**values):
        for k, v in values.items():
            saved.setdefault(k, ctx.config.get(k))
            ctx.config[k] = v
    yield set_
    ctx.config.update(saved)


@pytest.fixture(autouse=True)
def clean_queue(ctx):
    """Each test starts and ends with no scheduled, failed or waiting job of this run's queues (a
    deferred message's job would otherwise wait there for the next test)."""
    def clean():
        from rq.registry import FailedJobRegistry, ScheduledJobRegistry

        from crm import jobs

        for name in jobs.QUEUES:
            q = jobs.queue(name)
            for registry in (ScheduledJobRegistry(queue=q), FailedJobRegistry(queue=q)):
                for jid in registry.get_job_ids():
                    registry.remove(jid, delete_job=True)
            q.empty()
    clean()
    yield
    clean()


@pytest.fixture()
def work(ctx):
    """Run a real RQ worker in burst mode (``scheduler``: with RQ's scheduler, which moves due scheduled
    jobs — retries, deferred messages — to their queue first)."""
    from crm.worker import make_worker

    def run(scheduler: bool = False):
        db.session.commit()
        make_worker(ctx).work(burst=True, with_scheduler=scheduler)
        db.session.expire_all()
    return run


def scheduled_jobs():
    from rq.registry import ScheduledJobRegistry

    from crm import jobs

    registry = ScheduledJobRegistry(queue=jobs.queue("default"))
    return registry, {jid: registry.get_scheduled_time(jid) for jid in registry.get_job_ids()}


def bring_forward_scheduled():
    """Make every scheduled job (a retry after its backoff) due now."""
    from rq.job import Job

    registry, due = scheduled_jobs()
    for jid in due:
        registry.schedule(Job.fetch(jid, connection=registry.connection), datetime.now(timezone.utc))


def consenting_citizen(op, *purposes, **fields):
    from crm.consent import services as consent

    c = CitizenFactory(full_name="Жителев Тест Тестович", phone=PHONE, email=EMAIL, **fields)
    for p in purposes:
        consent.record(c, p, channel="call", operator_id=op.id)
    return c


def messages(citizen_id=None):
    from crm.consent.models import SmsMessage

    db.session.commit()
    q = sa.select(SmsMessage).order_by(SmsMessage.created_at, SmsMessage.id)
    if citizen_id:
        q = q.where(SmsMessage.citizen_id == citizen_id)
    return list(db.session.execute(q).scalars())


def entries(action):
    from crm.security.models import AccessLogEntry

    db.session.commit()
    return list(db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == action)).scalars())


# --- e-mail over SMTP -------------------------------------------------------------------------------

def test_registration_number_goes_by_email_through_a_real_smtp_server(ctx, client, make_user, api_token, transports,
                                                                      smtp_server, work):
    from crm.notifications.transports import SmtpTransport

    _, services = transports
    controller, inbox = smtp_server
    services.set_email_transport(ctx, SmtpTransport("127.0.0.1", controller.port, security="none",
                                                    sender="hotline@gkh.example.ru"))
    op = make_user("operator")
    resp = client.post("/api/v1/appeals", headers=api_token(op), json={
        "citizen": {"full_name": "Почтова Анна Ивановна", "phone": "+7 912 515-22-34", "email": EMAIL},
        "category": "routine", "topic": "heating", "description": "Холодные батареи в квартире",
        "channel": "phone", "consents": {"email_notifications": True, "sms_notifications": False}})
    assert resp.status_code == 201, resp.get_json()
    number, appeal_id = resp.get_json()["number"], resp.get_json()["id"]
    work()

    assert len(inbox.messages) == 1, "one e-mail for the registration"
    rcpt, mail = inbox.messages[0]
    assert rcpt == [EMAIL] and mail["To"] == EMAIL and mail["From"] == "hotline@gkh.example.ru"
    assert mail["Subject"] == f"Обращение № {number} зарегистрировано"
    assert f"зарегистрировано под номером {number}" in mail.get_content()
    [msg] = messages()
    assert (msg.channel, msg.kind, msg.purpose, msg.status, msg.provider) == (
        "email", "registered", "email_notifications", "sent", "smtp")
    assert msg.provider_message_id == mail["Message-ID"] and msg.sent_at is not None
    assert msg.to_masked == "zh***@example.ru" and msg.body_enc is None, "the sealed text is gone once sent"
    assert [e.fields for e in entries("email.send")] == ["email"]
    assert not [m for m in messages() if m.channel == "sms"], "no SMS without the SMS consent"

    shown = client.get(f"/api/v1/appeals/{appeal_id}", headers=api_token(op)).get_json()["notifications"]
    assert [(n["channel"], n["status"], n["status_label"], n["to"]) for n in shown] == [
        ("email", "sent", "отправлено", "zh***@example.ru")]


# --- SMS through the provider's HTTP API, and its delivery report -------------------------------------

def test_sms_round_trip_through_the_provider_api_and_its_delivery_callback(ctx, make_user, api_token, smsc, config,
                                                                           work):
    from crm.appeals import services as appeals

    config(CRM_SMS_CALLBACK_TOKEN=TOKEN)
    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    appeal = AppealFactory(citizen=c, operator=op)
    appeals.transition(appeal, "escalated", user_id=op.id, comment="Мастер придёт завтра с 10 до 12",
                       visibility="citizen")
    appeals.transition(db.session.get(type(appeal), appeal.id), "in_progress", user_id=op.id,
                       comment="Внутреннее: ключи у старшей по дому", visibility="internal")
    work()

    assert [r["phones"] for r in smsc.requests] == [E164, E164]
    first, second = smsc.requests
    assert (first["login"], first["psw"], first["fmt"], first["charset"], first["sender"]) == (
        "hotline", "s3cret-psw", "3", "utf-8", "GKH")
    assert first["mes"] == (f"Горячая линия ЖКХ: заявка № {appeal.number} — передано исполнителю. "
                            "Комментарий: Мастер придёт завтра с 10 до 12")
    assert "ключи" not in second["mes"] and second["mes"].endswith("— в работе."), "internal comments never go out"
    sent = messages(c.id)
    assert [(m.status, m.provider, m.provider_message_id) for m in sent] == [("sent", "smsc", "7001"),
                                                                             ("sent", "smsc", "7002")]
    assert sent[0].body.endswith("Комментарий: ***") and "Мастер" not in sent[0].body, "the comment is masked at rest"
    assert all(m.to_masked == "+7 912 ***-**-33" and m.body_enc is None for m in sent)
    assert "s3cret" not in json.dumps([m.last_error for m in sent])

    # the provider reports delivery of the first message to our callback
    client = ctx.test_client()
    resp = client.post(f"/api/v1/delivery-reports/smsc?token={TOKEN}", data=smsc.callback(0, 1))
    assert resp.status_code == 200 and resp.get_json() == {"ok": True, "updated": True, "status": "delivered"}
    resp = client.post(f"/api/v1/delivery-reports/smsc?token={TOKEN}", data=smsc.callback(1, 22))  # wrong number
    assert resp.get_json()["status"] == "failed"
    # a late «handed to the operator» never moves a delivered message back
    assert client.post(f"/api/v1/delivery-reports/smsc?token={TOKEN}",
                       data=smsc.callback(0, 0)).get_json()["status"] == "delivered"
    db.session.expire_all()
    first_msg, second_msg = messages(c.id)
    assert first_msg.status == "delivered" and first_msg.delivered_at is not None
    assert second_msg.status == "failed" and "22" in second_msg.last_error
    assert client.post(f"/api/v1/delivery-reports/smsc?token={TOKEN}",
                       data={"id": "99999", "status": "1"}).get_json() == {"ok": True, "updated": False, "status": None}

    # shown on the appeal page («Уведомления») and in the API
    html = SharedContextClient(ctx, op).get(f"/appeals/{appeal.id}").get_data(as_text=True)
    block = html[html.index("data-notifications"):html.index("История")]
    assert "Уведомления" in html and "доставлено" in block and "не доставлено" in block and "+7 912 ***-**-33" in block
    assert "Мастер придёт" not in block
    api = ctx.test_client().get(f"/api/v1/appeals/{appeal.id}", headers=api_token(op)).get_json()
    assert [n["status"] for n in api["notifications"]] == ["delivered", "failed"]


def test_forged_delivery_reports_are_refused(ctx, make_user, smsc, config, work):
    from crm.notifications import services

    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    services.notify(c.id, event="incident", key="incident:forge", urgent=True, text="Авария на водопроводе")
    work()
    [msg] = messages(c.id)
    assert msg.status == "sent"
    report = smsc.callback(0, 1)
    client = ctx.test_client()
    config(CRM_SMS_CALLBACK_TOKEN=None)
    resp = client.post(f"/api/v1/delivery-reports/smsc?token={TOKEN}", data=report)
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "callbacks_not_configured"
    config(CRM_SMS_CALLBACK_TOKEN=TOKEN)
    for url, headers in ((f"/api/v1/delivery-reports/smsc", {}),
                         (f"/api/v1/delivery-reports/smsc?token=guess", {}),
                         (f"/api/v1/delivery-reports/smsc?token={TOKEN[:-1]}", {}),
                         (f"/api/v1/delivery-reports/smsc", {"X-CRM-Callback-Token": "wrong"})):
        resp = client.post(url, data=report, headers=headers)
        assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "invalid_token", url
    db.session.expire_all()
    assert messages(c.id)[0].status == "sent", "a forged report changes nothing"
    assert client.post(f"/api/v1/delivery-reports/smsc?token={TOKEN}", data={"id": "7001", "status": "x"}).status_code == 400
    resp = client.post("/api/v1/delivery-reports/smsc", data=report, headers={"X-CRM-Callback-Token": TOKEN})
    assert resp.status_code == 200 and resp.get_json()["status"] == "delivered"


# --- quiet hours --------------------------------------------------------------------------------------

def test_quiet_hours_windows(ctx):
    from crm.notifications.services import quiet_until

    msk = ZoneInfo("Europe/Moscow")
    at = lambda d, h, m=0: datetime(2026, 12, d, h, m, tzinfo=msk)  # noqa: E731
    assert quiet_until(at(7, 22), "21:00-09:00") == at(8, 9).astimezone(timezone.utc)
    assert quiet_until(at(8, 3), "21:00-09:00") == at(8, 9).astimezone(timezone.utc)
    assert quiet_until(at(8, 8, 59), "21:00-09:00") == at(8, 9).astimezone(timezone.utc)
    assert quiet_until(at(8, 9), "21:00-09:00") is None and quiet_until(at(8, 20, 59), "21:00-09:00") is None
    assert quiet_until(at(8, 13), "13:00-14:00") == at(8, 14).astimezone(timezone.utc)
    assert quiet_until(at(8, 3), "") is None
    with pytest.raises(ValueError):
        quiet_until(at(8, 3), "21-9")


def test_quiet_hours_defer_non_urgent_messages_to_their_end_urgent_ones_go_at_once(ctx, make_user, smsc, config,
                                                                                   work):
    from crm.notifications import services

    now = datetime.now(ZoneInfo("Europe/Moscow"))
    end = now + timedelta(seconds=4)
    config(CRM_NOTIFY_QUIET_HOURS=f"{(now - timedelta(hours=1)):%H:%M:%S}-{end:%H:%M:%S}")
    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    appeal = AppealFactory(citizen=c, operator=op)
    [status_msg] = services.notify_registered(appeal.id, c.id, appeal.number)
    [urgent] = services.notify_incident(c.id, "7", "Аварийное отключение холодной воды до 18:00", urgent=True)
    assert status_msg.status == "scheduled" and urgent.status == "queued"
    expected_end = end.replace(microsecond=0).astimezone(timezone.utc)
    assert status_msg.scheduled_for == expected_end
    registry, due = scheduled_jobs()
    assert list(due.values()) == [expected_end.replace(tzinfo=None)] or \
        [t.replace(tzinfo=timezone.utc) for t in due.values()] == [expected_end]

    work()  # before the end of quiet hours: only the urgent message
    assert [r["mes"] for r in smsc.requests] == ["Горячая линия ЖКХ: Аварийное отключение холодной воды до 18:00"]
    assert {m.kind: m.status for m in messages(c.id)} == {"registered": "scheduled", "incident": "sent"}

    clock.sleep(max(0.0, (expected_end - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    work(scheduler=True)  # RQ's scheduler moves the deferred job to its queue
    assert len(smsc.requests) == 2 and f"№ {appeal.number}" in smsc.requests[1]["mes"]
    assert {m.kind: m.status for m in messages(c.id)} == {"registered": "sent", "incident": "sent"}


def test_a_message_that_comes_due_inside_quiet_hours_is_deferred_again(ctx, make_user, smsc, config):
    from crm.notifications import services

    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    [msg] = services.notify(c.id, event="incident", key="incident:late", text="Плановое отключение ГВС")
    assert msg.status == "queued"
    config(CRM_NOTIFY_QUIET_HOURS="00:00-23:59:59")
    assert services.deliver(msg.id) == "deferred"
    db.session.expire_all()
    msg = messages(c.id)[0]
    assert msg.status == "scheduled" and msg.attempts == 0 and not smsc.requests


# --- consent ------------------------------------------------------------------------------------------

def test_nothing_is_sent_without_consent_or_after_its_withdrawal(ctx, make_user, smsc, transports, smtp_server, work):
    from crm.appeals import services as appeals
    from crm.consent import services as consent
    from crm.notifications import services
    from crm.notifications.transports import SmtpTransport

    controller, inbox = smtp_server
    services.set_email_transport(ctx, SmtpTransport("127.0.0.1", controller.port, security="none"))
    op = make_user("operator")
    nobody = CitizenFactory(full_name="Несогласный Иван Петрович", phone="+7 912 515-00-01", email="no@example.ru")
    appeal = AppealFactory(citizen=nobody, operator=op)
    appeals.transition(appeal, "escalated", user_id=op.id, comment="Передано в АДС", visibility="citizen")
    assert services.notify(nobody.id, event="incident", key="incident:1", urgent=True, text="Авария") == []
    work()
    assert messages(nobody.id) == [] and smsc.requests == [] and inbox.messages == []

    # consented when queued, withdrawn before the job ran: the message is cancelled, nothing sent
    c = consenting_citizen(op, "sms_notifications", "email_notifications")
    rows = services.notify(c.id, event="incident", key="incident:2", urgent=True, text="Авария на сетях")
    assert sorted(m.channel for m in rows) == ["email", "sms"]
    for e in consent.for_citizen(c.id):
        if e.purpose_code == "sms_notifications":
            consent.withdraw(e, channel="call")
    work()
    assert smsc.requests == [] and len(inbox.messages) == 1
    assert {m.channel: m.status for m in messages(c.id)} == {"sms": "cancelled", "email": "sent"}
    assert all(m.body_enc is None for m in messages(c.id))


# --- retries ------------------------------------------------------------------------------------------

def test_a_transport_failure_is_retried_with_backoff_then_sent(ctx, make_user, smsc, work):
    from crm.notifications import services

    smsc.fail_next = 1
    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    services.notify(c.id, event="incident", key="incident:retry", urgent=True, text="Отключение электроэнергии")
    work()
    [msg] = messages(c.id)
    assert (msg.status, msg.attempts, msg.last_error) == ("queued", 1, "SMSC: HTTP 503")
    assert msg.body_enc is not None, "kept sealed for the retry"
    _, due = scheduled_jobs()
    assert len(due) == 1, "RQ's Retry scheduled the next attempt"
    wait = (next(iter(due.values())).replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)).total_seconds()
    assert 20 < wait <= 31, wait  # the first backoff interval: 30 s

    bring_forward_scheduled()
    work(scheduler=True)
    [msg] = messages(c.id)
    assert (msg.status, msg.attempts, msg.last_error, msg.provider_message_id) == ("sent", 2, None, "7002")
    assert len(smsc.requests) == 2 and scheduled_jobs()[1] == {}


def test_the_last_failure_is_final_and_a_refusal_is_not_retried(ctx, make_user, smsc, work):
    from rq.registry import FailedJobRegistry

    from crm import jobs
    from crm.consent.sms import TransportError
    from crm.notifications import services

    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    smsc.fail_next = 99
    [msg] = services.notify(c.id, event="incident", key="incident:down", urgent=True, text="Авария")
    for _ in range(5):  # the first try and RQ's four retries
        bring_forward_scheduled()
        work(scheduler=True)
    msg = messages(c.id)[0]
    assert (msg.status, msg.attempts, msg.last_error) == ("failed", 5, "SMSC: HTTP 503") and msg.body_enc is None
    assert len(smsc.requests) == 5 and scheduled_jobs()[1] == {}
    failed = FailedJobRegistry(queue=jobs.queue("default"))
    assert failed.count == 1, "the final failure is visible in the job monitor too"
    assert "not delivered" not in (msg.last_error or "")

    # the provider refuses the number: failed at once, no retry
    smsc.fail_next, smsc.error_code = 0, 7
    [refused] = services.notify(c.id, event="incident", key="incident:refused", urgent=True, text="Авария")
    work()
    refused = db.session.get(type(refused), refused.id)
    assert (refused.status, refused.attempts, refused.last_error) == ("failed", 1, "SMSC: error 7")
    assert scheduled_jobs()[1] == {}
    # and the service itself on a final try
    smsc.error_code, smsc.fail_next = None, 1
    [last] = services.notify(c.id, event="incident", key="incident:final", urgent=True, text="Авария", channels=("sms",))
    db.session.commit()
    with pytest.raises(TransportError):
        services.deliver(last.id, final=True)
    assert db.session.get(type(last), last.id).status == "failed"


# --- idempotency and the outbox -------------------------------------------------------------------------

def test_one_message_per_event_even_when_the_job_runs_twice(ctx, make_user, smsc, work):
    from crm import jobs
    from crm.notifications import services

    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    [first] = services.notify(c.id, event="incident", key="incident:twice", urgent=True, text="Авария")
    [again] = services.notify(c.id, event="incident", key="incident:twice", urgent=True, text="Авария")
    assert again.id == first.id
    jobs.enqueue(services.JOB, first.id)  # a second job for the same message
    work()
    assert len(smsc.requests) == 1 and len(messages(c.id)) == 1
    assert services.deliver(first.id) == "sent"
    assert len(smsc.requests) == 1


def test_the_outbox_never_claims_sent_without_a_transport(ctx, make_user, transports, work):
    from crm.consent import sms
    from crm.notifications import services

    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications", "email_notifications")
    assert sms.gateway().sends is False and services.email_transport().sends is False
    services.notify(c.id, event="incident", key="incident:dev", urgent=True, text="Авария")
    sms.send(CitizenFactory(phone="+7 912 515-00-09"), purpose="appeal_processing", kind="link",
             body="Ссылка: https://crm/my/link/abc", secret="abc")
    work()
    rows = messages()
    assert len(rows) == 3 and {m.status for m in rows} == {"logged"}
    assert all(m.sent_at is None for m in rows)
    assert services.status_label("logged") == "в журнале (не отправлено)"
    dpo = make_user("dpo")
    html = SharedContextClient(ctx, dpo).get("/dpo/sms-outbox").get_data(as_text=True)
    table = html[html.index("<tbody>"):]
    assert table.count("<td>в журнале (не отправлено)") == 3
    assert "<td>отправлено</td>" not in table and "<td>sent</td>" not in table


def test_transports_come_from_the_configuration():
    from crm import config as crm_config
    from crm.notifications.transports import (OutboxEmail, SmscGateway, SmtpTransport, email_transport_from_config,
                                              sms_gateway_from_config)

    cfg = {k: getattr(crm_config.Defaults, k) for k in crm_config.declared() if k.startswith("CRM_")}
    cfg.update(crm_config.from_environment({"CRM_SMTP_HOST": "smtp.example.ru", "CRM_SMTP_PORT": "465",
                                            "CRM_SMTP_SECURITY": "ssl", "CRM_SMTP_USER": "hotline@example.ru",
                                            "CRM_SMTP_PASSWORD": "pw", "CRM_SMS_PROVIDER": "smsc",
                                            "CRM_SMS_LOGIN": "l", "CRM_SMS_PASSWORD": "p"}))
    mail = email_transport_from_config(cfg)
    assert isinstance(mail, SmtpTransport) and (mail.host, mail.port, mail.security, mail.sender) == (
        "smtp.example.ru", 465, "ssl", "hotline@example.ru")
    gw = sms_gateway_from_config(cfg)
    assert isinstance(gw, SmscGateway) and gw.api_url == "https://smsc.ru/sys/send.php"
    assert isinstance(email_transport_from_config({**cfg, "CRM_SMTP_HOST": None}), OutboxEmail)
    assert sms_gateway_from_config({**cfg, "CRM_SMS_PROVIDER": None}) is None
    with pytest.raises(ValueError):
        sms_gateway_from_config({**cfg, "CRM_SMS_PROVIDER": "nosuch"})
    with pytest.raises(ValueError):
        sms_gateway_from_config({**cfg, "CRM_SMS_PASSWORD": None})


def test_a_deferred_message_whose_job_was_lost_is_sent_by_the_periodic_release(ctx, make_user, smsc, config, work):
    """A message deferred for quiet hours while Redis was down (or whose scheduled job was lost) has
    no job of its own: the periodic ``notifications-release`` job queues it once its time has come."""
    from crm import schedule
    from crm.notifications import services

    assert "notifications-release" in {e.name for e in schedule.SCHEDULE}
    op = make_user("operator")
    c = consenting_citizen(op, "sms_notifications")
    config(CRM_NOTIFY_QUIET_HOURS="00:00-23:59:59")
    [msg] = services.notify(c.id, event="incident", key="incident:lost-job", text="Плановое отключение ГВС")
    assert msg.status == "scheduled"
    registry, due = scheduled_jobs()
    for jid in due:  # the deferred job is lost
        registry.remove(jid, delete_job=True)
    config(CRM_NOTIFY_QUIET_HOURS="")
    msg.scheduled_for = datetime.now(timezone.utc) - timedelta(seconds=1)
    db.session.commit()
    work()
    assert messages(c.id)[0].status == "scheduled" and not smsc.requests  # nothing else would send it
    from crm import jobs
    from crm.notifications.jobs import release_due_job

    jobs.enqueue(release_due_job)
    work()
    assert messages(c.id)[0].status == "sent" and len(smsc.requests) == 1
