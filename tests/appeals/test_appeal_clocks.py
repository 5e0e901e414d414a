"""An appeal's SLA clocks (crm.clocks wired into crm.appeals): ``GET /api/v1/appeals/{id}`` and the
appeal page list ``clocks`` — ``{code, due, state}`` for each clock that applies to the appeal's
category, topic and channel — judged on the appeal's history (a re-opened appeal on its new cycle),
on the calendar with the administrators' overrides, which also move ``resolve_by``."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

MSK = ZoneInfo("Europe/Moscow")


def msk(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=MSK).astimezone(timezone.utc)


def end_of(y, m, d) -> datetime:
    return datetime(y, m, d, 23, 59, 59, tzinfo=MSK).astimezone(timezone.utc)


def body(**over) -> dict:
    data = {"citizen": {"full_name": "Часов Иван", "phone": "8 916 800-10-01"}, "category": "routine",
            "topic": "heating", "description": "Письмо о холодных батареях", "channel": "letter"}
    data.update(over)
    return data


def backdate(appeal_id: str, times: list[datetime]) -> None:
    """Move the appeal's history events (in order) and its creation to ``times``: the test's past."""
    from crm.appeals.models import Appeal, AppealEvent
    from crm.db import db

    events = db.session.execute(sa.select(AppealEvent).where(AppealEvent.appeal_id == appeal_id)
                                .order_by(AppealEvent.at)).scalars().all()
    assert len(events) == len(times)
    for e, at in zip(events, times):
        e.at = at
    db.session.get(Appeal, appeal_id).created_at = times[0]
    db.session.commit()
    db.session.expire_all()


def test_api_lists_the_clocks_that_apply(client, make_user, api_token):
    from crm.appeals import services as appeals
    from crm.clocks import deadlines

    headers = api_token(make_user("operator"))
    created = client.post("/api/v1/appeals", json=body(), headers=headers).get_json()
    data = client.get(f"/api/v1/appeals/{created['id']}", headers=headers).get_json()
    clocks = {c["code"]: c for c in data["clocks"]}
    assert set(clocks) == {"handover", "status_update", "written_answer"}  # a letter to a management company
    assert {c["state"] for c in clocks.values()} == {"running"}
    received = datetime.fromisoformat(data["created_at"])
    assert datetime.fromisoformat(clocks["handover"]["due"]) == received + timedelta(hours=1)
    assert datetime.fromisoformat(clocks["written_answer"]["due"]) == deadlines.add_working_days(received, 10)
    assert clocks["written_answer"]["due"].endswith("+00:00")
    # an emergency blockage of the sewer: ПП 416's 30 minutes and 2 hours
    emergency = client.post("/api/v1/appeals", json=body(category="emergency", topic="sewerage", channel="phone"),
                            headers=headers).get_json()
    codes = [c["code"] for c in client.get(f"/api/v1/appeals/{emergency['id']}", headers=headers).get_json()["clocks"]]
    assert set(codes) == {"handover", "status_update", "emergency_localisation", "blockage_cleared"}
    later = {c.code: c.state for c in appeals.clocks(appeals.get(emergency["id"]),
                                                     now=datetime.fromisoformat(emergency["created_at"]) + timedelta(hours=3))}
    assert later == {"handover": "overdue", "status_update": "running", "emergency_localisation": "overdue",
                     "blockage_cleared": "overdue"}


def test_a_reopened_appeal_is_judged_on_its_new_cycle(ctx, make_user):
    from crm.appeals import services as appeals
    from tests.factories import CitizenFactory

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Часов Пётр", phone="8 916 800-10-02")
    appeal = appeals.create(citizen, category="routine", topic="heating", description="Письмо о батареях",
                            channel="letter", operator_id=op.id)
    for status in ("escalated", "resolved", "in_progress"):  # resolved late, then re-opened
        appeals.transition(appeal, status, user_id=op.id)
    backdate(appeal.id, [msk(2026, 3, 2, 11), msk(2026, 3, 2, 12), msk(2026, 3, 20, 12), msk(2026, 4, 1, 10)])
    appeal = appeals.get(appeal.id)
    assert [e for e in appeals.clock_events(appeal)][-2:] == [(msk(2026, 4, 1, 10), "reopened"),
                                                              (msk(2026, 4, 1, 10), "in_progress")]
    clocks = {c.code: c for c in appeals.clocks(appeal, now=msk(2026, 4, 2, 9))}
    assert (clocks["written_answer"].cycle, clocks["written_answer"].state) == (2, "running")
    assert clocks["written_answer"].due == end_of(2026, 4, 15)  # 10 working days from 1.04, not from 2.03
    assert clocks["handover"].state == "met"
    assert clocks["status_update"].state == "running" and clocks["status_update"].due == msk(2026, 4, 2, 10)
    assert appeals.clocks(appeal, now=msk(2026, 4, 16, 9))[-1].state == "overdue"


def test_the_appeal_page_shows_the_clocks(client, make_user, login):
    from crm.appeals import services as appeals
    from tests.factories import CitizenFactory

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Часов Олег", phone="8 916 800-10-03")
    appeal = appeals.create(citizen, category="routine", topic="heating", description="Письмо о батареях",
                            channel="letter", operator_id=op.id)
    login(op)
    html = client.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert 'data-clock="written_answer" data-state="running"' in html
    assert "<td>ответить на письменное обращение</td>" in html and '<span class="badge running">идёт</span>' in html
    english = client.get(f"/appeals/{appeal.id}?lang=en").get_data(as_text=True)
    assert "<td>answer the written appeal</td>" in english
    assert '<span class="badge running">in progress</span>' in english


def test_overrides_move_the_resolution_deadline(ctx, make_user):
    """A day the administrators declare a holiday is not counted: ``resolve_by`` of a routine appeal
    (10 working days) and its written-answer clock move by one working day."""
    from crm.appeals import services as appeals
    from crm.clocks import deadlines
    from crm.clocks import services as calendar
    from crm.timeutil import local_date

    admin = make_user("admin")
    now = datetime.now(timezone.utc)
    before = appeals.sla_deadlines("routine", now)[2]
    day = local_date(now) + timedelta(days=1)
    while not calendar.calendar().is_working_day(day):
        day += timedelta(days=1)
    calendar.set_override(admin, day, "holiday", note="региональный праздник")
    after = appeals.sla_deadlines("routine", now)[2]
    assert after > before and after == deadlines.add_working_days(before, 1, calendar=calendar.calendar())


def test_the_periodic_scan_warns_once_per_level_and_escalates_breaches(ctx, make_user):
    """design.md: warnings at 50 / 80 / 100 % of a clock; a breach escalates to the supervisor (the
    ``appeal.clock_breached`` hook fires once per breached cycle, after the commit)."""
    from crm import hooks, schedule
    from crm.appeals import services as appeals
    from crm.appeals.models import AppealClockWarning
    from crm.db import db
    from tests.factories import CitizenFactory

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Часов Засор", phone="8 916 800-10-04")
    appeal = appeals.create(citizen, category="emergency", topic="sewerage", description="Засор в подвале",
                            channel="phone", operator_id=op.id)
    received = msk(2026, 3, 2, 9)
    backdate(appeal.id, [received])
    breached = []

    def on_breach(**kwargs):
        breached.append(kwargs)

    hooks.subscribe("appeal.clock_breached", on_breach)
    try:
        # 70 min: hand-over (1 h) and localisation (30 min) breached, the blockage (2 h) at 58 %
        assert appeals.warn_clocks(received + timedelta(minutes=70)) == {"appeals": 1, "warnings": 7, "breaches": 2}
        assert appeals.warn_clocks(received + timedelta(minutes=75)) == {"appeals": 1, "warnings": 0, "breaches": 0}
        # 100 min: the blockage at 83 %
        assert appeals.warn_clocks(received + timedelta(minutes=100))["warnings"] == 1
    finally:
        hooks.unsubscribe("appeal.clock_breached", on_breach)
    rows = db.session.execute(sa.select(AppealClockWarning.code, AppealClockWarning.level)
                              .order_by(AppealClockWarning.code, AppealClockWarning.level)).all()
    assert [tuple(r) for r in rows] == [("blockage_cleared", 50), ("blockage_cleared", 80),
                                        ("emergency_localisation", 50), ("emergency_localisation", 80),
                                        ("emergency_localisation", 100), ("handover", 50), ("handover", 80),
                                        ("handover", 100)]
    assert sorted(b["code"] for b in breached) == ["emergency_localisation", "handover"]
    assert all(b["appeal_id"] == appeal.id and b["cycle"] == 1 for b in breached)
    # a closed appeal is not watched
    for status in ("escalated", "in_progress", "resolved", "closed"):
        appeals.transition(appeals.get(appeal.id), status, user_id=op.id)
    assert appeals.warn_clocks(received + timedelta(days=3))["appeals"] == 0
    assert "appeal-clock-warnings" in {e.name for e in schedule.SCHEDULE}
