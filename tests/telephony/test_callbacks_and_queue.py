"""The callback worklist (issue 16, point 4) and the queue board's figures (point 3), on sequences of
events fed to the services (the webhook's signature and window are tested in test_events.py)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.api.test_api import as_role, assert_error  # noqa: F401  (as_role is a fixture)

NUMBERS = [f"+7916555{n:04d}" for n in range(20)]


def feed(call_id: str, kind: str, at, *, number: str = NUMBERS[0], direction: str = "in", user: str | None = None,
         cause: str | None = None, queue: str | None = "hotline"):
    from crm.telephony import services

    side = {"from_": number, "to": "+74951112233"} if direction == "in" else {"from_": "+74951112233", "to": number}
    return services.ingest(services.Event(event_id=f"{call_id}-{kind}-{uuid.uuid4().hex[:6]}", type=kind,
                                          call_id=call_id, at=at, direction=direction, user=user, cause=cause,
                                          queue=queue, **side))


def call(call_id: str, start, *, wait: float | None = None, talk: float | None = None, abandon: float | None = None,
         user: str | None = None, **kw) -> None:
    """An inbound call offered at ``start``: answered after ``wait`` s by ``user`` and hung up after ``talk``
    s of talk (no ``talk``: still talking), or hung up unanswered after ``abandon`` s (neither: waiting)."""
    feed(call_id, "newCall", start, **kw)
    if wait is not None:
        feed(call_id, "answer", start + timedelta(seconds=wait), user=user, **kw)
        if talk is not None:
            feed(call_id, "hangup", start + timedelta(seconds=wait + talk), cause="normalClearing", **kw)
    elif abandon is not None:
        feed(call_id, "hangup", start + timedelta(seconds=abandon), cause="cancel", **kw)


def ids(client, headers) -> list[str]:
    resp = client.get("/api/v1/telephony/callbacks", headers=headers)
    assert resp.status_code == 200
    return [i["callId"] for i in resp.get_json()["items"]]


def test_abandon_callback_attempts_clear(ctx, client, as_role, monkeypatch):
    from crm.db import utcnow
    from crm.telephony import services

    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_CALLBACK_QUEUE_S", {"emergency": 600})
    op_user, op = as_role("operator")
    now = utcnow()
    call("ab-1", now - timedelta(seconds=300), abandon=40, number=NUMBERS[1])
    call("ab-2", now - timedelta(seconds=200), abandon=20, number=NUMBERS[2], queue="emergency")
    call("ok-1", now - timedelta(seconds=200), wait=5, talk=30, number=NUMBERS[3], user="x")
    items = {i["callId"]: i for i in client.get("/api/v1/telephony/callbacks", headers=op).get_json()["items"]}
    assert set(items) == {"ab-1", "ab-2"}
    first = services.get("ab-1")
    assert first.callback_due_at == first.ended_at + timedelta(seconds=3600)
    second = services.get("ab-2")
    assert second.callback_due_at == second.ended_at + timedelta(seconds=600)  # the queue's own deadline
    assert list(items) == ["ab-2", "ab-1"]  # earliest deadline first
    assert items["ab-1"]["waited_s"] == pytest.approx(40) and items["ab-1"]["callable"] is True
    assert "caller" not in items["ab-1"]
    url = f"/api/v1/telephony/callbacks/{first.id}/attempts"
    resp = client.post(url, json={"outcome": "no_answer"}, headers=op)
    assert resp.status_code == 201 and resp.get_json()["cleared"] is False
    assert "ab-1" in ids(client, op)
    assert_error(client.post(url, json={"outcome": "maybe"}, headers=op), 400)
    resp = client.post(url, json={"outcome": "reached"}, headers=op)
    assert resp.status_code == 201 and resp.get_json()["cleared"] is True
    assert ids(client, op) == ["ab-2"]
    assert_error(client.post(url, json={"outcome": "reached"}, headers=op), 409, "not_on_worklist")
    got = services.get("ab-1")
    assert got.callback_via == "page"
    from crm.db import db
    from crm.security.models import AccessLogEntry
    import sqlalchemy as sa
    logged = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "callback.attempt")).scalars().all()
    assert len(logged) == 2 and all(e.actor_id == op_user.id for e in logged)


def test_the_pbx_outbound_call_clears_the_callback(ctx, client, as_role):
    from crm.db import utcnow
    from crm.telephony import services

    _, sup = as_role("supervisor")
    now = utcnow()
    call("ab-3", now - timedelta(seconds=300), abandon=30, number=NUMBERS[4])
    call("ab-4", now - timedelta(seconds=300), abandon=30, number=NUMBERS[5])
    assert ids(client, sup) == ["ab-3", "ab-4"] or set(ids(client, sup)) == {"ab-3", "ab-4"}
    # the operator dials NUMBERS[4] back through the PBX (written in another spelling)
    feed("out-1", "newCall", now - timedelta(seconds=60), direction="out", number="8 916 555-00-04", queue=None)
    feed("out-1", "answer", now - timedelta(seconds=50), direction="out", number="8 916 555-00-04", user="x", queue=None)
    assert ids(client, sup) == ["ab-4"]
    assert services.get("ab-3").callback_via == "pbx"
    # the caller of ab-4 calls again and is answered: no need to call back
    call("again-4", now - timedelta(seconds=40), wait=5, number=NUMBERS[5], user="y")
    assert ids(client, sup) == []
    assert services.get("ab-4").callback_via == "recall"


def test_a_callback_reported_before_the_abandon_still_clears_it(ctx, client, as_role):
    """Events across calls out of order: the PBX's outbound call arrives before the abandoned call's hang-up."""
    from crm.db import utcnow

    _, sup = as_role("supervisor")
    now = utcnow()
    feed("ab-5", "newCall", now - timedelta(seconds=300), number=NUMBERS[6])
    feed("out-5", "newCall", now - timedelta(seconds=100), direction="out", number=NUMBERS[6], queue=None)
    feed("ab-5", "hangup", now - timedelta(seconds=280), cause="cancel", number=NUMBERS[6])
    assert ids(client, sup) == []


def test_an_abandoned_call_answered_after_all_leaves_the_list(ctx, client, as_role):
    from crm.db import utcnow

    _, sup = as_role("supervisor")
    now = utcnow()
    feed("late", "newCall", now - timedelta(seconds=100), number=NUMBERS[7])
    feed("late", "hangup", now - timedelta(seconds=10), number=NUMBERS[7], cause="normalClearing")
    assert ids(client, sup) == ["late"]
    feed("late", "answer", now - timedelta(seconds=90), number=NUMBERS[7], user="z")  # came late
    assert ids(client, sup) == []


def test_queue_board_figures_on_a_simulated_sequence(ctx, client, as_role, make_user):
    """Hand-computed: 5 answered (waits 10, 25, 320, 15, 10 s), 2 abandoned (3 s: short; 40 s), one
    waiting 30 s, one outbound (ignored), one yesterday (ignored).
    offered = 5 + 2 − 1 = 6; within 20 s: 3 → service level 3/6 = 0.5; ASA = 380 / 5 = 76 s;
    abandon rate = 1/6; answered over 300 s: 1; op_a talking (3 answered, 60 + 80 + 0 s), op_b
    available (2 answered, 175 + 85 s)."""
    from crm.telephony import services
    from crm.timeutil import day_start, local_date
    from crm.db import utcnow

    make_user("operator", username="op_a")
    make_user("operator", username="op_b")
    _, sup = as_role("supervisor")
    today = day_start(local_date(utcnow()))
    noon = today + timedelta(hours=12)
    t0 = noon - timedelta(hours=1)
    s = lambda sec: t0 + timedelta(seconds=sec)  # noqa: E731
    call("q1", s(0), wait=10, talk=60, user="op_a", number=NUMBERS[8])
    call("q2", s(100), wait=25, talk=175, user="op_b", number=NUMBERS[9])
    call("q3", s(200), abandon=3, number=NUMBERS[10])
    call("q4", s(300), abandon=40, number=NUMBERS[11])
    call("q5", s(400), wait=320, talk=80, user="op_a", number=NUMBERS[12])
    call("q6", s(500), wait=15, talk=85, user="op_b", number=NUMBERS[13])
    call("q7", noon - timedelta(seconds=30), number=NUMBERS[14])  # waiting
    call("q8", noon - timedelta(seconds=100), wait=10, user="op_a", number=NUMBERS[15])  # talking
    feed("q9", "newCall", s(50), direction="out", number=NUMBERS[16], queue=None)
    feed("q9", "hangup", s(90), direction="out", number=NUMBERS[16], queue=None)
    call("q0", today - timedelta(hours=2), wait=100, talk=10, user="op_b", number=NUMBERS[17])  # yesterday
    board = services.queue_board(now=noon)
    assert board["waiting"] == 1 and board["longest_wait_s"] == pytest.approx(30)
    assert board["offered"] == 6 and board["answered"] == 5
    assert board["abandoned"] == 1 and board["short_abandons"] == 1
    assert board["service_level"] == pytest.approx(0.5)
    assert board["asa_s"] == pytest.approx(76.0)
    assert board["abandon_rate"] == pytest.approx(1 / 6, abs=1e-4)
    assert board["answered_over_norm"] == 1 and board["answered_over_norm_calls"] == ["q5"]
    agents = {a["user"]: a for a in board["agents"]}
    assert agents["op_a"] == {"user": "op_a", "full_name": "Тест operator", "state": "talking", "answered": 3,
                              "talk_s": pytest.approx(140)}
    assert agents["op_b"] == {"user": "op_b", "full_name": "Тест operator", "state": "available", "answered": 2,
                              "talk_s": pytest.approx(260)}
    assert board["callbacks_open"] == 2
    # with emergency queues named, the 5-minute norm counts only their calls
    ctx.config["CRM_TELEPHONY_EMERGENCY_QUEUES"] = ("emergency",)
    try:
        assert services.queue_board(now=noon)["answered_over_norm"] == 0
        call("q10", s(600), wait=301, talk=10, user="op_b", number=NUMBERS[18], queue="emergency")
        assert services.queue_board(now=noon)["answered_over_norm_calls"] == ["q10"]
    finally:
        ctx.config["CRM_TELEPHONY_EMERGENCY_QUEUES"] = ()
    # the API answers the same document for supervisors, refuses operators
    resp = client.get("/api/v1/telephony/queue", headers=sup)
    assert resp.status_code == 200 and set(resp.get_json()) >= {"waiting", "longest_wait_s", "service_level", "asa_s",
                                                                 "abandon_rate", "agents"}
    _, op = as_role("operator")
    assert_error(client.get("/api/v1/telephony/queue", headers=op), 403)


def test_queue_board_with_nothing_offered(ctx):
    from crm.telephony import services

    board = services.queue_board()
    assert board["service_level"] is None and board["asa_s"] is None and board["abandon_rate"] is None
    assert board["waiting"] == 0 and board["longest_wait_s"] == 0
