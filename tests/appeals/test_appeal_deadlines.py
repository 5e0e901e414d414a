"""The nearest pending SLA deadline of an appeal: the «Срок» column of the appeal lists and
``next_deadline`` in the JSON API, both from :func:`crm.appeals.services.next_deadline`.

Appeals are made by the services against the run's real database (SQLite by default, PostgreSQL
with ``DATABASE_URL``); deadlines are moved into the past by writing the appeal's columns, so
"overdue" is judged against the real clock.
"""
from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.clients import SharedContextClient
from tests.factories import AppealFactory

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture()
def operator(make_user):
    return make_user("operator")


@pytest.fixture()
def page(ctx, operator):
    """A signed-in operator's client sharing the test's app context."""
    return SharedContextClient(ctx, operator)


@pytest.fixture()
def api(ctx, api_token, operator):
    """An API client with the operator's token (its own cookie jar: an API answer clears the session
    cookie, which would sign ``page`` out)."""
    client, headers = SharedContextClient(ctx), api_token(operator)

    class Api:
        def get(self, url):
            return client.get(url, headers=headers)

        def post(self, url, json):
            return client.post(url, json=json, headers=headers)
    return Api()


def now() -> datetime:
    return datetime.now(timezone.utc)


def move(appeal, **columns):
    """Write ``columns`` (e.g. a deadline in the past) straight to the appeal's row."""
    from crm.db import db

    for name, value in columns.items():
        setattr(appeal, name, value)
    db.session.commit()
    return appeal


def go(appeal, *statuses, operator):
    from crm.appeals import services as appeals

    for status in statuses:
        appeals.transition(appeal, status, user_id=operator.id)
    return appeal


def deadline_cell(page, number: str) -> dict:
    """The «Срок» cell of appeal ``number`` on the «Заявки» page: ``kind`` (or ``none``), ``state``
    (overdue, soon, pending or None), ``text`` (tags stripped) and the raw ``html``."""
    resp = page.get("/appeals")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    row = re.search(r"<tr>(?:(?!</tr>).)*?>" + re.escape(number) + r"</a>.*?</tr>", body, re.S)
    assert row, f"appeal {number} is not in the list"
    cell = re.search(r'<td class="deadline" data-deadline="(\w+)"(?: data-deadline-state="(\w+)")?>(.*?)</td>',
                     row.group(0), re.S)
    assert cell, row.group(0)
    text = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", cell.group(3))).split())
    return {"kind": cell.group(1), "state": cell.group(2), "text": text, "html": cell.group(3)}


def local(due: datetime) -> datetime:
    return due.astimezone(MOSCOW)


def api_deadline(api, appeal_id: str):
    resp = api.get(f"/api/v1/appeals/{appeal_id}")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.get_json()["next_deadline"]


# --- the nearest pending deadline -------------------------------------------------------------------

def test_new_appeal_shows_its_escalation_deadline_in_list_and_api(page, api):
    from crm.appeals.models import Appeal
    from crm.db import db

    resp = api.post("/api/v1/appeals", json={
        "citizen": {"full_name": "Петров Пётр", "phone": "+7 912 345 67 89"}, "category": "emergency",
        "topic": "heating", "description": "Холодные батареи во всём подъезде", "channel": "phone"})
    assert resp.status_code == 201
    created = resp.get_json()
    appeal = db.session.get(Appeal, created["id"])
    # escalation (1 h) comes before the status update (24 h) and the resolution (24 h)
    assert appeal.escalate_by < min(appeal.update_by, appeal.resolve_by)
    expected = {"kind": "escalate", "due": appeal.escalate_by.astimezone(timezone.utc).isoformat(),
                "overdue": False, "soon": False}
    assert created["next_deadline"] == expected
    got = api_deadline(api, appeal.id)
    assert got == expected
    due = datetime.fromisoformat(got["due"])
    assert due.utcoffset() == timedelta(0) and due == appeal.escalate_by
    assert set(resp.get_json()["sla"]) == {"escalate_by", "update_by", "resolve_by", "breached"}  # unchanged

    cell = deadline_cell(page, appeal.number)
    assert (cell["kind"], cell["state"]) == ("escalate", "pending")
    assert cell["text"].startswith(f"передать исполнителю до {local(appeal.escalate_by):%H:%M}")
    assert "просрочено" not in cell["text"] and "скоро" not in cell["text"]


