"""Completeness of the access log, generated from the app's URL map.

Every GET route (HTML and ``/api/v1``) that staff can open is called, for each role it allows, with
a seeded citizen, appeal, call, evaluation and consent; it must write an access-log entry naming
that citizen — unless it is on :data:`NO_PERSONAL_DATA` with a reason. Every POST route is called
with a recipe (:data:`POST_RECIPES`) and must log too, or be on :data:`POST_NO_PERSONAL_DATA`.
A route in none of these lists fails the test, so a new endpoint cannot slip past unlogged.
Sign-in, failed sign-in and sign-out, background jobs and changes made by services are checked
below.
"""
from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from crm.db import db
from crm.security.models import AccessLogEntry
from tests.factories import AppealFactory, CitizenFactory
from tests.wavs import tone_wav
from tests.mfa import sign_in

NAME, PHONE = "Громова Ксения Павловна", "+7 912 765-43-21"

#: GET endpoints that show no personal data, each with the reason. Keep it short.
NO_PERSONAL_DATA = {
    "static": "CSS and scripts",
    # telephony (crm/telephony): call records and the worklist carry ids, times and states, never a number
    "api_telephony.telephony_call": "a call record: ids, times, states, the operator's user name; no number",
    "api_telephony.callback_list": "the callback worklist: ids, times, deadlines; no number",
    "api_telephony.telephony_call_list": "the caller log: call records as api_telephony.telephony_call (ids, times, "
                                         "states, the operator's user name); no number, nothing decrypted",
    "api_telephony.queue_board": "counts and durations per queue and operator",
    "telephony.callback_page": "the callback worklist: call ids, times, deadlines; a number only after a logged POST",
    "telephony.queue_page": "the queue board: counts and durations per queue and operator",
    "telephony.call_log_page": "the caller log: times, states, durations, staff names, appeal numbers as links; no "
                               "number, no citizen's name, nothing decrypted (the appeal and recording pages log)",
    "telephony.pop_poll": "the operator's pending screen pop: a call record id and the card's URL; nothing decrypted "
                          "(the card, telephony.pop_card, logs)",
    "users.index": "redirects to the role's home page",
    "users.login": "the sign-in form",
    "users.reauth": "the password form asked before an export",
    "users.my_sessions": "the user's own sessions: times, addresses, browsers; no citizen",
    "users.enrol": "the second factor's enrolment: the staff member's own TOTP secret and QR code, no citizen",
    "users.second_factor": "the second sign-in step's form",
    "health.healthz": "process status",
    "health.readyz": "dependency status",
    "api.openapi": "the OpenAPI document",
    "admin.job_monitor": "queues, workers, job ids, function names and error lines; job arguments are ids only "
                         "and are not shown",
    "admin.calendar_page": "the working calendar's overrides: days, kinds, notes; no citizen",
    "staff.staff_list": "staff accounts: user names, roles, states, dates; no citizen",
    "staff.staff_user": "one staff account and its API tokens' names and dates; no citizen",
    "notifications.template_list": "the texts of the citizens' notification templates; no citizen",
    "appeals.operator_home": "the search forms and the operator's recent appeals (numbers, categories, deadlines); "
                             "the search by phone is the logged POST appeals.citizen_search",
    "dpo.citizen_lookup": "the lookup forms; ?citizen_id= redirects to the logged access report; the search "
                               "by phone is the logged POST dpo.citizen_search",
    "appeals.appeal_list": "appeal numbers, categories, topics, statuses, deadlines: no citizen fields, nothing decrypted",
    "qa.calls_list": "call times, operators, durations, statuses: nothing decrypted",
    "qa.evaluations": "scores per operator: nothing decrypted",
    "api_reports.kpi": "aggregate counts and ratios",
    "reports.kpi_page": "aggregate counts and ratios (the same figures as api_reports.kpi)",
    "buildings.building_list": "the buildings register: addresses of houses, ФИАС codes, counts; no citizen",
    "api_buildings.buildings_search": "the buildings register: addresses of houses, ФИАС codes, counts; no citizen",
    "api_executors.executor_list": "the executors directory: organisations, their contacts and topics; no citizen",
    "api_dpo.audit_log": "access-log entries: ids and field names, never values",
    "api_consent.consent_list": "consent events: ids, purpose codes, channels, times; nothing decrypted",
    "dpo.access_log": "access-log entries: ids and field names, never values",
    "dpo.alert_list": "alerts: ids and counts",
    # quality control (crm/qa): lists and configuration; the call and evaluation pages log
    "qa.queue": "the review queue: call times, operators, durations, sampling reasons; nothing decrypted",
    "qa.my_evaluations": "the operator's own evaluations: dates, scores, statuses; nothing decrypted",
    "qa.disputes": "disputed evaluations: dates, scores, statuses; the texts are on the logged evaluation page",
    "qa.dashboard": "QA aggregates per operator and week",
    "qa.scorecard_edit": "scorecard configuration",
    "qa.sampling_rules": "sampling-rule configuration",
    "qa.calibration_list": "calibration sessions: titles, dates, participants",
    "qa.calibration_detail": "calibration scores; the call itself is reviewed on the logged /qa/review page",
    # consent and data subject requests (crm/consent)
    "dpo.purposes": "the register of processing purposes",
    "dpo.purpose_edit": "the register of processing purposes",
    "dpo.requests": "data subject requests: citizen ids, types, dates, statuses; nothing decrypted",
    "dpo.request_detail": "one request: ids, dates, staff notes written without personal data; the export logs",
    "dpo.acts": "destruction acts: citizen ids, categories, reasons, dates; the data are already destroyed",
    "dpo.act": "one destruction act, printable: as above",
    "dpo.retention_page": "retention runs: counts per purpose",
    "dpo.outbox": "SMS outbox: numbers stored masked, status texts; nothing decrypted",
    # dispatch (crm/dispatch): the breach queue and notifications hold appeal numbers, clock codes and times
    "dispatch.breach_list": "the breach queue: appeal numbers, clocks, times, statuses; no citizen field",
    "api_dispatch.breach_list": "the breach queue: appeal ids and numbers, clocks, times; no citizen field",
    "dispatch.notification_list": "staff notifications: appeal numbers and clock names; no citizen field",
    "api_dispatch.notification_list": "staff notifications: appeal numbers and clock names; no citizen field",
    # the transcript search takes its phrase in a POST body (calls.call_search_submit, api_calls.call_search)
    "calls.call_search": "the empty search form; a phrase in the URL is refused (400), nothing read",
    "api_calls.call_search_in_url": "refuses every request (400 phrase_in_url), nothing read",
    "api_dispatch.executor_suggestions": "executors of the directory ranked by the appeal's topic and building id",
    "api_dispatch.extension_list": "extension requests: ids, dates, statuses; the reasons are in the logged appeal",
    "api_dispatch.extension_pending": "extension requests: ids, dates, statuses; the reasons are in the logged appeal",
    "api_dispatch.executor_stats_list": "counts of appeals per executor",
    "api_dispatch.executor_stats_one": "counts of appeals per executor",
    "dispatch.executor_stats": "counts of appeals per executor",
    # the knowledge base (crm/kb): the hotline's own reference texts, call scripts and building hints
    "kb.kb_list": "knowledge-base titles, topics, versions and search snippets; no citizen",
    "kb.kb_new": "the empty knowledge-base form",
    "kb.kb_article": "one knowledge-base article or call script; no citizen",
    "kb.kb_edit": "the knowledge-base form with an article's text; no citizen",
    "kb.kb_versions": "an article's versions: texts, editors, times; no citizen",
    "kb.kb_panel": "the intake panel: the topic's scripts and articles and a house's hints; no citizen",
    "api_kb.kb_article_get": "one knowledge-base article; no citizen",
    "api_kb.kb_article_versions": "an article's versions: texts, editor ids, times; no citizen",
    "api_kb.kb_search": "knowledge-base titles and snippets; no citizen",
    # incidents (crm/incidents): outages of houses, the texts for callers, counts and the ПП 354 flag
    "incidents.incident_list": "incidents: services, houses, periods, texts, counts; surge proposals; no citizen",
    "incidents.incident_new": "the empty incident form",
    "incidents.incident_detail": "one incident: houses, period, texts, counts; no citizen",
    "api_incidents.incident_list": "incidents: services, houses, periods, texts, counts; no citizen",
    "api_incidents.incident_active": "the active incidents of a house or address; no citizen",
    "api_incidents.incident_get": "one incident: houses, period, texts, counts; no citizen",
    "appeals.intake_incidents": "the intake banner's question: the active incidents of a house of the register; "
                                "nothing about the citizen is read",
}
#: The data subject's own pages (no staff role): the citizen signs in with a one-time link or an
#: SMS code, which crm.consent.selfservice logs (selfservice.login / selfservice.code) under the
#: citizen's id; what they see afterwards is their own consents.
SELF_SERVICE = {"selfservice.start", "selfservice.code", "selfservice.link", "selfservice.consents",
                "selfservice.withdraw", "selfservice.logout",
                # the citizen's download of their access export: every read is logged as theirs
                # (tests/dpo/test_access_request_workflow.py)
                "dpo_selfservice.selfservice_export",
                # the citizen's own appeals: each read of their comments is logged as theirs
                # (tests/appeals/test_lifecycle.py)
                "appeals_selfservice.my_appeals",
                # the satisfaction survey reached by its single-use SMS link: the answer is logged as the
                # citizen's (csat.answer); the thanks page shows nothing (tests/csat/test_csat.py)
                "csat.survey", "csat.thanks"}
