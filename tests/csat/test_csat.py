"""Satisfaction surveys (issue 15, point 3): the SMS after closure on consent, the single-use link (used
twice, expired, forged), «не решено» re-opening the appeal and its clocks, the KPIs, the staff panel and
its access-log entry, erasure of the comment."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.db import db, utcnow
from tests.factories import CitizenFactory

BASE = "https://crm.example.ru"
LINK = re.compile(re.escape(BASE) + r"/csat/([A-Za-z0-9_-]+)")


@pytest.fixture()
def public_url(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_PUBLIC_URL", BASE)
    return BASE


@pytest.fixture()
def drain(ctx):
    """Empty this run's queues afterwards (jobs a test queued and did not run)."""
    from crm import jobs

    yield
    for q in jobs.QUEUES:
        jobs.queue(q).empty()


def closed_appeal(op, *, phone: str, consents: bool = True, via: tuple[str, ...] = ("escalated", "resolved", "closed"),
                  category: str = "routine", channel: str = "phone"):
    """A citizen (consenting to the survey or not) and their appeal taken through ``via``."""
    from crm.appeals import services as appeals
    from crm.consent import services as consent

    citizen = CitizenFactory(full_name="Опросова Анна", phone=phone)
    if consents:
        consent.record(citizen, "csat_survey", channel="call")
    appeal = appeals.create(citizen, category=category, topic="heating", description="Холодные батареи",
                            channel=channel, operator_id=op.id)
    for status in via:
        appeals.transition(appeal, status, user_id=op.id)
    return citizen, appeals.get(appeal.id)


def surveys():
    from crm.csat.models import CsatSurvey

    db.session.expire_all()
    return list(db.session.execute(sa.select(CsatSurvey).order_by(CsatSurvey.created_at)).scalars())


def token_from(inbox) -> str:
    bodies = [m.body for m in inbox if "/csat/" in m.body]
    assert len(bodies) == 1, [m.body for m in inbox]
    return LINK.search(bodies[0]).group(1)


def answer(client, token, **data):
    form = {"solved": "yes", "score": "5", "first_time": "yes", "comment": "", **data}
    return client.post(f"/csat/{token}", data={k: v for k, v in form.items() if v is not None})


# --- sending ----------------------------------------------------------------------------------------------

def test_a_consenting_citizen_gets_the_link_after_closure_and_a_refusing_one_does_not(
        ctx, make_user, sms_inbox, run_worker, public_url):
    from crm.consent import sms
    from crm.security.models import AccessLogEntry

    op = make_user("operator")
    yes, a1 = closed_appeal(op, phone="8 916 500-01-01")
    no, a2 = closed_appeal(op, phone="8 916 500-01-02", consents=False)
    refused, a3 = closed_appeal(op, phone="8 916 500-01-03", consents=False)
    from crm.consent import services as consent
    consent.record(refused, "csat_survey", channel="call", given=False)
    from crm.appeals import services as appeals
    for a in (a2, a3):  # closed again after the refusal: still nothing
        appeals.transition(a, "in_progress", user_id=op.id)
        appeals.transition(a, "resolved", user_id=op.id)
        appeals.transition(a, "closed", user_id=op.id)
    run_worker()

    survey_sms = [m for m in sms_inbox if "/csat/" in m.body]
    assert len(survey_sms) == 1 and survey_sms[0].to == "+79165000101"
    assert f"№ {a1.number}" in survey_sms[0].body
    token = token_from(sms_inbox)
    rows = surveys()
    assert [(s.appeal_id, s.cycle, s.closed_status) for s in rows] == [(a1.id, 0, "closed")]
    # only the hash of the token is kept; the outbox masks it
    assert token not in rows[0].token_hash and len(rows[0].token_hash) == 64
    outbox = [m for m in sms.outbox(citizen_id=yes.id) if m.purpose == "csat_survey"]
    assert len(outbox) == 1 and token not in outbox[0].body and "/csat/***" in outbox[0].body
    assert rows[0].sms_id == outbox[0].id and not sms.outbox(citizen_id=no.id)
    assert rows[0].expires_at - rows[0].created_at == timedelta(days=14)
    sent = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "sms.send",
                                                              AccessLogEntry.purpose == "csat_survey")).scalars().all()
    assert [(e.citizen_id, e.actor) for e in sent] == [(yes.id, "job:send_csat_survey")]


