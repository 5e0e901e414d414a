"""The appeal lifecycle (issue 14, point 4): one transition table, stale transitions refused (409, never
applied nor counted as a re-opening; the page's form carries the status it showed), the history's who /
role / UTC / comment with its visibility, «консультация дана» as a first-contact resolution, duplicates
linked and merged (calls and comments move, the citizen told once), re-opening as a new resolution cycle
judged on its own deadline (numbers: test_appeal_numbers.py)."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CallFactory, CitizenFactory
from tests.wavs import tone_wav

#: The table as design.md and issue 14 describe it; the code's table must be exactly this.
TABLE = {
    "received": {"consulted", "escalated", "rejected", "duplicate"},
    "consulted": {"closed", "escalated"},
    "escalated": {"in_progress", "resolved", "rejected", "duplicate"},
    "in_progress": {"resolved", "escalated", "duplicate"},
    "resolved": {"closed", "in_progress"},
    "closed": {"in_progress"},
    "rejected": set(),
    "duplicate": set(),
}


def fresh(status: str, operator, **kw):
    """An appeal put straight into ``status`` (the column only: the table is what is under test)."""
    from crm.appeals import services as appeals

    appeal = AppealFactory(operator=operator, **kw)
    appeal.status = status
    db.session.commit()
    return appeals.get(appeal.id)


def events_of(appeal_id: str) -> list:
    from crm.appeals.models import AppealEvent

    db.session.expire_all()
    return list(db.session.execute(sa.select(AppealEvent).where(AppealEvent.appeal_id == appeal_id)
                                   .order_by(AppealEvent.at)).scalars())


# --- the transition table ---------------------------------------------------------------------------

def test_the_table_is_the_documented_one():
    from crm.appeals.catalog import REOPEN, STATUSES, TRANSITIONS

    assert {k: set(v) for k, v in TRANSITIONS.items()} == TABLE
    assert set(TRANSITIONS) == set(STATUSES)
    assert REOPEN == {("resolved", "in_progress"), ("closed", "in_progress"), ("consulted", "escalated")}


def test_every_pair_of_statuses_is_allowed_or_refused_by_the_table(ctx, make_user):
    """All 64 (from, to) pairs through the service: an allowed one moves the appeal and writes one history
    row; a refused one is ``bad_transition`` and changes nothing."""
    from crm.appeals import services as appeals
    from crm.appeals.catalog import STATUSES

    op = make_user("operator")
    checked = 0
    for src in STATUSES:
        for dst in STATUSES:
            appeal = fresh(src, op)
            rows = len(events_of(appeal.id))
            if dst in TABLE[src]:
                moved = appeals.transition(appeals.get(appeal.id), dst, user=op)
                assert moved.status == dst, (src, dst)
                assert len(events_of(appeal.id)) == rows + 1
            else:
                with pytest.raises(appeals.AppealError) as err:
                    appeals.transition(appeals.get(appeal.id), dst, user=op)
                assert err.value.code == "bad_transition", (src, dst)
                assert appeals.get(appeal.id).status == src and len(events_of(appeal.id)) == rows
            checked += 1
    assert checked == len(STATUSES) ** 2 == 64


def test_the_api_refuses_a_pair_outside_the_table_and_takes_to_as_status(client, make_user, api_token):
    op = make_user("operator")
    headers = api_token(op)
    appeal = AppealFactory(operator=op)
    url = f"/api/v1/appeals/{appeal.id}/transitions"
    resp = client.post(url, json={"status": "resolved", "expected_status": "received"}, headers=headers)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "bad_transition"
    resp = client.post(url, json={"to": "escalated", "expected_status": "received"}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "escalated"


# --- stale transitions ------------------------------------------------------------------------------

def test_a_stale_transition_is_refused_and_not_counted_as_a_reopening(client, make_user, api_token):
    from crm.appeals import services as appeals

    op = make_user("operator")
    headers = api_token(op)
    appeal = fresh("closed", op)
    url = f"/api/v1/appeals/{appeal.id}/transitions"
    first = client.post(url, json={"status": "in_progress", "expected_status": "closed"}, headers=headers)
    assert first.status_code == 200 and first.get_json()["reopen_count"] == 1
    rows = len(events_of(appeal.id))
    # a second page that still shows «Закрыто» re-opens nothing (in_progress → in_progress is not in the table
    # either, but the refusal says why: the status changed)
    again = client.post(url, json={"status": "in_progress", "expected_status": "closed"}, headers=headers)
    assert again.status_code == 409
    body = again.get_json()
    assert body["error"]["code"] == "stale"
    assert body["current_status"] == "in_progress" and body["expected_status"] == "closed"
    assert "уже изменился" in body["error"]["message"] and "«Закрыто»" in body["error"]["message"]
    # a stale step that the table would allow from the current status is refused too: never silently applied
    stale = client.post(url, json={"status": "resolved", "expected_status": "closed", "comment": "готово"},
                        headers=headers)
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "stale"
    db.session.expire_all()
    fresh_row = appeals.get(appeal.id)
    assert (fresh_row.status, fresh_row.reopen_count) == ("in_progress", 1)
    assert len(events_of(appeal.id)) == rows


def test_concurrent_transitions_from_one_status_apply_once(ctx, make_user, api_token):
    """Eight clients send the same re-opening at once, each with the status it saw: the row lock makes one
    win; the others are refused as stale, and the appeal is re-opened once."""
    from crm.appeals import services as appeals

    op = make_user("operator")
    headers = api_token(op)
    appeal = fresh("resolved", op)
    appeal_id = appeal.id
    db.session.commit()
    n, barrier, results = 8, threading.Barrier(8), []

    def post():
        c = ctx.test_client()
        barrier.wait()
        resp = c.post(f"/api/v1/appeals/{appeal_id}/transitions",
                      json={"status": "in_progress", "expected_status": "resolved"}, headers=headers)
        results.append((resp.status_code, (resp.get_json() or {}).get("error", {}).get("code")))

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=str) == sorted([(200, None)] + [(409, "stale")] * (n - 1), key=str), results
    db.session.expire_all()
    assert appeals.get(appeal_id).reopen_count == 1
    assert [e.to_status for e in events_of(appeal_id)].count("in_progress") == 1


def test_the_page_form_carries_the_status_it_showed_and_a_double_click_moves_once(ctx, make_user):
    op = make_user("operator")
    appeal = AppealFactory(operator=op)
    page = SharedContextClient(ctx, op)
    html = page.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert 'name="expected_status" type="hidden" value="received"' in html
    form = {"expected_status": "received", "to_status": "escalated", "comment": "в АДС", "visibility": "internal"}
    first = page.post(f"/appeals/{appeal.id}/transition", data=form)
    assert first.status_code == 302
    second = page.post(f"/appeals/{appeal.id}/transition", data=form)  # the second click of a double click
    assert second.status_code == 409
    text = second.get_data(as_text=True)
    assert "Статус обращения уже изменился: на странице было «Принято», сейчас «Передано исполнителю»" in text
    assert "Переход в «Передано исполнителю» не выполнен" in text
    assert 'name="expected_status" type="hidden" value="escalated"' in text  # the page now shows the new status
    assert [e.to_status for e in events_of(appeal.id)] == ["received", "escalated"]
    english = page.post(f"/appeals/{appeal.id}/transition?lang=en", data=form).get_data(as_text=True)
    assert "status has already changed: the page showed «Received», it is now «Handed over" in english


# --- history and comments ---------------------------------------------------------------------------

def test_history_says_who_in_which_role_when_from_to_and_the_comment(client, make_user, api_token):
    op, admin = make_user("operator"), make_user("admin")
    appeal = AppealFactory(operator=op)
    url = f"/api/v1/appeals/{appeal.id}/transitions"
    assert client.post(url, json={"status": "escalated", "comment": "Передано в АДС", "expected_status": "received"},
                       headers=api_token(op)).status_code == 200
    assert client.post(url, json={"status": "in_progress", "comment": "Бригада выехала", "visibility": "citizen"},
                       headers=api_token(admin)).status_code == 200
    bad = client.post(url, json={"status": "resolved", "visibility": "everyone"}, headers=api_token(op))
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_visibility"
    history = client.get(f"/api/v1/appeals/{appeal.id}", headers=api_token(op)).get_json()["history"]
    assert [(h["from"], h["to"], h["user"], h["role"], h["visibility"], h["comment"]) for h in history] == [
        (None, "received", op.username, None, "internal", None),
        ("received", "escalated", op.username, "operator", "internal", "Передано в АДС"),
        ("escalated", "in_progress", admin.username, "admin", "citizen", "Бригада выехала")]
    assert all(h["at"].endswith("+00:00") and h["kind"] == "transition" for h in history)


def test_comments_are_encrypted_and_only_citizen_ones_reach_the_self_service_page(ctx, make_user, sms_inbox):
    from crm.appeals import services as appeals
    from crm.appeals.models import AppealEvent
    from crm.consent import selfservice

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Светлова Анна", phone="8 916 700-20-01")
    appeal = AppealFactory(citizen=citizen, operator=op)
    appeals.transition(appeal, "escalated", user=op, comment="ВНУТРЕННЕЕ: ключи у соседки", visibility="internal")
    appeals.transition(appeals.get(appeal.id), "in_progress", user=op, comment="Мастер придёт завтра с 10 до 12",
                       visibility="citizen")
    raw = db.session.execute(sa.select(AppealEvent.comment_enc).where(AppealEvent.appeal_id == appeal.id,
                                                                      AppealEvent.comment_enc.is_not(None))).scalars().all()
    assert len(raw) == 2 and all("Мастер".encode() not in r and "ВНУТРЕННЕЕ".encode() not in r for r in raw)

    page = ctx.test_client()
    assert page.get("/my/appeals").status_code == 302  # not signed in
    with page.session_transaction() as s:
        s["ss_scope"], s["ss_until"], s["ss_grant"] = [citizen.id], int(time.time()) + 600, "test-grant"
    html = page.get("/my/appeals").get_data(as_text=True)
    assert appeal.number in html and "В работе" in html
    assert "Мастер придёт завтра с 10 до 12" in html
    assert "ВНУТРЕННЕЕ" not in html
    from crm.security.models import AccessLogEntry

    logged = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "appeal.view",
                                                                AccessLogEntry.actor == selfservice.CITIZEN.name)).scalars().all()
    assert [(e.citizen_id, e.appeal_id) for e in logged] == [(citizen.id, appeal.id)]


# --- consultation: closed at the first contact ------------------------------------------------------

def test_a_consultation_closes_in_one_step_and_counts_as_first_contact_resolution(ctx, make_user):
    from crm.appeals import services as appeals

    op = make_user("operator")
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    answered = AppealFactory(operator=op, category="consultation", topic="billing")
    appeals.transition(answered, "consulted", user=op, comment="Разъяснён порядок перерасчёта")
    answered = appeals.get(answered.id)
    assert answered.first_contact is True and answered.closed_at is not None and answered.resolved_at is not None
    assert appeals.next_deadline(answered) is None  # nothing pending: «update by tomorrow» no more
    assert {c.code: c.state for c in appeals.clocks(answered)}["status_update"] == "met"
    handed = AppealFactory(operator=op, category="routine", topic="lift")
    appeals.transition(handed, "escalated", user=op)
    rejected = AppealFactory(operator=op, category="routine", topic="yard")
    appeals.transition(rejected, "rejected", user=op)  # not worked on: outside the rate
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert appeals.fcr_rate(start, end) == {"appeals": 2, "first_contact": 1, "rate": 0.5}
    assert appeals.kpi_figures(start, end, end)["first_contact_resolution_rate"] == 0.5
    # the citizen calls back, not helped after all: handed over (a re-opening), no longer a first-contact one
    appeals.transition(answered, "escalated", user=op, expected_status="consulted")
    answered = appeals.get(answered.id)
    assert (answered.first_contact, answered.reopen_count, answered.closed_at) == (False, 1, None)
    assert appeals.fcr_rate(start, end)["rate"] == 0.0


# --- re-opening: a new resolution cycle -------------------------------------------------------------

def test_a_reopened_appeal_is_judged_on_its_new_resolution_deadline(ctx, make_user):
    """Resolved two days late, then re-opened: the new cycle's ``resolve_by`` is counted from the
    re-opening, and ``sla.breached`` (and the next deadline) judge the new cycle, not the old breach; past
    the new deadline it is breached again. The clocks (crm.clocks) start a new cycle at the same instant."""
    from crm.appeals import services as appeals

    op = make_user("operator")
    appeal = AppealFactory(operator=op, category="routine", channel="letter")
    appeals.transition(appeal, "escalated", user=op)
    appeals.transition(appeals.get(appeal.id), "resolved", user=op)
    appeal = appeals.get(appeal.id)
    now = datetime.now(timezone.utc)
    old_due = appeal.resolve_by = now - timedelta(days=5)  # the first cycle's deadline, long passed
    appeal.resolved_at = now - timedelta(days=3)  # resolved two days late: the first cycle is a breach
    db.session.commit()
    assert appeals.sla_state(appeal)["breached"] is True

    appeals.transition(appeal, "in_progress", user=op, expected_status="resolved")
    appeal = appeals.get(appeal.id)
    reopened_at = events_of(appeal.id)[-1].at
    assert appeal.reopen_count == 1 and appeal.resolved_at is None
    assert appeal.resolve_by == appeals.sla_deadlines("routine", reopened_at)[2] != old_due
    assert appeals.sla_state(appeal, now=reopened_at + timedelta(hours=1))["breached"] is False
    nearest = appeals.next_deadline(appeal, now=reopened_at + timedelta(hours=1))
    assert not nearest.overdue
    clocks = {c.code: c for c in appeals.clocks(appeal, now=reopened_at + timedelta(hours=1))}
    assert clocks["written_answer"].cycle == 2 and clocks["written_answer"].state == "running"
    assert clocks["written_answer"].due == appeal.resolve_by  # both count 10 working days from the re-opening
    # past the new deadline: breached on the new cycle
    assert appeals.sla_state(appeal, now=appeal.resolve_by + timedelta(minutes=1))["breached"] is True


# --- duplicates -------------------------------------------------------------------------------------

@pytest.fixture()
def work(run_worker):
    def run():
        db.session.commit()
        run_worker()
        db.session.expire_all()
    return run


def test_merge_moves_calls_and_comments_and_tells_the_citizen_once(ctx, make_user, api_token, recordings, work,
                                                                    sms_inbox, monkeypatch):
    from crm.appeals import services as appeals
    from crm.calls import services as calls
    from crm.consent import services as consent
    from crm.consent import sms

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)
    op = make_user("operator")
    headers = api_token(op)
    first = CitizenFactory(full_name="Первова Ольга", phone="8 916 700-30-01")
    second = CitizenFactory(full_name="Вторых Павел", phone="8 916 700-30-02")
    consent.record(second, "sms_notifications", channel="call", operator_id=op.id)
    original = AppealFactory(citizen=first, operator=op, topic="roof_leak", description="Течёт крыша над 9 этажом")
    dup = AppealFactory(citizen=second, operator=op, topic="roof_leak", description="Протечка с крыши в подъезде")
    appeals.transition(dup, "escalated", user=op, comment="Передано в УК: течь у лифта")
    CallFactory(appeal=appeals.get(dup.id), operator=op, audio=tone_wav(0.3), checks=False)
    work()  # the status SMS of the hand-over
    before = {m.id for m in sms.outbox(citizen_id=second.id)}
    assert len(before) == 1  # the hand-over's

    url = f"/api/v1/appeals/{dup.id}/duplicate"
    resp = ctx.test_client().post(url, json={"original_id": original.id, "merge": True, "expected_status": "escalated",
                                             "comment": "тот же стояк"}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "duplicate" and resp.get_json()["duplicate_of"] == original.id
    again = ctx.test_client().post(url, json={"original_id": original.id, "merge": True, "expected_status": "escalated"},
                                   headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "stale"
    twice = ctx.test_client().post(url, json={"original_id": original.id, "merge": True}, headers=headers)
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "bad_transition"
    work()

    db.session.expire_all()
    assert [c.appeal_id for c in calls.for_appeal(original.id)] and not calls.for_appeal(dup.id)
    orig = ctx.test_client().get(f"/api/v1/appeals/{original.id}", headers=headers).get_json()
    moved = [h for h in orig["history"] if h["kind"] == "comment"]
    assert [(h["comment"], h["moved_from"], h["user"]) for h in moved] == [
        ("Передано в УК: течь у лифта", dup.number, op.username)]
    from crm.security.models import AccessLogEntry

    reads = db.session.execute(sa.select(AccessLogEntry.citizen_id).where(
        AccessLogEntry.action == "appeal.view", AccessLogEntry.appeal_id == original.id)).scalars().all()
    assert set(reads) == {first.id, second.id}  # the moved comment is the second citizen's data: its read too
    dup_view = ctx.test_client().get(f"/api/v1/appeals/{dup.id}", headers=headers).get_json()
    assert "Передано в УК: течь у лифта" not in [h["comment"] for h in dup_view["history"]]
    closing = [h for h in dup_view["history"] if h["to"] == "duplicate" and h["kind"] == "transition"]
    assert len(closing) == 1 and closing[0]["visibility"] == "citizen" and original.number in closing[0]["comment"]
    assert ("тот же стояк", "internal") in [(h["comment"], h["visibility"]) for h in dup_view["history"]]
    # told once: one status SMS naming the original, one comment for the citizen
    sent = [m for m in sms.outbox(citizen_id=second.id) if m.id not in before]
    assert len(sent) == 1 and original.number in sent[0].body
    assert not sms.outbox(citizen_id=first.id)
    assert sum(1 for h in dup_view["history"] if h["visibility"] == "citizen") == 1

    # access exports (152-ФЗ ст. 14): each citizen gets their own data, wherever the merge put it
    exported_first = appeals.export_for_citizen(first.id, purpose="data_subject_request", erased=False)
    assert "течь у лифта" not in str(exported_first)  # the second citizen's comment, now on the first's appeal
    assert [c["id"] for a in exported_first for c in a["calls"]] == []  # and their call
    exported_second = appeals.export_for_citizen(second.id, purpose="data_subject_request", erased=False)
    moved_out = next(a["moved_to_original"] for a in exported_second if a["id"] == dup.id)
    assert moved_out["appeal"] == original.number
    assert [c["comment"] for c in moved_out["comments"]] == ["Передано в УК: течь у лифта"]
    assert len(moved_out["calls"]) == 1


def test_link_without_merge_and_refusals(client, make_user, api_token):
    op = make_user("operator")
    headers = api_token(op)
    original = AppealFactory(operator=op, topic="lift")
    dup = AppealFactory(operator=op, topic="lift")
    other = AppealFactory(operator=op, topic="lift")
    url = f"/api/v1/appeals/{dup.id}/duplicate"
    assert client.post(url, json={"original_id": dup.id}, headers=headers).status_code == 400
    assert client.post(url, json={"original_id": "nope"}, headers=headers).status_code == 404
    resp = client.post(f"/api/v1/appeals/{dup.id}/transitions", json={"status": "duplicate", "duplicate_of": original.id},
                       headers=headers)
    assert resp.status_code == 200 and resp.get_json()["duplicate_of"] == original.id
    # a duplicate is no original
    resp = client.post(f"/api/v1/appeals/{other.id}/duplicate", json={"original_id": dup.id}, headers=headers)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_original_id"


def test_the_page_marks_a_duplicate_by_number(ctx, make_user):
    from crm.appeals import services as appeals

    op = make_user("operator")
    original = AppealFactory(operator=op, topic="lift")
    dup = AppealFactory(operator=op, topic="lift")
    page = SharedContextClient(ctx, op)
    assert "data-duplicate-form" in page.get(f"/appeals/{dup.id}").get_data(as_text=True)
    short = original.number.split("-")[0] + "-" + str(int(original.number.split("-")[1]))  # 2026-42
    resp = page.post(f"/appeals/{dup.id}/duplicate", data={"original_number": short, "merge": "y",
                                                           "expected_status": "received"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert appeals.get(dup.id).duplicate_of_id == original.id
    html = page.get(f"/appeals/{dup.id}").get_data(as_text=True)
    assert f"№ {original.number}" in html and 'id="duplicate-of"' in html


# --- a comment without a change of status -----------------------------------------------------------

def test_a_comment_alone_keeps_the_status_is_logged_and_only_a_citizen_one_reaches_the_citizen(ctx, make_user,
                                                                                                   api_token):
    from crm.appeals import services as appeals
    from crm.appeals.models import AppealEvent
    from crm.security.models import AccessLogEntry

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Луговая Вера", phone="8 916 700-20-02")
    appeal = fresh("closed", op, citizen=citizen)
    client = ctx.test_client()
    url = f"/api/v1/appeals/{appeal.id}/comments"
    internal = client.post(url, json={"text": "ВНУТРЕННЕЕ: звонила ещё раз"}, headers=api_token(op))
    assert internal.status_code == 201 and internal.get_json()["visibility"] == "internal"
    shown = client.post(url, json={"text": "Перерасчёт придёт в следующей квитанции", "visibility": "citizen"},
                        headers=api_token(op))
    assert shown.status_code == 201
    assert client.post(url, json={"text": "x", "visibility": "citizen"}, headers=api_token(op)).status_code in (400, 422)
    assert client.post(url, json={"text": "годный текст", "visibility": "everyone"},
                       headers=api_token(op)).status_code in (400, 422)
    assert client.post("/api/v1/appeals/no-such/comments", json={"text": "годный текст"},
                       headers=api_token(op)).status_code == 404

    assert appeals.get(appeal.id).status == "closed"
    rows = [e for e in events_of(appeal.id) if e.kind == "comment"]
    assert [(e.from_status, e.to_status, e.visibility, e.user_id, e.user_role) for e in rows] == [
        ("closed", "closed", "internal", op.id, "operator"), ("closed", "closed", "citizen", op.id, "operator")]
    raw = db.session.execute(sa.select(AppealEvent.comment_enc).where(AppealEvent.kind == "comment",
                                                                      AppealEvent.appeal_id == appeal.id)).scalars().all()
    assert len(raw) == 2 and all("Перерасчёт".encode() not in r and "ВНУТРЕННЕЕ".encode() not in r for r in raw)
    logged = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "appeal.comment",
                                                                AccessLogEntry.appeal_id == appeal.id)).scalars().all()
    assert [(e.citizen_id, e.detail) for e in logged] == [(citizen.id, "comment"), (citizen.id, "comment")]

    page = ctx.test_client()
    with page.session_transaction() as s:
        s["ss_scope"], s["ss_until"], s["ss_grant"] = [citizen.id], int(time.time()) + 600, "test-grant"
    html = page.get("/my/appeals").get_data(as_text=True)
    assert "Перерасчёт придёт в следующей квитанции" in html and "ВНУТРЕННЕЕ" not in html


def test_the_page_adds_a_comment_without_changing_the_status(ctx, make_user):
    op = make_user("operator")
    appeal = AppealFactory(operator=op)
    page = SharedContextClient(ctx, op)
    html = page.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert "data-comment-form" in html and "Добавить комментарий" in html
    done = page.post(f"/appeals/{appeal.id}/comment", data={"text": "Сосед сверху не открывает", "visibility": "internal"})
    assert done.status_code == 302
    empty = page.post(f"/appeals/{appeal.id}/comment", data={"text": "", "visibility": "internal"})
    assert empty.status_code == 422 and "Напишите комментарий" in empty.get_data(as_text=True)
    comments = [e for e in events_of(appeal.id) if e.kind == "comment"]
    assert [(e.to_status, e.visibility, e.comment) for e in comments] == [
        ("received", "internal", "Сосед сверху не открывает")]
    shown = page.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert "Сосед сверху не открывает" in shown and "Принято" in shown
