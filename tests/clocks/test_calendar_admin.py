"""The calendar overrides' two front ends: the administrators' page ``/admin/calendar`` and
``crm calendar list|add|remove``. Both go through crm.clocks.services, so each change is checked by
role and written to the access log under the administrator's name (the command's ``--admin``)."""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa


def calendar_log():
    from crm.db import db
    from crm.security.models import AccessLogEntry

    return db.session.execute(sa.select(AccessLogEntry.actor, AccessLogEntry.actor_role, AccessLogEntry.detail)
                              .where(AccessLogEntry.action == "calendar.override")
                              .order_by(AccessLogEntry.seq)).all()


def test_the_admin_page_adds_and_removes_days(ctx, client, login, make_user):
    from crm.clocks import services

    admin = make_user("admin")
    login(admin)
    page = client.get("/admin/calendar")
    assert page.status_code == 200 and "Отметок нет" in page.get_data(as_text=True)
    resp = client.post("/admin/calendar", data={"day": "2026-12-30", "kind": "shortened", "hours": "6",
                                                "note": "предпраздничный день"})
    assert resp.status_code == 302
    resp = client.post("/admin/calendar", data={"day": "2026-06-01", "kind": "holiday", "note": "региональный праздник"})
    assert resp.status_code == 302
    body = client.get("/admin/calendar").get_data(as_text=True)
    assert "30.12.2026" in body and "01.06.2026" in body and "региональный праздник" in body
    assert not services.calendar().is_working_day(date(2026, 6, 1))
    # a bad value comes back on the page, nothing stored
    bad = client.post("/admin/calendar", data={"day": "2026-06-02", "kind": "holiday", "hours": "4"})
    assert bad.status_code == 422 and "сокращённого дня" in bad.get_data(as_text=True)
    assert client.post("/admin/calendar/2026-06-01/remove").status_code == 302
    assert [(o.day, o.kind, o.hours) for o in services.overrides()] == [(date(2026, 12, 30), "shortened", 6.0)]
    assert calendar_log() == [(admin.username, "admin", "2026-12-30: shortened 6 h"),
                              (admin.username, "admin", "2026-06-01: holiday"),
                              (admin.username, "admin", "2026-06-01: removed")]


def test_the_admin_page_is_for_administrators_only(ctx, client, login, make_user):
    assert client.get("/admin/calendar").status_code == 302  # to the login page
    login(make_user("supervisor"))
    assert client.get("/admin/calendar").status_code == 403
    assert client.post("/admin/calendar", data={"day": "2026-06-01", "kind": "holiday"}).status_code == 403
    assert calendar_log() == []


def test_crm_calendar_command(ctx, runner, make_user):
    from crm.clocks import services

    admin = make_user("admin")
    operator = make_user("operator")
    assert runner("calendar", "list").output.strip() == "no overrides"
    out = runner("calendar", "add", "2026-11-03", "shortened", "--admin", admin.username)
    assert out.exit_code == 0 and out.output.strip() == "2026-11-03: shortened"
    out = runner("calendar", "add", "2026-11-07", "working", "--note", "перенос", "--admin", admin.username)
    assert out.exit_code == 0
    listed = runner("calendar", "list", "--from", "2026-11-01", "--to", "2026-11-30").output.splitlines()
    assert [line.split()[:2] for line in listed] == [["2026-11-03", "shortened"], ["2026-11-07", "working"]]
    assert listed[1].endswith("перенос")
    assert services.calendar().is_working_day(date(2026, 11, 7))  # a Saturday made a working day
    # refused: not an administrator, an unknown kind, a bad date, a day without an override
    refused = runner("calendar", "add", "2026-11-09", "holiday", "--admin", operator.username)
    assert refused.exit_code != 0 and "admin" in refused.output
    assert runner("calendar", "add", "2026-11-09", "vacation", "--admin", admin.username).exit_code != 0
    assert runner("calendar", "add", "09.11.2026", "holiday", "--admin", admin.username).exit_code != 0
    assert runner("calendar", "add", "2026-11-09", "holiday", "--admin", "nobody").exit_code != 0
    assert runner("calendar", "remove", "2026-11-10", "--admin", admin.username).exit_code != 0
    out = runner("calendar", "remove", "2026-11-03", "--admin", admin.username)
    assert out.exit_code == 0
    assert [o.day for o in services.overrides()] == [date(2026, 11, 7)]
    assert calendar_log() == [(admin.username, "admin", "2026-11-03: shortened"),
                              (admin.username, "admin", "2026-11-07: working"),
                              (admin.username, "admin", "2026-11-03: removed")]