#: GET routes that show someone only after something happened: endpoint → ``prepare(world, role)``.
GET_PREPARE = {
    # the screen pop's card shows the caller to the operator who answered: the PBX reports that the
    # role's user answered a call from the world's citizen
    "telephony.pop_card": lambda w, role: _answered_by(w.users[role].username),
}


def _answered_by(username: str) -> None:
    from crm.db import utcnow
    from crm.telephony import services as telephony

    now, call_id = utcnow(), f"audit-pop-{uuid.uuid4().hex[:8]}"
    for kind, back, user in (("newCall", 20, None), ("answer", 10, username)):
        telephony.ingest(telephony.Event(event_id=f"{call_id}-{kind}", type=kind, call_id=call_id, user=user,
                                         at=now - timedelta(seconds=back), from_=PHONE, to="+74951112233"))


#: Query strings a GET route needs before it shows anyone.
QUERIES = {
    "api_citizens.citizens_by_phone": {"phone": PHONE},
    "api_citizens.citizen_card": {"reveal": "true"},
    # a search by phone processes the citizen's phone (blind index): logged as appeal.search naming them
    "api_appeals.appeal_list": {"q": PHONE},
    # the IVR's look-up by the caller's phone: logged as ivr.lookup naming the citizen of the appeal
    "api_ivr.ivr_appeal_status_in_url": {"phone": PHONE},
    "api_ivr.ivr_outage_in_url": {"phone": PHONE},
}
#: POST endpoints that neither read nor change personal data (their own logging is tested elsewhere).
POST_NO_PERSONAL_DATA = {
    "users.login": "sign-in: logged as auth.login / auth.login_failed (test below)",
    "users.logout": "sign-out: logged as auth.logout (test below)",
    "users.reauth": "the password again before an export: logged as auth.reauth (tests/users/test_sessions.py)",
    "users.end_session": "ends one of the user's own sessions: logged as auth.session_end (tests/users/test_sessions.py)",
    "users.enrol": "the second factor's enrolment: logged auth.mfa_enrol / auth.mfa_failed (tests/users/test_mfa_signin.py)",
    "users.second_factor": "the second step: logged auth.login / auth.mfa_failed (tests/users/test_mfa_signin.py)",
    "staff.staff_reset_second_factor": "an admin resets a staff member's second factor: logged auth.mfa_reset "
                                       "(tests/users/test_mfa_signin.py)",
    "api_telephony.telephony_event": "the PBX webhook acts for no user: its citizen look-up is logged as citizen.search "
                                     "by pbx:<source> (tests/telephony/test_events.py)",
    "api_notifications.delivery_report": "an SMS provider's delivery report: a message id and a status; nothing "
                                         "personal is read or shown (tests/notifications/test_delivery.py)",
    "notifications.template_save": "a notification template's text (no citizen); logs notification.template_update "
                                   "(tests/notifications/test_templates.py)",
    "admin.job_retry": "requeues a failed job by its id",
    "admin.job_retry_all": "requeues every failed job",
    "admin.calendar_page": "a calendar override (days, no citizen); logs calendar.override (tests/clocks/test_calendar_admin.py)",
    "admin.calendar_remove": "removes a calendar override; logs calendar.override",
    # staff administration (crm/admin/staff.py): every change logged by crm.users.services (tests/users)
    "staff.staff_list": "creates a staff account; logs user.create",
    "staff.staff_disable": "disables a staff account; logs user.disable",
    "staff.staff_enable": "enables a staff account; logs user.enable",
    "staff.staff_end_sessions": "ends a user's sessions; logs user.end_sessions",
    "staff.staff_revoke_tokens": "revokes a user's API tokens; logs token.revoke",
    "staff.staff_role": "changes a user's role; logs user.role",
    "staff.staff_reset_password": "resets a user's password; logs user.password_reset",
    "staff.staff_issue_token": "issues an API token; logs token.issue",
    "staff.staff_revoke_token": "revokes an API token; logs token.revoke",
    "dpo.alert_scan": "scans the log; logs audit.alert_scan",
    "dpo.alert_acknowledge": "marks an alert; logs audit.alert_ack (tests/dpo/test_audit_dpo.py)",
    "dpo.purpose_edit": "the register of processing purposes; logs purpose.update",
    "dpo.purpose_proposal": "approves or rejects a register change (no personal data); logs purpose.approve / "
                            "purpose.reject",
    "dpo.retention_page": "starts a retention run; each erasure it makes is logged by crm.consent.retention",
    "qa.queue_sample": "fills the review queue with call ids",
    "qa.sampling_rules": "sampling-rule configuration",
    "qa.scorecard_edit": "scorecard configuration",
    "qa.calibration_list": "opens a calibration session (ids); the participants' reviews are logged",
    "qa.calibration_close": "closes a calibration session",
    "api_executors.executor_create": "adds an organisation to the executors directory; logs executor.create",
    "dispatch.breach_acknowledge": "marks a breach of the queue taken up; logs breach.acknowledge",
    "api_dispatch.breach_acknowledge": "marks a breach of the queue taken up; logs breach.acknowledge",
    "dispatch.notification_read": "marks a staff notification read",
    "api_dispatch.notification_read": "marks a staff notification read",
    "kb.kb_new": "a knowledge-base article (the hotline's reference text); every edit a version with its editor",
    "kb.kb_edit": "a new version of a knowledge-base article",
    "kb.kb_restore": "a new version of a knowledge-base article copying an old one",
    "kb.kb_archive": "archives a knowledge-base article (a new version)",
    "api_kb.kb_article_create": "a knowledge-base article (the hotline's reference text)",
    "api_kb.kb_article_restore": "a new version of a knowledge-base article copying an old one",
    "incidents.incident_new": "registers an incident (houses, service, period, text for callers); logs incident.create",
    "api_incidents.incident_create": "registers an incident (houses, service, period, text for callers); logs "
                                     "incident.create",
    "incidents.proposal_decide": "decides a surge proposal: an accepted one registers an incident (incident.create) "
                                 "and links the surge's appeals to it by id; nothing read or decrypted",
}
#: POST endpoints known to change data without an access-log entry. The test fails when one starts
#: logging, so the entry is removed here.
KNOWN_GAPS: dict[str, str] = {}
#: POST endpoints that un-transcribe the seeded call (re-run its transcription): called last, since
#: other recipes (evaluations) need it transcribed.
UNTRANSCRIBES = ("calls.call_retranscribe", "api_calls.call_retranscribe")
ROLE_ORDER = ("operator", "supervisor", "admin", "dpo", "executor", "ivr")