def test_one_survey_per_closure_and_none_after_a_withdrawal(ctx, make_user, sms_inbox, run_worker, public_url):
    from crm.appeals import services as appeals
    from crm.consent import services as consent
    from crm.csat import services as csat

    op = make_user("operator")
    citizen, appeal = closed_appeal(op, phone="8 916 500-02-01", via=("consulted",), category="consultation")
    appeals.transition(appeal, "closed", user_id=op.id)  # the formal closure after the consultation
    run_worker()
    assert len([m for m in sms_inbox if "/csat/" in m.body]) == 1
    # the job ran after both steps: one survey, for the status the appeal is in when it is sent
    assert [(s.cycle, s.closed_status) for s in surveys()] == [(0, "closed")]
    assert csat.send_survey(appeal.id, 0, BASE) == "already_sent"  # the job run twice

    # re-opened and closed again: a new cycle, a new survey — unless the consent is withdrawn meanwhile
    appeals.transition(appeals.get(appeal.id), "in_progress", user_id=op.id)
    appeals.transition(appeals.get(appeal.id), "resolved", user_id=op.id)
    appeals.transition(appeals.get(appeal.id), "closed", user_id=op.id)  # queued now, consent still active
    event = next(e for e in consent.for_citizen(citizen.id) if e.purpose_code == "csat_survey")
    consent.withdraw(event, channel="call")
    run_worker()  # asked again right before sending
    assert len([m for m in sms_inbox if "/csat/" in m.body]) == 1 and len(surveys()) == 1
    assert csat.send_survey(appeal.id, 1, BASE) == "no_consent"


def test_a_survey_for_an_appeal_reopened_before_the_job_ran_is_not_sent(ctx, make_user, sms_inbox, public_url):
    from crm.appeals import services as appeals
    from crm.csat import services as csat

    op = make_user("operator")
    _, appeal = closed_appeal(op, phone="8 916 500-02-02")
    appeals.transition(appeal, "in_progress", user_id=op.id)
    assert csat.send_survey(appeal.id, 0, BASE) == "not_closed"
    assert not surveys()


def test_a_gateway_failure_leaves_no_survey_so_the_retry_sends_one(ctx, make_user, monkeypatch, public_url):
    from crm.consent import sms
    from crm.csat import services as csat

    op = make_user("operator")
    _, appeal = closed_appeal(op, phone="8 916 500-02-03")
    for s in surveys():  # the hook's job has not run; start from nothing
        db.session.delete(s)
    db.session.commit()

    class Down(sms.SmsGateway):
        def deliver(self, message):
            raise ConnectionError("gateway down")

    monkeypatch.setattr(sms, "gateway", lambda app=None: Down())
    with pytest.raises(ConnectionError):
        csat.send_survey(appeal.id, 0, BASE)
    assert not surveys()
    monkeypatch.setattr(sms, "gateway", lambda app=None: sms.OutboxGateway())
    assert csat.send_survey(appeal.id, 0, BASE) == "sent" and len(surveys()) == 1


# --- the page ---------------------------------------------------------------------------------------------

@pytest.fixture()
def sent(ctx, make_user, sms_inbox, run_worker, public_url):
    """A closed appeal of a consenting citizen (a letter: the written-answer clock runs) and the token of
    its survey."""
    op = make_user("operator")
    citizen, appeal = closed_appeal(op, phone="8 916 500-03-01", channel="letter")
    run_worker()
    return citizen, appeal, token_from(sms_inbox), op


