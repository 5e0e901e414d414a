"""The caller log (issue 16, a newcomer's finding): GET /api/v1/telephony/calls and the page
«Журнал звонков» list the PBX's calls newest first, filtered and paged, for supervisors and
administrators, without any phone number in clear."""
from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from tests.api.test_api import as_role, assert_error  # noqa: F401  (as_role is a fixture)
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CallFactory, CitizenFactory
from tests.telephony.test_events import answered_sequence, ev, fixed_now, pbx, record  # noqa: F401  (fixtures)

NUMBER = "+79165550177"


def ingest(call_id: str, *, start, answer_after: float | None = None, talk: float | None = None,
           hangup_after: float | None = None, user: str | None = None, queue: str = "hotline",
           direction: str = "in"):
    """A call built straight from its events (older than the webhook's window accepts), offered at
    ``start`` (aware UTC); answered ``answer_after`` s later by ``user`` and hung up after ``talk`` s,
    or hung up unanswered after ``hangup_after`` s; else still waiting."""
    from crm.telephony import services

    frm, to = (NUMBER, "+74951112233") if direction == "in" else ("+74951112233", NUMBER)
    events = [("newCall", start, {})]
    if answer_after is not None:
        events.append(("answer", start + timedelta(seconds=answer_after), {"user": user}))
        if talk is not None:
            events.append(("hangup", start + timedelta(seconds=answer_after + talk), {"cause": "normalClearing"}))
    elif hangup_after is not None:
        events.append(("hangup", start + timedelta(seconds=hangup_after), {"cause": "cancel"}))
    for kind, moment, kw in events:
        services.ingest(services.Event(event_id=f"{call_id}-{kind}-{uuid.uuid4().hex[:6]}", type=kind, call_id=call_id,
                                       at=moment, from_=frm, to=to, queue=queue, direction=direction, **kw))