@pytest.fixture()
def world(ctx, make_user, api_token, tmp_path, monkeypatch):
    """One user and logged-in client per role, and a citizen with an appeal, a transcribed call with an
    evaluation comment, and a consent."""
    from crm import jobs
    from crm.calls import services as calls
    from crm.consent import services as consent
    from crm.qa import services as qa
    from crm.dpo.models import AccessAlert

    monkeypatch.setitem(ctx.config, "CRM_RECORDINGS_DIR", str(tmp_path / "recordings"))
    users = {role: make_user(role) for role in ROLE_ORDER}
    clients, headers = {}, {}
    for role, user in users.items():
        c = ctx.test_client()
        headers[role] = api_token(user)
        if role == "ivr":  # a machine client: API token only, no sign-in
            continue
        sign_in(c, user)
        clients[role] = c
        fresh_user()
    citizen = CitizenFactory(full_name=NAME, phone=PHONE, email="gromova@example.ru", address="ул. Ленина, д. 3",
                             apartment="12")
    appeal = AppealFactory(citizen=citizen, description="Холодные батареи в спальне", operator_id=users["operator"].id)
    # the executor's account belongs to the service the appeal is handed over to: it may open the appeal
    from crm.executors import services as executors

    executor = executors.create("АДС Центрального района", "emergency_dispatch")
    users["executor"].executor_id = appeal.executor_id = executor.id
    call = calls.store_recording(io.BytesIO(tone_wav(0.5)), "call.wav", appeal=appeal, operator_id=users["operator"].id)
    calls.save_transcript(call, SimpleNamespace(
        status="done", language="ru", rtf=0.1, duration_s=0.5,
        segments=[{"start": 0.0, "end": 0.5, "speaker": "citizen", "channel": None, "text": "Батареи холодные"}]))
    consent.record(citizen, "call_recording_qa", channel="call", operator_id=users["operator"].id)
    card = qa.ensure_default_scorecard()
    evaluation = qa.evaluate(call, evaluator=users["supervisor"], answers={c["code"]: "yes" for c in card.criteria},
                             comment="Оператор уточнил адрес")
    given = consent.record(citizen, "sms_notifications", channel="call", operator_id=users["operator"].id)
    alert = AccessAlert(rule="after_hours", key="test:1", actor_id=users["operator"].id, actor="x",
                        window_start=appeal.created_at, window_end=appeal.created_at, count=1, detail="test")
    db.session.add(alert)
    db.session.commit()
    from crm.consent import rights

    dsr = rights.register(citizen.id, "access", channel="paper")
    # the export needs the identity document recorded and a second DPO's approval first
    second_dpo = make_user("dpo")
    rights.verify_identity(dsr, "document", document_type="passport_rf", user=second_dpo)
    rights.approve_export(dsr, user=users["dpo"])
    session = qa.create_session(call, creator=users["supervisor"], participant_ids=[users["supervisor"].id, users["admin"].id],
                                reference_id=users["supervisor"].id)
    db.session.commit()
    args = {"citizen_id": citizen.id, "appeal_id": appeal.id, "call_id": call.id, "consent_id": given.id,
            "alert_id": alert.id, "filename": "app.css", "evaluation_id": evaluation.id, "request_id": dsr.id,
            "session_id": session.id, "code": "sms_notifications", "executor_id": executor.id}
    yield SimpleNamespace(users=users, clients=clients, headers=headers, citizen=citizen, appeal=appeal, call=call,
                          evaluation=evaluation, consent=given, args=args, second_dpo=second_dpo)
    for q in jobs.QUEUES:
        jobs.queue(q).empty()