def test_the_page_is_russian_and_phone_sized(client, sent):
    _, appeal, token, _ = sent
    resp = client.get(f"/csat/{token}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "Проблема решена?" in html and "Вы обращались по этой проблеме впервые?" in html
    assert f"Заявка № {appeal.number}" in html
    assert surveys()[0].answered_at is None  # GET does not use the link up


def test_the_link_works_once(client, sent):
    from crm.security.models import AccessLogEntry

    citizen, appeal, token, _ = sent
    resp = answer(client, token, solved="yes", score="4", first_time="yes", comment="Починили быстро, спасибо")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/csat/thanks")
    assert "Спасибо за ответ!" in client.get(resp.headers["Location"]).get_data(as_text=True)
    again = answer(client, token, solved="no", score="1", comment="Второй ответ")
    page = again.get_data(as_text=True)
    assert again.status_code == 410 and "уже ответили" in page and "ссылка одноразовая" in page
    assert client.get(f"/csat/{token}").status_code == 410
    (s,) = surveys()
    assert (s.solved, s.score, s.first_time, s.comment) == (True, 4, True, "Починили быстро, спасибо")
    assert s.comment_enc is not None and b"\xd0\x9f\xd0\xbe\xd1\x87" not in s.comment_enc  # ciphertext
    from crm.appeals import services as appeals
    assert appeals.get(appeal.id).status == "closed"  # solved: nothing re-opened
    entries = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "csat.answer")).scalars().all()
    assert [(e.citizen_id, e.actor, e.fields) for e in entries] == [(citizen.id, "citizen:csat", "csat_comment")]
    assert "Починили" not in (entries[0].detail or "")


