"""The queue surge alert (issue 16, point 3): calls waiting, or arrivals in the last window, well above
the usual level of the weekday and hour; the incident suggested where the surge's callers (or its
appeals) share a building; the supervisors notified once per surge. Figures hand-computed."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from tests.api.test_api import as_role, assert_error  # noqa: F401  (as_role is a fixture)
from tests.clients import SharedContextClient
from tests.factories import CitizenFactory


@pytest.fixture(autouse=True)
def fresh_surge(ctx):
    from crm.telephony import surge

    surge.forget()
    yield
    surge.forget()


def arrive(call_id: str, at, *, number: str = "+79990000001", answered: bool = False) -> None:
    """An inbound call offered at ``at`` (answered 5 s later when ``answered``, else still waiting)."""
    from crm.telephony import services

    def ev(kind, when, **kw):
        services.ingest(services.Event(event_id=f"{call_id}-{kind}-{uuid.uuid4().hex[:6]}", type=kind, call_id=call_id,
                                       at=when, from_=number, to="+74951112233", queue="hotline", **kw))
    ev("newCall", at)
    if answered:
        ev("answer", at + timedelta(seconds=5), user="op")


def notifications(kind_prefix: str = "queue_surge") -> list:
    from crm.db import db
    from crm.dispatch.models import Notification

    return [n for n in db.session.execute(sa.select(Notification).order_by(Notification.id)).scalars()
            if n.kind.startswith(kind_prefix)]


def test_arrivals_against_the_usual_level_of_the_weekday_and_hour(ctx):
    """History, same weekday and hour: 4 weeks ago 36 calls, 3 weeks 24, 2 weeks 0, last week 60 (the
    first call on record is 4 weeks ago, so all four weeks count, the empty one too; a fifth week asked
    for lies before the records and is not counted). Usual per hour = (36 + 24 + 0 + 60) / 4 = 30, per
    10-minute window 30 × 10 / 60 = 5.0; threshold = max(floor 10, ⌈3 × 5.0⌉) = 15: 14 arrivals in the
    window are no surge, the 15th is."""
    from crm.telephony import surge
    from crm.timeutil import local_tz

    ctx.config["CRM_QUEUE_SURGE_HISTORY_WEEKS"] = 5
    try:
        now = (surge.utcnow().astimezone(local_tz()).replace(minute=40, second=0, microsecond=0)
               - timedelta(days=1))
        hour = now.replace(minute=0)
        for weeks, n in ((4, 36), (3, 24), (1, 60)):
            for i in range(n):
                arrive(f"h{weeks}-{i}", hour - timedelta(weeks=weeks) + timedelta(seconds=59 * i))
        arrive("other-hour", hour - timedelta(weeks=1, minutes=1))  # the hour before: not counted
        assert surge.usual_arrivals(now) == (5.0, 4)
        for i in range(14):  # in the window (now − 10 min, now], answered: nobody waits
            arrive(f"w-{i}", now - timedelta(seconds=590 - 40 * i), answered=True)
        arrive("before-window", now - timedelta(minutes=10, seconds=1), answered=True)
        assert surge.detect(now, notify=False) is None
        arrive("w-14", now, answered=True)
        found = surge.detect(now, notify=False)
        assert found is not None
        assert (found["arrivals"], found["usual"], found["usual_weeks"], found["arrivals_threshold"], found["reasons"]) \
            == (15, 5.0, 4, 15, ["arrivals"])
        assert found["waiting"] == 0 and found["incidents"] == []
        assert found["text"] == ("Всплеск звонков: ждут ответа 0 (порог 10); за 10 мин поступило 15, обычно около 5 "
                                 "(порог 15).")
    finally:
        ctx.config["CRM_QUEUE_SURGE_HISTORY_WEEKS"] = 4


def test_without_history_the_floor_decides_and_waiting_calls_alone_make_a_surge(ctx):
    """No history: the threshold is the floor (10). 9 arrivals answered: none; 10: a surge. Then
    (floor raised to 50) 9 calls waiting: none; the 10th waiting: a surge by ``waiting`` alone."""
    from crm.db import utcnow
    from crm.telephony import surge

    now = utcnow()
    for i in range(9):
        arrive(f"a-{i}", now - timedelta(minutes=9, seconds=-i), answered=True)
    assert surge.detect(now, notify=False) is None
    arrive("a-9", now - timedelta(minutes=1), answered=True)
    found = surge.detect(now, notify=False)
    assert (found["usual"], found["usual_weeks"], found["arrivals_threshold"], found["reasons"]) == (None, 0, 10,
                                                                                                   ["arrivals"])
    assert "обычный уровень ещё не известен" in found["text"]
    ctx.config["CRM_QUEUE_SURGE_FLOOR"] = 50
    try:
        for i in range(9):
            arrive(f"q-{i}", now - timedelta(minutes=20, seconds=-i))  # waiting, arrived before the window
        assert surge.detect(now, notify=False) is None
        arrive("q-9", now - timedelta(minutes=15))
        found = surge.detect(now, notify=False)
        assert (found["waiting"], found["arrivals"], found["reasons"]) == (10, 10, ["waiting"])
    finally:
        ctx.config["CRM_QUEUE_SURGE_FLOOR"] = 10


@pytest.fixture()
def houses(ctx):
    from crm.buildings.services import find, import_csv

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 7\"\n".encode())
    return find("г. Москва, ул. Ленина, д. 5"), find("г. Москва, ул. Ленина, д. 7")


def _resident(op, house, topic: str, phone: str):
    from crm.appeals import services as appeals

    citizen = CitizenFactory(phone=phone)
    appeals.register_appeal(op, citizen_id=citizen.id, category="emergency", topic=topic, description="Нет тепла",
                            channel="phone", building_id=house.id)
    return citizen


def test_callers_of_one_building_suggest_an_incident_and_supervisors_are_told_once(ctx, client, make_user, as_role,
                                                                                  houses):
    """Waiting threshold 4. Callers: three residents of house 5 (appeals: heating, heating, lift), one of
    house 7, one unknown number — 5 waiting: a surge. House 5 has 3 different callers (≥ 3): an incident
    suggested there, topic heating (2 appeals in the last hour; lift 1); house 7 (1 caller) is not."""
    from crm.db import utcnow
    from crm.dispatch import services as dispatch
    from crm.incidents import surge as incident_surge
    from crm.telephony import surge

    five, seven = houses
    op = make_user("operator")
    ctx.config["CRM_QUEUE_SURGE_WAITING"] = 4
    try:
        people = [_resident(op, five, "heating", "+79990000011"), _resident(op, five, "heating", "+79990000012"),
                  _resident(op, five, "lift", "+79990000013"), _resident(op, seven, "heating", "+79990000014")]
        now = utcnow()
        for i, person in enumerate(people):
            arrive(f"s-{i}", now - timedelta(seconds=60 - i), number=person.phone)
        arrive("s-anon", now - timedelta(seconds=30), number="+79990000099")
        sup_user, sup = as_role("supervisor")
        board = client.get("/api/v1/telephony/queue", headers=sup).get_json()
        found = board["surge"]
        assert found["waiting"] == 5 and found["reasons"] == ["waiting"]
        [s] = found["incidents"]
        assert (s["building_id"], s["address"], s["topic"], s["callers"], s["appeals"], s["proposal_id"],
                s["incident_id"]) == (five.id, "г. Москва, ул. Ленина, д. 5", "heating", 3, 2, None, None)
        assert s["text"] == ("Дом г. Москва, ул. Ленина, д. 5: звонят жители (3), обращения по теме «Отопление» (2) — "
                             "возможно, авария: откройте инцидент.")
        url = urlsplit(s["url"])
        assert url.path == "/incidents/new"
        assert parse_qs(url.query) == {"address": ["г. Москва, ул. Ленина, д. 5"], "topic": ["heating"]}
        # the link opens the incident form with the address and the service filled in
        web = SharedContextClient(ctx, make_user("supervisor"))
        form = web.get(s["url"]).get_data(as_text=True)
        assert re.search(r'<textarea[^>]*name="addresses"[^>]*>\s*г\. Москва, ул\. Ленина, д\. 5</textarea>', form)
        assert re.search(r'<option[^>]*selected[^>]*value="heating"|<option[^>]*value="heating"[^>]*selected', form)
        # the page shows the alert in Russian with the link
        page = web.get("/telephony/queue").get_data(as_text=True)
        assert 'id="surge"' in page and 'id="surge" hidden' not in page and "Всплеск звонков: ждут ответа 5" in page
        assert "звонят жители (3)" in page and "/incidents/new?address=" in page
        # notified once for the surge, however often the board is polled
        client.get("/api/v1/telephony/queue", headers=sup)
        surge.detect()
        [note] = notifications()
        assert note.kind == "queue_surge_house" and note.audience == "supervisor"
        assert dispatch.notification_text(note) == (
            "Всплеск звонков: ждут ответа 5, за 10 мин поступило 5; многие звонят из дома г. Москва, ул. Ленина, д. 5 "
            "— возможно, нужен инцидент (см. «Очередь звонков»).")
        assert [n.id for n in dispatch.notifications_for(sup_user)] == [note.id]
        # a third heating appeal on house 5: crm.incidents proposes the incident; the board points to that
        # proposal instead of proposing it a second time
        _resident(op, five, "heating", "+79990000015")
        [proposal] = incident_surge.pending()
        [s] = surge.detect(notify=False)["incidents"]
        assert (s["proposal_id"], s["topic"], s["appeals"]) == (proposal.id, "heating", 3)
        s = client.get("/api/v1/telephony/queue", headers=sup).get_json()["surge"]["incidents"][0]
        assert s["url"] == f"/incidents#proposal-{proposal.id}"
        assert f'id="proposal-{proposal.id}"' in web.get("/incidents").get_data(as_text=True)
        # accepted: the building is covered by an open incident, the board links to it
        accepted = incident_surge.decide(sup_user, proposal.id, accept=True, text="Авария на теплотрассе")
        [s] = surge.detect(notify=False)["incidents"]
        assert s["incident_id"] == accepted.incident_id and "уже действует инцидент" in s["text"]
        # the surge ended (its mark expired): the next one is notified again
        surge.forget()
        surge.detect()
        assert len(notifications()) == 2
    finally:
        ctx.config["CRM_QUEUE_SURGE_WAITING"] = 10


def test_no_surge_no_alert(ctx, client, as_role, make_user):
    from crm.db import utcnow

    arrive("calm", utcnow() - timedelta(seconds=20))
    _, sup = as_role("supervisor")
    assert client.get("/api/v1/telephony/queue", headers=sup).get_json()["surge"] is None
    page = SharedContextClient(ctx, make_user("supervisor")).get("/telephony/queue").get_data(as_text=True)
    assert 'id="surge" hidden' in page and "Всплеск звонков" not in page
    assert notifications() == []


def test_the_periodic_check_notifies_without_the_board(ctx):
    from crm import schedule
    from crm.db import utcnow
    from crm.telephony.jobs import surge_check_job

    assert "queue-surge" in {e.name for e in schedule.SCHEDULE}
    now = utcnow()
    for i in range(10):
        arrive(f"p-{i}", now - timedelta(seconds=100 + i))
    assert surge_check_job() is True
    assert surge_check_job() is True
    [note] = notifications()
    assert note.kind == "queue_surge"


def test_a_building_that_comes_to_call_for_an_incident_later_in_the_surge_is_told_once(ctx, make_user):
    """Waiting threshold 4, same-building threshold 3; houses 5, 7 and 9. The surge starts with two callers
    of house 5 and three unknown numbers: the supervisors get the surge's notification, naming no house.
    A third resident of house 5 calls: one more notification, for house 5 — not repeated by later checks
    (board, worker). Then house 7 reaches three callers: one for house 7. House 9 reaches three callers
    too, but an open incident covers it: nothing to decide, no notification. A new surge (the mark
    expired) with houses 5 and 7 calling: the surge's own notification names house 5 (the busiest), and
    house 7 gets its own at once; house 5 is not told twice."""
    from crm.db import utcnow
    from crm.dispatch import services as dispatch
    from crm.incidents import services as incidents
    from crm.buildings.services import find, import_csv
    from crm.telephony import surge

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 7\"\n"
               "\"г. Москва, ул. Ленина, д. 9\"\n".encode())
    five, seven, nine = (find(f"г. Москва, ул. Ленина, д. {n}") for n in (5, 7, 9))
    op, sup = make_user("operator"), make_user("supervisor")
    incidents.create(sup, topic="heating", starts_at=utcnow() - timedelta(hours=1),
                     ends_at=utcnow() + timedelta(hours=5), addresses=[nine.address], text="Авария на теплотрассе")
    ctx.config["CRM_QUEUE_SURGE_WAITING"] = 4
    try:
        now = utcnow()
        n = iter(range(20, 80))

        def call_from(house, i):
            person = _resident(op, house, "heating", f"+7999000{next(n):04d}")
            arrive(f"late-{house.id}-{i}", now - timedelta(seconds=100 - next(n)), number=person.phone)

        call_from(five, 0), call_from(five, 1)
        for i in range(3):
            arrive(f"late-anon-{i}", now - timedelta(seconds=90 - i), number=f"+799900001{i:02d}")
        found = surge.detect()
        assert found["waiting"] == 5 and [s["callers"] for s in found["incidents"]] == []
        [first] = notifications()
        assert first.kind == "queue_surge"

        call_from(five, 2)  # house 5 reaches 3 callers during the surge
        assert [(s["building_id"], s["callers"]) for s in surge.detect()["incidents"]] == [(five.id, 3)]
        surge.detect(), surge.detect()  # more checks: nothing more
        kinds = [(x.kind, x.params.get("address")) for x in notifications()]
        assert kinds == [("queue_surge", None), ("queue_surge_building", five.address)]
        note = notifications()[-1]
        assert dispatch.notification_text(note) == (
            "Всплеск звонков продолжается: теперь многие звонят из дома г. Москва, ул. Ленина, д. 5 (жителей: 3) — "
            "возможно, нужен инцидент (см. «Очередь звонков»).")
        assert note.id in [x.id for x in dispatch.notifications_for(sup)]

        for i in range(3):
            call_from(seven, i)  # a second building during the same surge
        for i in range(3):
            call_from(nine, i)  # covered by an open incident: shown on the board, not notified
        shown = {s["building_id"]: s for s in surge.detect()["incidents"]}
        assert shown[nine.id]["incident_id"] is not None and shown[seven.id]["callers"] == 3
        surge.detect()
        assert [(x.kind, x.params.get("address")) for x in notifications()] == [
            ("queue_surge", None), ("queue_surge_building", five.address), ("queue_surge_building", seven.address)]

        surge.forget()  # the surge ended; a new one with houses 5 and 7 calling from the start
        surge.detect()
        surge.detect()
        later = [(x.kind, x.params.get("address")) for x in notifications()][3:]
        assert later == [("queue_surge_house", five.address), ("queue_surge_building", seven.address)]
    finally:
        ctx.config["CRM_QUEUE_SURGE_WAITING"] = 10


def test_a_building_notification_that_failed_is_tried_again(ctx, make_user, houses):
    """A subscriber of ``queue.surge_building`` that fails rolls its notification back and releases the
    building: the next check tells it (once)."""
    from crm import hooks
    from crm.db import utcnow
    from crm.telephony import surge

    five, _ = houses
    op = make_user("operator")
    ctx.config["CRM_QUEUE_SURGE_WAITING"] = 4
    calls = []

    def flaky(**kw):
        calls.append(kw["building_id"])
        if len(calls) == 1:
            raise RuntimeError("the notification store is down")
    try:
        now = utcnow()
        for i in range(4):
            arrive(f"f-anon-{i}", now - timedelta(seconds=90 - i), number=f"+799900002{i:02d}")
        surge.detect()  # the surge, no building
        hooks.subscribe("queue.surge_building", flaky)
        for i in range(3):
            person = _resident(op, five, "heating", f"+799900000{30 + i}")
            arrive(f"f-{i}", now - timedelta(seconds=60 - i), number=person.phone)
        surge.detect()  # dispatch's subscriber adds the note, ours then fails: both rolled back
        assert [x.kind for x in notifications()] == ["queue_surge"]
        surge.detect()
        surge.detect()
        assert [x.kind for x in notifications()] == ["queue_surge", "queue_surge_building"]
        assert calls == [five.id, five.id]
    finally:
        hooks.unsubscribe("queue.surge_building", flaky)
        ctx.config["CRM_QUEUE_SURGE_WAITING"] = 10