def fresh_user() -> None:
    """Forget the signed-in user cached on ``g``: test requests share the test's app context, so
    Flask-Login would otherwise keep the previous request's user."""
    from flask import g

    g.pop("_login_user", None)


def last_seq() -> int:
    fresh_user()
    db.session.commit()
    return db.session.execute(db.select(db.func.coalesce(db.func.max(AccessLogEntry.seq), 0))).scalar()


def entries_since(seq: int, **where) -> list[AccessLogEntry]:
    db.session.commit()
    q = db.select(AccessLogEntry).where(AccessLogEntry.seq > seq)
    for k, v in where.items():
        q = q.where(getattr(AccessLogEntry, k) == v)
    return list(db.session.execute(q).scalars())


def _url(app, rule, args, problems: list) -> str | None:
    missing = [a for a in rule.arguments if a not in args]
    if missing:
        problems.append(f"{rule.rule} ({rule.endpoint}): add a seeded value for URL argument(s) {missing} to `world`")
        return None
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **{a: args[a] for a in rule.arguments})


def _roles(app, endpoint) -> tuple[str, ...]:
    return tuple(getattr(app.view_functions[endpoint], "crm_roles", ()) or ())


def test_every_get_route_showing_personal_data_logs_the_access(ctx, world):
    """Generated from ``app.url_map``: a new GET route must log or be listed with a reason."""
    problems = []
    checked = 0
    for rule in ctx.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        ep = rule.endpoint
        if ep in NO_PERSONAL_DATA or ep in SELF_SERVICE:
            continue
        roles = _roles(ctx, ep)
        if not roles:
            problems.append(f"{rule.rule} ({ep}): open to anyone and not in NO_PERSONAL_DATA")
            continue
        url = _url(ctx, rule, world.args, problems)
        for role in roles if url else ():
            if ep in GET_PREPARE:
                GET_PREPARE[ep](world, role)
            before = last_seq()
            if rule.rule.startswith("/api/"):
                resp = ctx.test_client().get(url, query_string=QUERIES.get(ep), headers=world.headers[role])
            else:
                resp = world.clients[role].get(url, query_string=QUERIES.get(ep))
            body = resp.get_data()  # consume streamed bodies (the recording)
            checked += 1
            if resp.status_code != 200:
                problems.append(f"GET {rule.rule} as {role}: HTTP {resp.status_code} {body[:200]!r}")
                continue
            named = entries_since(before, citizen_id=world.citizen.id, actor_id=world.users[role].id)
            if not named:
                problems.append(f"GET {rule.rule} ({ep}) as {role}: 200 but no access-log entry names the citizen")
    assert not problems, "\n".join(problems)
    assert checked >= 15


