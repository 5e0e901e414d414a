"""The supervisors' breach queue (issue 14, point 5): a clock's breach found by the worker's periodic
scan puts the appeal on the queue once and notifies the supervisors; the 80 % warning notifies the
executor (or the supervisors when nobody has the appeal); ``GET /api/v1/breaches``, the acknowledge
action and the «Нарушения сроков» page."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from tests.appeals.test_appeal_clocks import backdate
from tests.clients import SharedContextClient


def _breached_appeal(make_user, *, minutes: int = 70, phone: str = "8 916 800-20-01"):
    """An emergency sewer blockage received ``minutes`` ago (70: hand-over 1 h and localisation 30 min
    breached, the blockage's 2 h at 58 %)."""
    from crm.appeals import services as appeals
    from tests.factories import CitizenFactory

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Срокова Анна", phone=phone)
    appeal = appeals.create(citizen, category="emergency", topic="sewerage", description="Засор в подвале",
                            channel="phone", operator_id=op.id)
    backdate(appeal.id, [datetime.now(timezone.utc) - timedelta(minutes=minutes)])
    return appeals.get(appeal.id)


def _queue() -> list[tuple]:
    from crm.dispatch.models import Breach
    from crm.db import db

    db.session.expire_all()
    return [tuple(r) for r in db.session.execute(sa.select(Breach.appeal_id, Breach.clock, Breach.cycle)
                                                 .order_by(Breach.clock)).all()]


def test_a_breach_found_by_a_real_worker_lands_on_the_queue_once(ctx, make_user, run_worker):
    from crm import hooks, jobs
    from crm.dispatch.models import Breach, Notification
    from crm.db import db

    appeal = _breached_appeal(make_user)
    jobs.enqueue("crm.appeals.jobs.warn_clocks_job")
    run_worker()
    expected = [(appeal.id, "emergency_localisation", 1), (appeal.id, "handover", 1)]
    assert _queue() == expected
    breach = db.session.execute(sa.select(Breach).where(Breach.clock == "handover")).scalar_one()
    # breached when the hour ran out, not when the scan noticed it
    assert breach.breached_at == appeal.created_at + timedelta(hours=1)
    assert breach.escalated_at > breach.breached_at and breach.acknowledged_at is None
    # the scan again, by the worker, and the hook fired again (a retried job): still once each
    jobs.enqueue("crm.appeals.jobs.warn_clocks_job")
    run_worker()
    hooks.fire("appeal.clock_breached", appeal_id=appeal.id, code="handover", cycle=1)
    assert _queue() == expected
    kinds = sorted((n.kind, n.audience, n.params["clock"]) for n in db.session.execute(sa.select(Notification)).scalars())
    # each breach notifies the supervisors once; the 80 % warnings of an appeal nobody has go to them too
    assert kinds == [("breach", "supervisor", "emergency_localisation"), ("breach", "supervisor", "handover"),
                     ("warning", "supervisor", "emergency_localisation"), ("warning", "supervisor", "handover")]


def test_the_eighty_per_cent_warning_goes_to_the_executor(ctx, make_user):
    from crm.appeals import services as appeals
    from crm.dispatch import services as dispatch
    from crm.executors import services as executors

    appeal = _breached_appeal(make_user, minutes=50)  # hand-over at 83 %
    ads = executors.create("АДС", "emergency_dispatch")
    appeals.assign(appeal, ads.id, user_id=None)
    backdate(appeal.id, [appeal.created_at, appeal.created_at + timedelta(minutes=1)])
    appeals.warn_clocks()
    executor_user = make_user("executor")
    executor_user.executor_id = ads.id
    other = make_user("executor")
    texts = [dispatch.notification_text(n) for n in dispatch.notifications_for(executor_user)]
    assert any("80 % срока «локализовать аварию»" in t and appeal.number in t for t in texts), texts
    assert dispatch.notifications_for(other) == []  # an account of no executor
    assert all(n.kind != "warning" or n.params["clock"] not in ("emergency_localisation",)
               for n in dispatch.notifications_for(make_user("supervisor")))


def test_api_lists_and_acknowledges_breaches(client, make_user, api_token):
    from crm.dispatch import services as dispatch
    from tests.api.test_api import assert_error, log_entries

    appeal = _breached_appeal(make_user)
    dispatch.escalate_breach(appeal.id, "handover", 1)
    sup_user = make_user("supervisor")
    sup = api_token(sup_user)
    items = client.get("/api/v1/breaches", headers=sup).get_json()["items"]
    assert [(b["number"], b["clock"], b["cycle"], b["acknowledged_at"]) for b in items] == [
        (appeal.number, "handover", 1, None)]
    assert items[0]["breached_at"].endswith("+00:00")
    assert_error(client.get("/api/v1/breaches", headers=api_token(make_user("operator"))), 403, "forbidden")
    resp = client.post(f"/api/v1/breaches/{items[0]['id']}/acknowledge", headers=sup)
    assert resp.status_code == 200 and resp.get_json()["acknowledged_by"] == sup_user.id
    assert client.get("/api/v1/breaches", headers=sup).get_json()["items"] == []
    done = client.get("/api/v1/breaches?acknowledged=true", headers=sup).get_json()["items"]
    assert [b["id"] for b in done] == [items[0]["id"]]
    first = done[0]["acknowledged_at"]
    again = client.post(f"/api/v1/breaches/{items[0]['id']}/acknowledge", headers=api_token(make_user("admin")))
    assert again.get_json()["acknowledged_at"] == first and again.get_json()["acknowledged_by"] == sup_user.id
    assert [e.appeal_id for e in log_entries(action="breach.acknowledge")] == [appeal.id]
    assert_error(client.post("/api/v1/breaches/999999/acknowledge", headers=sup), 404, "not_found")
    notes = client.get("/api/v1/notifications", headers=sup).get_json()
    assert notes["unread"] == 1 and notes["items"][0]["kind"] == "breach"
    assert client.post(f"/api/v1/notifications/{notes['items'][0]['id']}/read", headers=sup).status_code == 200
    assert client.get("/api/v1/notifications?unread=true", headers=sup).get_json() == {"items": [], "unread": 0}


def test_the_supervisors_page(ctx, make_user):
    from crm.dispatch import services as dispatch

    appeal = _breached_appeal(make_user)
    dispatch.escalate_breach(appeal.id, "emergency_localisation", 1)
    sup = make_user("supervisor")
    page = SharedContextClient(ctx, sup)
    html = page.get("/breaches").get_data(as_text=True)
    assert 'id="menu-breaches"' in html and "Нарушения сроков" in html
    assert appeal.number in html and "локализовать аварию" in html
    breach_id = dispatch.breaches()[0].id
    resp = page.post(f"/breaches/{breach_id}/acknowledge", data={"next": "/breaches"})
    assert resp.status_code == 302
    assert dispatch.breaches() == [] and appeal.number in page.get("/breaches?status=all").get_data(as_text=True)
    english = page.get("/breaches?status=all&lang=en").get_data(as_text=True)
    assert "Deadline breaches" in english
    assert 'id="menu-breaches"' not in SharedContextClient(ctx, make_user("operator")).get("/operator").get_data(as_text=True)


def test_a_breach_whose_escalation_failed_is_escalated_by_the_next_scan(ctx, make_user, monkeypatch):
    """The warning is recorded with its reactions: when queueing the breach raises (a database hiccup),
    the scan fails and records nothing for it, and the next scan queues it; before, the warning was
    committed first and the breach never reached the queue."""
    import pytest

    from crm.appeals import services as appeals
    from crm.appeals.models import AppealClockWarning
    from crm.db import db
    from crm.dispatch import services as dispatch

    appeal = _breached_appeal(make_user)
    real = dispatch.escalate_breach
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatch, "escalate_breach", failing_once)
    with pytest.raises(RuntimeError):
        appeals.warn_clocks()
    db.session.expire_all()
    assert _queue() == []
    # the failed breach's warning is not recorded, so the next scan sees it again
    assert db.session.execute(sa.select(AppealClockWarning).where(AppealClockWarning.level == 100)).all() == []
    appeals.warn_clocks()
    assert _queue() == [(appeal.id, "emergency_localisation", 1), (appeal.id, "handover", 1)]
    appeals.warn_clocks()  # and once only
    assert _queue() == [(appeal.id, "emergency_localisation", 1), (appeal.id, "handover", 1)]