def test_two_concurrent_answers_record_one(ctx, sent):
    """Two submissions racing: the conditional UPDATE lets exactly one through."""
    from crm.csat import services as csat

    _, _, token, _ = sent
    db.session.commit()
    app = ctx
    barrier = threading.Barrier(2)
    outcomes = []

    def submit(score):
        with app.app_context():
            try:
                survey = csat.check(token)
                db.session.commit()  # end the read (SQLite: no lock held while waiting)
                barrier.wait(timeout=10)
                csat.answer(token, csat.checked(solved=True, score=score))
                outcomes.append("ok")
                del survey
            except csat.SurveyError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit, args=(n,)) for n in (2, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["ok", "used"]
    (s,) = surveys()
    assert s.answered_at is not None and s.score in (2, 5)


def test_an_expired_link_gets_a_clear_page_and_records_nothing(client, sent):
    _, _, token, _ = sent
    (s,) = surveys()
    s.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    for resp in (client.get(f"/csat/{token}"), answer(client, token)):
        page = resp.get_data(as_text=True)
        assert resp.status_code == 410 and "Срок действия ссылки истёк" in page and "Traceback" not in page
    (s,) = surveys()
    assert s.answered_at is None and s.score is None


@pytest.mark.parametrize("forged", ["AAAAAAAAAAAAAAAAAAAAAAAA", "short", "x" * 200, "%2e%2e"])
def test_a_forged_link_gets_a_clear_page_and_records_nothing(client, sent, forged):
    _, _, token, _ = sent
    for resp in (client.get(f"/csat/{forged}"), answer(client, forged)):
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400 and "Ссылка недействительна" in page
    assert surveys()[0].answered_at is None
    # one character changed
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get(f"/csat/{other}").status_code == 400


def test_bad_answers_come_back_with_the_error_and_record_nothing(client, sent):
    _, _, token, _ = sent
    resp = answer(client, token, score="7")
    assert resp.status_code == 422 and "Поставьте оценку от 1 до 5." in resp.get_data(as_text=True)
    resp = answer(client, token, solved=None)
    assert resp.status_code == 422 and "Ответьте, решена ли проблема." in resp.get_data(as_text=True)
    resp = answer(client, token, comment="я" * 1001)
    assert resp.status_code == 422 and "Комментарий длиннее 1000 символов." in resp.get_data(as_text=True)
    assert surveys()[0].answered_at is None
    assert answer(client, token, first_time=None).status_code == 302  # the FixMyStreet question is optional
    assert surveys()[0].first_time is None


# --- «не решено» ----------------------------------------------------------------------------------------

def test_not_solved_reopens_the_appeal_and_its_clocks(client, sent):
    from crm.appeals import services as appeals

    _, appeal, token, _ = sent
    before = {c.code: c for c in appeals.clocks(appeals.get(appeal.id))}
    assert before["written_answer"].state == "met" and appeals.get(appeal.id).reopen_count == 0
    resp = answer(client, token, solved="no", score="2", first_time="no", comment="Батареи всё ещё холодные")
    assert resp.status_code == 302 and "reopened=1" in resp.headers["Location"]
    assert "заявка снова передана в работу" in client.get(resp.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    a = appeals.get(appeal.id)
    assert (a.status, a.reopen_count, a.closed_at, a.resolved_at) == ("in_progress", 1, None, None)
    last = a.events[-1]
    assert (last.from_status, last.to_status, last.user_id, last.visibility) == ("closed", "in_progress", None, "internal")
    assert "не решена" in last.comment
    # the clock seam: the re-opening is a clock event, the resolution clock runs on its new cycle
    assert [name for _, name in appeals.clock_events(a)][-2:] == ["reopened", "in_progress"]
    after = {c.code: c for c in appeals.clocks(a)}
    assert (after["written_answer"].cycle, after["written_answer"].state) == (before["written_answer"].cycle + 1,
                                                                              "running")
    assert after["written_answer"].due > utcnow() and a.resolve_by > utcnow()
    assert after["status_update"].state == "running"
    (s,) = surveys()
    assert (s.solved, s.reopened) == (False, True)


def test_not_solved_after_a_consultation_reopens_it_and_counts_against_fcr(ctx, make_user, sms_inbox, run_worker,
                                                                         public_url, client):
    from crm.appeals import services as appeals
    from crm.reports import services as reports

    op = make_user("operator")
    _, appeal = closed_appeal(op, phone="8 916 500-04-01", via=("consulted",), category="consultation")
    run_worker()
    today = reports.period(None, None)
    assert reports.kpi(today)["first_contact_resolution_rate"] == 1.0
    answer(client, token_from(sms_inbox), solved="no", score="1")
    a = appeals.get(appeal.id)
    assert (a.status, a.reopen_count, a.first_contact) == ("escalated", 1, False)
    assert reports.kpi(today)["first_contact_resolution_rate"] == 0.0


def test_not_solved_on_an_appeal_moved_meanwhile_keeps_the_answer_and_reopens_nothing(client, sent):
    from crm.appeals import services as appeals

    _, appeal, token, op = sent
    appeals.transition(appeals.get(appeal.id), "in_progress", user_id=op.id)  # the operator re-opened it already
    assert answer(client, token, solved="no", score="2").status_code == 302
    a = appeals.get(appeal.id)
    assert (a.status, a.reopen_count) == ("in_progress", 1)  # not re-opened twice
    (s,) = surveys()
    assert (s.solved, s.score, s.reopened) == (False, 2, False)


# --- KPIs -----------------------------------------------------------------------------------------------

def test_kpis_come_from_the_answers(ctx, make_user, sms_inbox, run_worker, public_url, client, as_role):
    from crm.reports import services as reports

    op = make_user("operator")
    closed_appeal(op, phone="8 916 500-05-01", via=("consulted",), category="consultation")  # FCR, answered yes
    closed_appeal(op, phone="8 916 500-05-02", via=("consulted",), category="consultation")  # FCR, «не впервые»
    closed_appeal(op, phone="8 916 500-05-03")  # escalated: not FCR; answered «не решено»
    closed_appeal(op, phone="8 916 500-05-04")  # never answers
    run_worker()
    tokens = {m.to: LINK.search(m.body).group(1) for m in sms_inbox if "/csat/" in m.body}
    assert len(tokens) == 4
    today = reports.period(None, None)
    k = reports.kpi(today)
    assert (k["csat_avg"], k["csat_responses"], k["csat_solved_rate"], k["csat_surveys_sent"]) == (None, 0, None, 4)
    assert k["first_contact_resolution_rate"] == 0.5  # 2 of 4 before any answer

    answer(client, tokens["+79165000501"], solved="yes", score="5", first_time="yes")
    answer(client, tokens["+79165000502"], solved="yes", score="4", first_time="no")
    answer(client, tokens["+79165000503"], solved="no", score="1", first_time=None)
    k = reports.kpi(today)
    assert k["csat_avg"] == round((5 + 4 + 1) / 3, 2) and k["csat_responses"] == 3
    assert k["csat_solved_rate"] == round(2 / 3, 4) and k["csat_first_time_rate"] == 0.5
    assert k["first_contact_resolution_rate"] == 0.25  # «обращался не впервые» is not a first-contact resolution

    _, headers = as_role("supervisor")
    api = client.get(f"/api/v1/reports/kpi?from={today.first}&to={today.last}", headers=headers).get_json()
    assert api["csat_avg"] == k["csat_avg"] and api["csat_solved_rate"] == k["csat_solved_rate"]
    long_ago = client.get("/api/v1/reports/kpi?from=2020-01-01&to=2020-01-31", headers=headers).get_json()
    assert long_ago["csat_avg"] is None and long_ago["csat_responses"] == 0


@pytest.fixture()
def as_role(ctx, api_token, make_user):
    def make(role):
        user = make_user(role)
        return user, api_token(user)
    return make


# --- staff, erasure -------------------------------------------------------------------------------------

def test_the_appeal_page_shows_the_answer_and_logs_the_comment_read(ctx, sent, login, make_user):
    from crm.security.models import AccessLogEntry

    citizen, appeal, token, op = sent
    client = ctx.test_client()
    answer(client, token, solved="yes", score="3", comment="Долго ждали мастера")
    staff = login(op)
    html = staff.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert 'id="csat-panel"' in html and "Долго ждали мастера" in html and "<td data-score>3</td>" in html
    views = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "csat.view")).scalars().all()
    assert [(e.citizen_id, e.appeal_id, e.fields, e.actor_id, e.purpose) for e in views] == [
        (citizen.id, appeal.id, "csat_comment", op.id, "appeal_processing")]