def _csrf(client, path) -> str:
    fresh_user()
    html = client.get(path).get_data(as_text=True)
    fresh_user()
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert m, f"no csrf_token on {path}"
    return m.group(1)


def _answers(prefix=""):
    from crm.qa import services as qa

    return {f"{prefix}{c['code']}": "yes" for c in qa.ensure_default_scorecard().criteria}


def _post_recipes(w):
    """endpoint → (role, prepare, citizen the entry must name or None = any new citizen). ``prepare(app)``
    does what must happen before (a page for its CSRF token, a fresh consent) and returns the request
    to make, as a zero-argument callable."""
    cid, aid, call_id = w.citizen.id, w.appeal.id, w.call.id
    detail = f"/appeals/{aid}"
    html = lambda role, path, **kw: lambda: w.clients[role].post(path, **kw)  # noqa: E731

    def api(role, path, **kw):
        return lambda app: (lambda: app.test_client().post(path, headers=w.headers[role], **kw))

    def next_status():
        from crm.appeals.catalog import TRANSITIONS

        db.session.refresh(w.appeal)
        return TRANSITIONS[w.appeal.status][0]

    def abandoned_call():
        """An inbound call from the world's citizen, abandoned: on the callback worklist; its record's id."""
        from datetime import timedelta

        from crm.db import utcnow
        from crm.telephony import services as telephony

        now, call_id = utcnow(), f"audit-{uuid.uuid4().hex[:8]}"
        for kind, back in (("newCall", 60), ("hangup", 30)):
            telephony.ingest(telephony.Event(event_id=f"{call_id}-{kind}", type=kind, call_id=call_id,
                                             at=now - timedelta(seconds=back), from_=PHONE, to="+74951112233"))
        return telephony.get(call_id).id

    def new_appeal():
        return AppealFactory(citizen=w.citizen, description="Нет света в подъезде").id

    def appeal_number(appeal_id):
        from crm.appeals import services as appeals

        return appeals.get(appeal_id).number

    def incident(linked: bool = False) -> int:
        """A new open incident on a house of the register; ``linked``: with a new appeal of the citizen."""
        from datetime import datetime, timezone

        from crm.appeals import services as appeals
        from crm.buildings.services import import_csv
        from crm.incidents import services as incidents

        import_csv("address\n\"г. Тестов, ул. Ленина, д. 3\"\n".encode())
        made = incidents.create(w.users["supervisor"], addresses=["г. Тестов, ул. Ленина, д. 3"], topic="cold_water",
                                text="Нет холодной воды", starts_at=datetime.now(timezone.utc))
        if linked:
            appeals.register_appeal(w.users["operator"], citizen_id=cid, category="routine", topic="cold_water",
                                    description="Нет воды", channel="phone", incident_id=made.id)
        db.session.commit()
        return made.id

    def new_consent():
        from crm.consent import services as consent

        return consent.record(w.citizen, "csat_survey", channel="call").id

    def new_request():
        from crm.consent import rights

        return rights.register(cid, "access", channel="paper").id

    def verified_request():
        """An access request whose identity step another DPO recorded (the world's DPO approves it)."""
        from crm.consent import rights

        req = rights.get(new_request())
        return rights.verify_identity(req, "document", document_type="passport_rf", user=w.second_dpo).id

    def new_evaluation(disputed=False):
        from crm.qa import services as qa

        ev = qa.evaluate(w.call, evaluator=w.users["supervisor"], answers=_answers(), comment="замечание")
        if disputed:
            qa.dispute(ev, w.users["operator"], "не согласен")
        return ev.id

    def transcribed_again():
        db.session.refresh(w.call)
        w.call.status = "done"
        db.session.commit()

    def handed():
        """A new appeal of the citizen handed over to the executor of the world's executor account."""
        from crm.appeals import services as appeals

        appeal = appeals.get(new_appeal())
        appeals.assign(appeal, w.args["executor_id"], user_id=w.users["operator"].id)
        return appeal.id

    def pending_extension():
        """A handed-over appeal with an extension request waiting for a decision; the request's id."""
        from crm.appeals import services as appeals
        from crm.dispatch import services as dispatch

        appeal = appeals.get(handed())
        until = appeal.resolve_by + timedelta(days=3)
        return dispatch.request_extension(w.users["executor"], appeal, until, "ждём арматуру").id

    def later(appeal_id):
        from crm.appeals import services as appeals

        return (appeals.get(appeal_id).resolve_by + timedelta(days=2)).isoformat()

    def with_csrf(role, page, path, **data):
        return lambda app: (lambda token: html(role, path, data={"csrf_token": token, **data}))(_csrf(w.clients[role], page))

    return {
        "api_appeals.appeal_create": ("operator", api("operator", "/api/v1/appeals", json={
            "citizen_id": cid, "category": "routine", "topic": "lift", "description": "Лифт стоит", "channel": "phone"}), cid),
        "api_appeals.appeal_transition": ("operator", lambda app: api("operator", f"/api/v1/appeals/{aid}/transitions",
                                                              json={"status": next_status(), "comment": "дальше"})(app), cid),
        "api_appeals.appeal_comment": ("operator", api("operator", f"/api/v1/appeals/{aid}/comments",
                                                       json={"text": "Перезвонить завтра", "visibility": "citizen"}), cid),
        "api_appeals.appeal_duplicate": ("operator", lambda app: api("operator", f"/api/v1/appeals/{new_appeal()}/duplicate",
                                                             json={"original_id": new_appeal(), "merge": True})(app), cid),
        "appeals.appeal_comment": ("operator", lambda app: html("operator", f"/appeals/{aid}/comment", data={
            "text": "Перезвонить после обеда", "visibility": "internal"}), cid),
        "appeals.appeal_duplicate": ("operator", lambda app: html("operator", f"/appeals/{new_appeal()}/duplicate", data={
            "original_number": appeal_number(new_appeal()), "merge": "y"}), cid),
        "api_appeals.appeal_assign": ("operator", lambda app: api("operator", f"/api/v1/appeals/{new_appeal()}/assign",
                                                          json={"executor_id": w.args["executor_id"]})(app), cid),
        "api_telephony.callback_attempt": ("operator", lambda app: api(
            "operator", f"/api/v1/telephony/callbacks/{abandoned_call()}/attempts", json={"outcome": "reached"})(app), cid),
        "telephony.callback_reveal": ("operator", lambda app: html(
            "operator", f"/telephony/callbacks/{abandoned_call()}/reveal"), cid),
        "telephony.callback_attempt": ("operator", lambda app: html(
            "operator", f"/telephony/callbacks/{abandoned_call()}/attempt", data={"outcome": "no_answer"}), cid),
        "api_ivr.ivr_appeal_status": ("ivr", api("ivr", "/api/v1/ivr/appeal-status", json={"phone": PHONE}), cid),
        "api_ivr.ivr_outage": ("ivr", api("ivr", "/api/v1/ivr/outage", json={"phone": PHONE}), cid),
        "api_calls.call_upload": ("operator", api("operator", "/api/v1/calls", data={
            "file": (io.BytesIO(tone_wav(0.5)), "c.wav"), "appeal_id": aid}, content_type="multipart/form-data"), cid),
        "api_qa.evaluation_create": ("supervisor", api("supervisor", f"/api/v1/calls/{call_id}/evaluations",
                                                    json={"answers": _answers(), "comment": "хорошо"}), cid),
        "api_consent.consent_create": ("operator", api("operator", f"/api/v1/citizens/{cid}/consents",
                                               json={"purpose": "csat_survey", "channel": "call"}), cid),
        "api_consent.consent_withdraw": ("operator", lambda app: api("operator", f"/api/v1/consents/{new_consent()}/withdraw")(app),
                                 cid),
        "appeals.appeal_reveal": ("operator", with_csrf("operator", detail, f"{detail}/reveal"), cid),
        "appeals.citizen_rectify": ("operator", lambda app: html("operator", f"{detail}/citizen",
                                                                 data={"apartment": "99"}), cid),
        "dpo.citizen_rectify": ("dpo", lambda app: html("dpo", f"/dpo/citizens/{cid}/rectify",
                                                        data={"apartment": "100"}), cid),
        "appeals.appeal_transition": ("operator", lambda app: html("operator", f"{detail}/transition", data={
            "to_status": next_status(), "comment": "бригада выехала"}), cid),
        "appeals.appeal_add_call": ("operator", lambda app: html("operator", f"{detail}/calls", data={
            "recording": (io.BytesIO(tone_wav(0.5)), "c2.wav")}, content_type="multipart/form-data"), cid),
        # searches by phone are POSTs, so the number stays out of URLs; each match shown is logged
        "appeals.citizen_search": ("operator", lambda app: html("operator", "/operator", data={"phone": PHONE}), cid),
        "dpo.citizen_search": ("dpo", lambda app: html("dpo", "/dpo/citizens", data={"phone": PHONE}), cid),
        "api_citizens.citizens_search": ("operator", api("operator", "/api/v1/citizens/search", json={"phone": PHONE}), cid),
        "api_appeals.appeal_search": ("operator", api("operator", "/api/v1/appeals/search", json={"q": PHONE}), cid),
        "appeals.appeal_search": ("supervisor", with_csrf("supervisor", "/appeals", "/appeals", q=PHONE), cid),
        # the transcript search decrypts (and logs) every transcript it reads, hit or not
        "calls.call_search_submit": ("supervisor", with_csrf("supervisor", "/calls/search", "/calls/search",
                                                             q="холодная батарея"), cid),
        "api_calls.call_search": ("supervisor", api("supervisor", "/api/v1/calls/search",
                                                    json={"q": "батарея холодная"}), cid),
        "appeals.citizen_create": ("operator", lambda app: html("operator", "/citizens", data={
            "full_name": "Новикова Анна Игоревна", "phone": "+7 903 555-00-11", "email": "", "address": "",
            "apartment": ""}), None),
        # repeat candidates while the operator types: the citizen's (and their house's) appeals, logged
        "appeals.repeat_candidates": ("operator", lambda app: html(
            "operator", f"/citizens/{cid}/appeals/repeat-candidates", json={"topic": "roof_leak"}), cid),
        "api_appeals.repeat_candidates": ("operator", api("operator", "/api/v1/appeals/repeat-candidates",
                                                          json={"citizen_id": cid, "topic": "roof_leak"}), cid),
        "appeals.appeal_attach": ("operator", lambda app: html("operator", f"/citizens/{cid}/appeals/attach", data={
            "attach_to": new_appeal(), "recording": (io.BytesIO(tone_wav(0.5)), "c3.wav")},
            content_type="multipart/form-data"), cid),
        "appeals.appeal_new": ("operator", lambda app: html("operator", f"/citizens/{cid}/appeals/new", data={
            "submission_key": "k-complete-1", "category": "routine", "topic": "roof_leak", "channel": "phone",
            "description": "Течёт крыша", "consent_sms": "no", "consent_recording": "unknown"},
            content_type="multipart/form-data"), cid),
        "appeals.consent_withdraw": ("operator", lambda app: with_csrf("operator", detail, f"/consents/{new_consent()}/withdraw",
                                                                       next=detail)(app), cid),
        "qa.evaluate": ("supervisor", lambda app: html("supervisor", f"/calls/{call_id}/evaluations",
                                                       data={**_answers("c_"), "comment": "вежливо"}), cid),
        "calls.call_retranscribe": ("supervisor", with_csrf("supervisor", f"/calls/{call_id}",
                                                            f"/calls/{call_id}/retranscribe"), cid),
        # the citizen's identifiers unmasked in the transcript for a QA reader (transcript.reveal)
        "calls.call_reveal": ("supervisor", with_csrf("supervisor", f"/calls/{call_id}", f"/calls/{call_id}/reveal",
                                                      purpose="call_recording_qa"), cid),
        # the HTML re-run above left the call queued: mark it transcribed again, or this one is a 409
        "api_calls.call_retranscribe": ("supervisor", lambda app: (transcribed_again(), api(
            "supervisor", f"/api/v1/calls/{call_id}/transcription")(app))[1], cid),
        "appeals.quick_consent": ("operator", lambda app: html("operator", f"{detail}/consents", data={
            "purpose": "csat_survey", "given": "yes"}), cid),
        "consent.selfservice_link": ("operator", lambda app: html("operator", f"/citizens/{cid}/selfservice-link",
                                                                  data={"next": detail}), cid),
        "dpo.dpo_withdraw": ("dpo", lambda app: html("dpo", f"/dpo/consents/{new_consent()}/withdraw",
                                                         data={"channel": "paper", "ref": "вх. 12"}), cid),
        "dpo.erasure_request": ("dpo", lambda app: html("dpo", f"/dpo/citizens/{cid}/erasure", data={
            "reason": "заявление заявителя", "channel": "paper"}), cid),
        "dpo.requests": ("dpo", lambda app: html("dpo", "/dpo/requests", data={
            "citizen_id": cid, "type": "access", "channel": "paper", "note": "запрос сведений"}), cid),
        "dpo.request_extend": ("dpo", lambda app: html("dpo", f"/dpo/requests/{new_request()}/extend", data={
            "reason": "нужны сведения от подрядчика"}), cid),
        "dpo.request_verify": ("dpo", lambda app: html("dpo", f"/dpo/requests/{new_request()}/verify", data={
            "method": "document", "document": "passport_rf", "note": "предъявлен лично"}), cid),
        "dpo.request_approve_export": ("dpo", lambda app: html(
            "dpo", f"/dpo/requests/{verified_request()}/approve-export"), cid),
        "dpo.request_answer": ("dpo", lambda app: html("dpo", f"/dpo/requests/{new_request()}/answer", data={
            "decision": "reject", "note": "заявитель не подтвердил личность"}), cid),
        "qa.evaluation_acknowledge": ("operator", lambda app: html(
            "operator", f"/qa/evaluations/{new_evaluation()}/acknowledge"), cid),
        "qa.evaluation_dispute": ("operator", lambda app: html(
            "operator", f"/qa/evaluations/{new_evaluation()}/dispute", data={"reason": "приветствие было"}), cid),
        "qa.evaluation_resolve": ("supervisor", lambda app: html(
            "supervisor", f"/qa/evaluations/{new_evaluation(disputed=True)}/resolve",
            data={"outcome": "upheld", "comment": "оценка верна"}), cid),
        # dispatch (crm/dispatch): the hand-over form and the executor's steps
        "dispatch.appeal_assign": ("operator", lambda app: html("operator", f"/appeals/{new_appeal()}/assign", data={
            "executor_id": str(w.args["executor_id"])}), cid),
        "api_dispatch.appeal_accept": ("executor", lambda app: api("executor", f"/api/v1/appeals/{handed()}/accept",
                                                                   json={})(app), cid),
        "api_dispatch.appeal_progress": ("executor", lambda app: api("executor", f"/api/v1/appeals/{handed()}/progress",
                                                                     json={"comment": "бригада на месте"})(app), cid),
        "api_dispatch.appeal_done": ("executor", lambda app: api("executor", f"/api/v1/appeals/{handed()}/done",
                                                                 json={"comment": "заменили трубу"})(app), cid),
        "api_dispatch.extension_create": ("executor", lambda app: (lambda a: api(
            "executor", f"/api/v1/appeals/{a}/extension-requests",
            json={"until": later(a), "reason": "ждём арматуру"})(app))(handed()), cid),
        "api_dispatch.extension_decide": ("supervisor", lambda app: api(
            "supervisor", f"/api/v1/extension-requests/{pending_extension()}/decision", json={"approve": True})(app), cid),
        "api_dispatch.appeal_address": ("executor", api("executor", f"/api/v1/appeals/{aid}/address"), cid),
        "dispatch.executor_step": ("executor", lambda app: html("executor", f"/appeals/{handed()}/work/accept"), cid),
        "dispatch.executor_address": ("executor", lambda app: html("executor", f"{detail}/work/address"), cid),
        "dispatch.extension_decide": ("supervisor", lambda app: html(
            "supervisor", f"/extension-requests/{pending_extension()}/decision", data={"approve": "1"}), cid),
        # incidents (crm/incidents): a call counted on an incident names its caller; closing an incident
        # resolves its appeals (appeal.transition, naming each citizen)
        "appeals.incident_attach": ("operator", lambda app: html(
            "operator", f"/citizens/{cid}/incidents/{incident()}/attach", data={}), cid),
        "api_incidents.incident_call": ("operator", lambda app: api(
            "operator", f"/api/v1/incidents/{incident()}/calls", json={"citizen_id": cid})(app), cid),
        "incidents.incident_close": ("supervisor", lambda app: html(
            "supervisor", f"/incidents/{incident(linked=True)}/close", data={"text": "Воду дали"}), cid),
        "api_incidents.incident_close": ("supervisor", lambda app: api(
            "supervisor", f"/api/v1/incidents/{incident(linked=True)}/close", json={"text": "Воду дали"})(app), cid),
        "qa.calibration_score": ("supervisor", lambda app: html(
            "supervisor", f"/qa/calibration/{w.args['session_id']}/score", data=_answers("c_")), cid),
    }