def listing(client, headers, **query) -> dict:
    resp = client.get("/api/v1/telephony/calls", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def ids(body: dict) -> list[str]:
    return [item["callId"] for item in body["items"]]


def test_calls_from_webhook_events_are_listed_newest_first_as_their_records(pbx, client, as_role, make_user):
    make_user("operator", username="petrova")
    for event in answered_sequence("log-a", "petrova"):  # offered 200 s ago
        assert pbx(event).status_code == 202
    assert pbx(ev("newCall", "log-b", 100)).status_code == 202
    assert pbx(ev("hangup", "log-b", 60, cause="cancel")).status_code == 202
    assert pbx(ev("newCall", "log-c", 30)).status_code == 202  # still waiting
    _, headers = as_role("supervisor")
    resp = client.get("/api/v1/telephony/calls", headers=headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert ids(body) == ["log-c", "log-b", "log-a"]
    assert body["total"] == 3 and body["next_cursor"] is None
    assert [i["state"] for i in body["items"]] == ["waiting", "abandoned", "ended"]
    # each item is the single record's answer (a waiting call's wait runs on: compared apart)
    for item in body["items"][1:]:
        assert item == record(client, headers, item["callId"])
    assert body["items"][2]["operator"] == "petrova" and body["items"][2]["talk_s"] == 100.0
    raw = resp.get_data(as_text=True)
    for digits in ("9161234567", "916) 123", "123-45-67", "4951112233"):  # the events' numbers, in any form
        assert digits not in raw


def test_each_filter(ctx, client, as_role, make_user):
    from crm.db import utcnow
    from crm.timeutil import day_start, local_date

    make_user("operator", username="op_one")
    make_user("operator", username="op_two")
    today = local_date(utcnow())
    yesterday = today - timedelta(days=1)
    noon_yesterday = day_start(yesterday) + timedelta(hours=12)
    # ten minutes ago, but never before today's local midnight (a run in the first minutes after it
    # would put these calls on yesterday); the last events may then lie a minute ahead, which ingest takes
    recent = max(utcnow() - timedelta(minutes=10), day_start(today) + timedelta(seconds=1))
    ingest("f-old", start=noon_yesterday, answer_after=10, talk=60, user="op_one", queue="hotline")
    ingest("f-lost", start=recent, hangup_after=40, queue="emergency")
    ingest("f-out", start=recent + timedelta(seconds=30), answer_after=5, talk=20, user="op_two", direction="out",
           queue="hotline")
    ingest("f-talk", start=recent + timedelta(seconds=60), answer_after=3, user="op_two", queue="emergency")
    _, headers = as_role("admin")
    assert ids(listing(client, headers)) == ["f-talk", "f-out", "f-lost", "f-old"]
    assert ids(listing(client, headers, date_from=today.isoformat())) == ["f-talk", "f-out", "f-lost"]
    assert ids(listing(client, headers, date_to=yesterday.isoformat())) == ["f-old"]
    assert ids(listing(client, headers, date_from=yesterday.isoformat(), date_to=yesterday.isoformat())) == ["f-old"]
    assert listing(client, headers, date_to=(yesterday - timedelta(days=1)).isoformat())["items"] == []
    assert ids(listing(client, headers, state="abandoned")) == ["f-lost"]
    assert ids(listing(client, headers, state="answered")) == ["f-talk"]
    assert ids(listing(client, headers, state="ended")) == ["f-out", "f-old"]
    assert ids(listing(client, headers, queue="emergency")) == ["f-talk", "f-lost"]
    assert ids(listing(client, headers, operator="op_two")) == ["f-talk", "f-out"]
    assert ids(listing(client, headers, direction="out")) == ["f-out"]
    assert ids(listing(client, headers, direction="in", queue="hotline")) == ["f-old"]
    body = listing(client, headers, operator="op_two", state="ended")
    assert ids(body) == ["f-out"] and body["total"] == 1
    for query, code in (({"state": "lost"}, "invalid_state"), ({"direction": "sideways"}, "invalid_direction"),
                        ({"date_from": "07.12.2026"}, "invalid_date_from"), ({"cursor": "garbage"}, "invalid_cursor")):
        assert_error(client.get("/api/v1/telephony/calls", query_string=query, headers=headers), 400, code)


def test_keyset_pages_reach_every_call_once(ctx, client, as_role):
    from crm.db import utcnow

    start = utcnow() - timedelta(minutes=30)
    for n in range(5):
        ingest(f"p-{n}", start=start + timedelta(minutes=n), hangup_after=20)
    ingest("p-same", start=start + timedelta(minutes=2), hangup_after=20)  # same instant as p-2: the id breaks the tie
    _, headers = as_role("supervisor")
    everything = ids(listing(client, headers, limit=200))
    assert len(everything) == 6 and everything[:2] == ["p-4", "p-3"] and everything[-2:] == ["p-1", "p-0"]
    seen, cursor, sizes = [], None, []
    while True:
        body = listing(client, headers, limit=2, **({"cursor": cursor} if cursor else {}))
        assert body["total"] == 6
        seen += ids(body)
        sizes.append(len(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and sizes == [2, 2, 2]
    resp = client.get("/api/v1/telephony/calls", query_string={"limit": 0}, headers=headers)
    assert resp.status_code == 400


def test_roles(ctx, client, as_role):
    from crm.db import utcnow

    ingest("r-1", start=utcnow() - timedelta(minutes=5), hangup_after=20)
    for role in ("supervisor", "admin"):
        _, headers = as_role(role)
        assert ids(listing(client, headers)) == ["r-1"]
    for role in ("operator", "executor", "ivr"):
        _, headers = as_role(role)
        assert client.get("/api/v1/telephony/calls", headers=headers).status_code == 403, role
    assert client.get("/api/v1/telephony/calls").status_code == 401


def test_page_in_russian_for_supervisors_only(ctx, make_user):
    from crm.db import db, utcnow
    from crm.telephony import services
    from crm.telephony.models import TelephonyCallAppeal

    operator = make_user("operator", username="sidorova")
    operator.full_name = "Сидорова Анна Ильинична"
    db.session.commit()
    start = utcnow() - timedelta(minutes=20)
    ingest("pg-talked", start=start, answer_after=14, talk=95, user="sidorova")
    ingest("pg-lost", start=start + timedelta(minutes=5), hangup_after=42, queue="emergency")
    appeal = AppealFactory(citizen=CitizenFactory(), operator=operator)
    db.session.add(TelephonyCallAppeal(telephony_call_id=services.get("pg-talked").id, appeal_id=appeal.id))
    recording = CallFactory(transcribed=False, operator=operator)
    services.get("pg-talked").recording_call_id = recording.id
    db.session.commit()
    sup = SharedContextClient(ctx, make_user("supervisor"))
    resp = sup.get("/telephony/calls")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    for text in ("Журнал звонков", "Состояние", "Ожидание", "Разговор", "Обратный звонок", "завершён", "потерян",
                 "входящий", "Сидорова Анна Ильинична", "14 с", "95 с", "42 с", "ждёт, до ",
                 f'/appeals/{appeal.id}"', appeal.number, f'/calls/{recording.id}"'):
        assert text in html, text
    assert html.index('data-call="pg-lost"') < html.index('data-call="pg-talked"')
    assert sup.get(f"/calls/{recording.id}").status_code == 200  # the recording link opens for the log's readers
    assert "9165550177" not in html and "550177" not in html
    local = services.get("pg-talked").queued_at
    from crm.timeutil import local_tz
    assert local.astimezone(local_tz()).strftime("%d.%m.%Y %H:%M") in html
    filtered = sup.get("/telephony/calls", query_string={"state": "abandoned"}).get_data(as_text=True)
    assert 'data-call="pg-lost"' in filtered and 'data-call="pg-talked"' not in filtered
    bad = sup.get("/telephony/calls", query_string={"date_from": "вчера"})
    assert bad.status_code == 400 and "ГГГГ-ММ-ДД" in bad.get_data(as_text=True)
    assert 'id="menu-call-log"' in sup.get("/telephony/queue").get_data(as_text=True)
    assert SharedContextClient(ctx, make_user("operator")).get("/telephony/calls").status_code == 403
    assert db.session.execute(sa.select(sa.func.count()).select_from(TelephonyCallAppeal)).scalar_one() == 1