def test_the_earliest_pending_deadline_wins(page, api, operator):
    # routine work: the status update (24 h) comes before resolution (10 working days)
    routine = go(AppealFactory(operator=operator, category="routine"), "escalated", operator=operator)
    assert routine.update_by < routine.resolve_by
    cell = deadline_cell(page, routine.number)
    assert (cell["kind"], cell["state"]) == ("update", "pending")
    assert cell["text"] == f"обновить статус до {local(routine.update_by):%H:%M} завтра"
    assert api_deadline(api, routine.id)["kind"] == "update"

    # an emergency is resolved within 24 h of receipt, before the update clock restarted at hand-over
    emergency = go(AppealFactory(operator=operator, category="emergency"), "escalated", operator=operator)
    assert emergency.resolve_by < emergency.update_by
    cell = deadline_cell(page, emergency.number)
    assert cell["kind"] == "resolve" and cell["text"].startswith("выполнить до")
    got = api_deadline(api, emergency.id)
    assert got["kind"] == "resolve" and datetime.fromisoformat(got["due"]) == emergency.resolve_by

    # a deadline days away is shown with its date
    far = move(AppealFactory(operator=operator, category="routine"), status="in_progress",
               update_by=now() + timedelta(days=20))
    cell = deadline_cell(page, far.number)
    assert cell["kind"] == "resolve"
    assert cell["text"] == f"выполнить до {local(far.resolve_by):%d.%m.%Y %H:%M}"


def test_met_deadlines_are_skipped(page, api, operator):
    appeal = AppealFactory(operator=operator, category="routine")
    move(appeal, created_at=now() - timedelta(hours=3), escalate_by=now() - timedelta(hours=2))
    assert api_deadline(api, appeal.id)["kind"] == "escalate"  # late, not handed over yet

    # handed over (late): the escalation deadline is met and no longer shown, overdue or not
    resp = api.post(f"/api/v1/appeals/{appeal.id}/transitions", json={"status": "escalated"})
    assert resp.status_code == 200
    got = resp.get_json()["next_deadline"]
    assert got["kind"] == "update" and got["overdue"] is False
    cell = deadline_cell(page, appeal.number)
    assert (cell["kind"], cell["state"]) == ("update", "pending") and "просрочено" not in cell["text"]

    # resolved: the resolution deadline is met too, even once it has passed; only closing remains
    go(appeal, "in_progress", "resolved", operator=operator)
    move(appeal, resolve_by=now() - timedelta(minutes=5))
    got = api_deadline(api, appeal.id)
    assert got["kind"] == "update" and got["overdue"] is False
    assert deadline_cell(page, appeal.number)["kind"] == "update"


def test_consultations_have_no_escalation_deadline(page, api, operator):
    appeal = move(AppealFactory(operator=operator, category="consultation", topic="billing"),
                  escalate_by=now() - timedelta(minutes=10))
    got = api_deadline(api, appeal.id)
    assert got["kind"] in ("update", "resolve") and got["overdue"] is False
    assert datetime.fromisoformat(got["due"]) == min(appeal.update_by, appeal.resolve_by)
    assert deadline_cell(page, appeal.number)["state"] == "pending"


# --- overdue and soon -------------------------------------------------------------------------------

def test_overdue_deadline_is_marked(page, api, operator):
    appeal = go(AppealFactory(operator=operator, category="emergency"), "escalated", operator=operator)
    move(appeal, created_at=now() - timedelta(hours=25), resolve_by=now() - timedelta(minutes=30))
    cell = deadline_cell(page, appeal.number)
    assert (cell["kind"], cell["state"]) == ("resolve", "overdue")
    assert '<span class="badge breached">просрочено</span>' in cell["html"]
    # "… до 14:30", or "… до 23:50 вчера" just after Moscow midnight
    assert cell["text"].startswith(f"просрочено выполнить до {local(appeal.resolve_by):%H:%M}")
    got = api_deadline(api, appeal.id)
    assert got == {"kind": "resolve", "due": appeal.resolve_by.astimezone(timezone.utc).isoformat(),
                   "overdue": True, "soon": False}

    fresh = AppealFactory(operator=operator, category="emergency")
    assert deadline_cell(page, fresh.number)["state"] == "pending"


def test_deadline_due_soon_is_marked_from_the_configured_share_of_its_clock(page, api, operator, ctx,
                                                                            monkeypatch):
    # 55 of the 60 minutes to hand over have gone: past the default 80 %
    appeal = move(AppealFactory(operator=operator, category="routine"), created_at=now() - timedelta(minutes=55),
                  escalate_by=now() + timedelta(minutes=5))
    cell = deadline_cell(page, appeal.number)
    assert (cell["kind"], cell["state"]) == ("escalate", "soon")
    assert '<span class="badge soon">скоро</span>' in cell["html"]
    assert api_deadline(api, appeal.id) | {"due": None} == {
        "kind": "escalate", "due": None, "overdue": False, "soon": True}

    monkeypatch.setitem(ctx.config, "CRM_SLA_SOON_FRACTION", 0.95)  # 55/60 ≈ 0.92: not yet
    assert deadline_cell(page, appeal.number)["state"] == "pending"
    assert api_deadline(api, appeal.id)["soon"] is False