def test_erasure_clears_the_comment_and_keeps_the_statistics(ctx, sent, make_user):
    from crm.security import shredding

    citizen, _, token, _ = sent
    from crm.csat import services as csat
    csat.answer(token, csat.checked(solved=True, score=5, first_time=True, comment="Всё отлично"))
    shredding.erase_citizen(citizen.id, "отзыв согласия", make_user("dpo"))
    (s,) = surveys()
    assert s.comment_enc is None and (s.solved, s.score, s.first_time) == (True, 5, True)
    from crm.reports import services as reports
    assert reports.kpi(reports.period(None, None))["csat_avg"] == 5.0


def test_an_erased_citizens_link_is_refused(client, sent, make_user):
    from crm.security import shredding

    citizen, _, token, _ = sent
    shredding.erase_citizen(citizen.id, "отзыв согласия", make_user("dpo"))
    resp = client.get(f"/csat/{token}")
    assert resp.status_code == 410 and "опрос закрыт" in resp.get_data(as_text=True)


def test_the_access_export_holds_the_answers_and_logs_the_comment_read(ctx, sent):
    from crm import hooks
    from crm.csat import services as csat
    from crm.security.models import AccessLogEntry

    citizen, appeal, token, _ = sent
    csat.answer(token, csat.checked(solved=False, score=2, first_time=True, comment="Не пришёл мастер"))
    sections = {}
    for part in hooks.fire("citizen.export", citizen_id=citizen.id, purpose="data_subject_request", erased=False):
        sections.update(part or {})
    db.session.commit()
    (row,) = sections["csat_surveys"]
    assert (row["appeal"], row["solved"], row["score"], row["comment"]) == (appeal.number, False, 2, "Не пришёл мастер")
    read = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "csat.view")).scalar_one()
    assert (read.citizen_id, read.purpose, read.fields) == (citizen.id, "data_subject_request", "csat_comment")