def test_every_post_route_changing_or_revealing_personal_data_logs_it(ctx, world):
    """Generated from ``app.url_map``: each POST route has a recipe that must log, or a reason."""
    recipes = _post_recipes(world)
    problems = []
    rules = [r for r in ctx.url_map.iter_rules() if "POST" in r.methods]
    rules.sort(key=lambda r: UNTRANSCRIBES.index(r.endpoint) + 1 if r.endpoint in UNTRANSCRIBES else 0)
    for rule in rules:
        ep = rule.endpoint
        if ep in POST_NO_PERSONAL_DATA or ep in SELF_SERVICE:
            continue
        if ep not in recipes:
            problems.append(f"POST {rule.rule} ({ep}): add a recipe to _post_recipes or a reason to POST_NO_PERSONAL_DATA")
            continue
        role, prepare, citizen_id = recipes[ep]
        request = prepare(ctx)
        before = last_seq()
        resp = request()
        if resp.status_code >= 400:
            problems.append(f"POST {rule.rule} as {role}: HTTP {resp.status_code} {resp.get_data()[:300]!r}")
            continue
        found = entries_since(before, actor_id=world.users[role].id)
        found = [e for e in found if (e.citizen_id == citizen_id if citizen_id else e.citizen_id is not None)]
        if ep in KNOWN_GAPS:
            if found:
                problems.append(f"{ep} now logs: remove it from KNOWN_GAPS")
            continue
        if not found:
            problems.append(f"POST {rule.rule} ({ep}) as {role}: no access-log entry names the citizen")
    assert not problems, "\n".join(problems)