# --- closed appeals ---------------------------------------------------------------------------------

def test_closed_rejected_and_duplicate_appeals_have_no_deadline(page, api, operator):
    past = now() - timedelta(days=3)
    closed = go(AppealFactory(operator=operator, category="consultation", topic="billing"), "consulted", "closed",
                operator=operator)
    rejected = go(AppealFactory(operator=operator, category="routine"), "rejected", operator=operator)
    duplicate = go(AppealFactory(operator=operator, category="routine", topic="lift"), "duplicate", operator=operator)
    for appeal in (closed, rejected, duplicate):
        move(appeal, escalate_by=past, update_by=past, resolve_by=past)  # long passed, but nothing is pending
        cell = deadline_cell(page, appeal.number)
        assert (cell["kind"], cell["state"], cell["text"]) == ("none", None, "—"), appeal.status
        assert api_deadline(api, appeal.id) is None
    resp = api.post(f"/api/v1/appeals/{closed.id}/transitions", json={"status": "in_progress"})
    assert resp.status_code == 200
    # re-opened: the resolution deadline is due again — the new cycle's own deadline (issue 14 point 4), not
    # the old one long passed: a re-opening starts a new resolution cycle judged on its own deadline
    from crm.appeals import services as appeals

    got = resp.get_json()
    reopened_at = datetime.fromisoformat(api.get(f"/api/v1/appeals/{closed.id}").get_json()["history"][-1]["at"])
    assert datetime.fromisoformat(got["sla"]["resolve_by"]) == appeals.sla_deadlines("consultation", reopened_at)[2]
    assert datetime.fromisoformat(got["sla"]["resolve_by"]) > reopened_at > past
    assert got["next_deadline"]["kind"] in ("resolve", "update") and got["next_deadline"]["overdue"] is False
    assert got["sla"]["breached"] is False and got["reopen_count"] == 1
    assert deadline_cell(page, closed.number)["state"] in ("pending", "soon")


def test_operator_home_shows_the_same_deadline(page, operator):
    appeal = move(AppealFactory(operator=operator, category="routine"), escalate_by=now() - timedelta(minutes=1))
    body = page.get("/operator").get_data(as_text=True)
    assert 'data-deadline="escalate" data-deadline-state="overdue"' in body
    assert f"передать исполнителю до {local(appeal.escalate_by):%H:%M}" in body


# --- efficiency -------------------------------------------------------------------------------------

def test_list_costs_no_query_per_row(ctx, page, operator):
    from crm.db import db

    def queries_for_list() -> int:
        db.session.commit()  # each measured request starts from a fresh transaction and an empty identity map
        statements = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, …)
        sa.event.listen(db.engine, "before_cursor_execute", listen)
        try:
            assert page.get("/appeals").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listen)
        return len(statements)

    AppealFactory(operator=operator, category="routine")
    queries_for_list()  # warm-up
    few = queries_for_list()
    for category, statuses in [("emergency", ("escalated",)), ("routine", ("escalated", "in_progress")),
                               ("consultation", ("consulted", "closed")), ("complaint", ()),
                               ("routine", ("rejected",)), ("emergency", ())]:
        go(AppealFactory(operator=operator, category=category), *statuses, operator=operator)
    assert queries_for_list() == few


# --- the OpenAPI document ---------------------------------------------------------------------------

def test_openapi_documents_next_deadline(page, api, operator):
    from crm.appeals.catalog import DEADLINE_KINDS

    schemas = page.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    summary = schemas["AppealSummary"]
    assert "next_deadline" in summary["required"]
    assert {"$ref": "#/components/schemas/NextDeadline"} in summary["properties"]["next_deadline"]["anyOf"]
    assert {"type": "null"} in summary["properties"]["next_deadline"]["anyOf"]
    spec = schemas["NextDeadline"]
    assert spec["properties"]["kind"]["enum"] == list(DEADLINE_KINDS) == ["escalate", "update", "resolve"]
    assert "UTC" in spec["properties"]["due"]["description"]

    appeal = AppealFactory(operator=operator)
    got = api_deadline(api, appeal.id)
    assert set(got) == set(spec["required"]) == set(spec["properties"])