def test_the_link_token_stays_out_of_request_logs():
    from crm import weblog

    assert weblog.redact_target("/csat/5Em1pwHI0uxaiOF_r0DwmZSv?x=1") == "/csat/***"
    assert weblog.redact_text('"GET /csat/5Em1pwHI0uxaiOF_r0DwmZSv HTTP/1.1"') == '"GET /csat/*** HTTP/1.1"'
    assert weblog.redact_target("/csat/thanks?reopened=1") == "/csat/thanks"


def test_a_link_after_the_consent_is_withdrawn_records_nothing(client, sent):
    from crm.consent import services as consent

    citizen, _, token, _ = sent
    event = next(e for e in consent.for_citizen(citizen.id) if e.purpose_code == "csat_survey")
    consent.withdraw(event, channel="web")
    for resp in (client.get(f"/csat/{token}"), answer(client, token, comment="После отзыва")):
        assert resp.status_code == 410 and "Согласие на участие в опросе отозвано" in resp.get_data(as_text=True)
    (s,) = surveys()
    assert s.answered_at is None and s.comment_enc is None


def test_withdrawing_the_consent_clears_the_comments_already_given(ctx, sent):
    """The comment is the personal data the ``csat_survey`` consent covered: its withdrawal clears
    it (the answer's solved, score and first-time stay as statistics); logged ``csat.forget``."""
    import sqlalchemy as sa

    from crm.consent import services as consent
    from crm.csat import services as csat
    from crm.db import db
    from crm.security.models import AccessLogEntry

    citizen, _, token, _ = sent
    csat.answer(token, csat.checked(solved=True, score=4, first_time=True, comment="Спасибо мастеру Петрову"))
    (s,) = surveys()
    assert s.comment_enc is not None
    event = next(e for e in consent.for_citizen(citizen.id) if e.purpose_code == "csat_survey")
    consent.withdraw(event, channel="web")
    db.session.expire_all()
    (s,) = surveys()
    assert s.comment_enc is None and (s.solved, s.score, s.first_time) == (True, 4, True)
    forgot = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "csat.forget")).scalars().all()
    assert [e.citizen_id for e in forgot] == [citizen.id]


def test_the_retention_run_clears_comments_past_the_purposes_period(ctx, sent):
    """Issue 13 re-audit: a survey comment is kept no longer than the ``csat_survey`` purpose's retention
    period (365 days by the register; 152-ФЗ ст. 5 ч. 7) even without a withdrawal: the retention run
    clears the comments of answers older than the period (solved, score and first time stay), leaves a
    younger one, counts them in its report (a dry run changes nothing) and logs ``csat.forget``."""
    from crm.consent import retention
    from crm.consent import services as consent
    from crm.csat import services as csat
    from crm.security.models import AccessLogEntry

    citizen, _, token, _ = sent
    csat.answer(token, csat.checked(solved=True, score=5, first_time=True, comment="Спасибо мастеру Петрову"))
    (s,) = surveys()
    days = next(p.retention_days for p in consent.purposes() if p.code == "csat_survey")
    # a day inside the period: nothing cleared
    run = retention.run(now=s.answered_at + timedelta(days=days - 1))
    db.session.expire_all()
    assert surveys()[0].comment == "Спасибо мастеру Петрову" and run.report["purposes"]["csat_survey"]["found"] == 0
    later = s.answered_at + timedelta(days=days + 1)
    dry = retention.run(now=later, dry_run=True)
    db.session.expire_all()
    # the survey's SMS and its comment
    assert dry.report["purposes"]["csat_survey"]["found"] == 2 and surveys()[0].comment_enc is not None
    run = retention.run(now=later)
    db.session.expire_all()
    (s,) = surveys()
    assert s.comment_enc is None and (s.solved, s.score, s.first_time) == (True, 5, True)
    assert run.report["purposes"]["csat_survey"]["deidentified"] == 2
    forgot = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "csat.forget")).scalars().all()
    assert [(e.citizen_id, e.actor) for e in forgot] == [(citizen.id, "job:retention")]