def test_sign_in_failed_sign_in_and_sign_out_are_logged(client, make_user):
    user = make_user("operator")
    before = last_seq()
    assert client.post("/login", data={"username": user.username, "password": "wrong-password"}).status_code == 200
    assert client.post("/login", data={"username": "nobody-such", "password": "whatever1"}).status_code == 200
    sign_in(client, user)  # the password, then the first code from the app (enrolment)
    assert client.post("/logout").status_code == 302
    got = [(e.action, e.actor, e.outcome) for e in entries_since(before)]
    assert got == [("auth.login_failed", user.username, "denied"), ("auth.login_failed", "nobody-such", "denied"),
                   ("auth.password_ok", user.username, "ok"), ("auth.mfa_enrol", user.username, "ok"),
                   ("auth.login", user.username, "ok"), ("auth.logout", user.username, "ok")]
    assert all(e.ip for e in entries_since(before))


def test_changes_by_services_are_logged_with_the_citizen(ctx, make_user):
    """Every change to citizens, appeals, calls, consents and evaluations writes an entry in its own transaction."""
    from crm.appeals import services as appeals
    from crm.calls import services as calls
    from crm.citizens import services as citizens
    from crm.consent import services as consent

    op = make_user("operator")
    before = last_seq()
    c = CitizenFactory(full_name="Орлов Пётр Ильич", phone="+7 912 111-22-33")
    citizens.update(c, citizens.CitizenData("Орлов Пётр Ильич", "+7 912 111-22-34", address="ул. Мира, 1"))
    a = AppealFactory(citizen=c, category="emergency", topic="sewerage", description="Засор", operator_id=op.id)
    appeals.transition(a, "escalated", user_id=op.id)
    ev = consent.record(c, "call_recording_qa", channel="call")
    consent.withdraw(ev)
    call = calls.store_recording(io.BytesIO(tone_wav(0.5)), "x.wav", appeal=a)
    calls.fail(call, "test", "тест")
    actions = [(e.action, e.citizen_id) for e in entries_since(before)]
    for action in ("citizen.create", "citizen.update", "appeal.create", "appeal.transition", "consent.grant",
                   "consent.withdraw", "call.create", "transcript.fail"):
        assert (action, c.id) in actions, (action, actions)
    from crm import jobs

    for q in jobs.QUEUES:
        jobs.queue(q).empty()


def test_transcription_job_logs_its_reads_as_a_named_system_job(ctx, world):
    """Background jobs are actors too: the transcription job logs (and commits) the decryption of
    the recording before it happens, and the transcript it saves, as job:transcribe_call."""
    from crm.calls import services as calls

    before = last_seq()
    with calls.decrypted_recording(world.call) as audio:
        assert audio.read(4) == b"RIFF"
        logged = entries_since(before)
    assert [(e.action, e.actor, e.actor_role, e.citizen_id, e.call_id) for e in logged] == [
        ("call.decrypt", "job:transcribe_call", "system", world.citizen.id, world.call.id)]
    e = db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == "transcript.create")).scalar_one()
    assert (e.actor, e.actor_role, e.citizen_id, e.call_id) == ("job:transcribe_call", "system", world.citizen.id,
                                                                world.call.id)
