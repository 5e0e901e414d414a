"""The screen pop (issue 16, point 2): the PBX's ``answer`` names an operator, and that operator's pages —
only theirs — show the caller: the citizen found through the phone blind index, their open appeals,
the incident at their house, their consents, or «Новый абонент»; each display is logged; appeals the
operator registers during the call are linked to it; the hang-up clears the pop."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.api.test_api import as_role  # noqa: F401  (a fixture)
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CitizenFactory, ConsentFactory
from tests.telephony.test_events import ev, fixed_now, pbx, record  # noqa: F401  (fixtures)

PHONE = "+79161234567"  # the number of test_events.ev's "from"
ADDRESS = "г. Москва, ул. Ленина, д. 5"


def pop_of(web) -> dict:
    resp = web.get("/telephony/pop")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    return resp.get_json()


def entries(action: str) -> list:
    from crm.db import db
    from crm.security.models import AccessLogEntry

    db.session.expire_all()
    return db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == action)
                              .order_by(AccessLogEntry.seq)).scalars().all()


@pytest.fixture()
def operators(ctx, make_user):
    """Two signed-in operators: ``(user, client)`` each."""
    a, b = make_user("operator", username="pop_a"), make_user("operator", username="pop_b")
    return (a, SharedContextClient(ctx, a)), (b, SharedContextClient(ctx, b))


def test_the_pop_reaches_only_the_answering_operator(ctx, pbx, operators):
    from crm import jobs
    from crm.telephony import services

    (a, web_a), (b, web_b) = operators
    assert pbx(ev("newCall", "pop-1", 30)).status_code == 202
    assert pop_of(web_a)["call"] is None and pop_of(web_b)["call"] is None  # ringing: no pop yet
    assert pbx(ev("answer", "pop-1", 20, user="pop_a")).status_code == 202
    record_id = services.get("pop-1").id
    got = pop_of(web_a)
    assert got["call"] == record_id and got["card"] == "/telephony/pop/card" and got["poll_s"] == 2
    assert pop_of(web_b) == {"call": None, "card": None, "poll_s": 2}
    assert web_b.get("/telephony/pop/card").status_code == 404  # nothing waits for them
    assert entries("telephony.pop") == []  # nothing shown yet, nothing logged
    # a key pointing another operator at the call (stale, forged) shows nothing: the database decides
    jobs.redis_connection().set(f"{ctx.config['CRM_QUEUE_PREFIX']}crm:telephony:pop:{b.id}", record_id)
    assert pop_of(web_b)["call"] is None and web_b.get("/telephony/pop/card").status_code == 404
    # the unknown number: «Новый абонент» with the number (masked), and the display is logged
    html = web_a.get("/telephony/pop/card").get_data(as_text=True)
    assert f'data-call="{record_id}"' in html and "Новый абонент" in html and "+7 916 ***-**-67" in html and "1234567" not in html
    assert f'href="/operator?call={record_id}"' in html  # the intake: the number is never in a URL
    [logged] = entries("telephony.pop")
    assert logged.actor_id == a.id and logged.citizen_id is None and logged.outcome == "not_found"
    assert logged.detail == f"call {record_id}"


def test_known_caller_with_open_appeal_incident_and_consents(ctx, pbx, operators, make_user):
    from crm.buildings.services import import_csv
    from crm.db import utcnow
    from crm.incidents import services as incidents
    from crm.telephony import services

    (a, web_a), _ = operators
    import_csv(f'address\n"{ADDRESS}"\n'.encode())
    citizen = CitizenFactory(full_name="Громова Анна Петровна", phone=PHONE, address=ADDRESS)
    appeal = AppealFactory(citizen=citizen, operator=a, topic="hot_water", description="Нет горячей воды")
    ConsentFactory(citizen=citizen, purpose="call_recording_qa")
    incidents.create(make_user("supervisor"), topic="hot_water", starts_at=utcnow() - timedelta(hours=1),
                     ends_at=utcnow() + timedelta(hours=5), addresses=[ADDRESS],
                     text="Отключено горячее водоснабжение: авария на теплотрассе")
    for e in (ev("newCall", "pop-2", 30), ev("answer", "pop-2", 20, user="pop_a")):
        assert pbx(e).status_code == 202
    record_id = services.get("pop-2").id
    assert pop_of(web_a)["call"] == record_id
    html = web_a.get("/telephony/pop/card").get_data(as_text=True)
    assert "Громова Анна Петровна" in html and "+7 916 ***-**-67" in html and "Новый абонент" not in html
    assert f"№ {appeal.number}" in html and f'href="/appeals/{appeal.id}"' in html
    assert "Принято" in html and "Горячее водоснабжение (ГВС)" in html
    assert "Отключено горячее водоснабжение: авария на теплотрассе" in html
    assert 'data-purpose="call_recording_qa">Запись звонка для контроля качества — действует' in html
    assert f'href="/citizens/{citizen.id}/appeals/new"' in html  # Enter: this citizen's intake
    [shown] = entries("telephony.pop")
    assert shown.citizen_id == citizen.id and shown.actor_id == a.id and shown.fields == "full_name,phone"
    assert any(e.citizen_id == citizen.id and e.actor_id == a.id for e in entries("citizen.view"))


def test_a_closed_appeal_and_another_house_are_left_out(ctx, pbx, operators, make_user):
    from crm.appeals import services as appeals
    from crm.telephony import services

    (a, web_a), _ = operators
    citizen = CitizenFactory(phone=PHONE)
    done = AppealFactory(citizen=citizen, operator=a)
    appeals.transition(done, "consulted", user=a)
    for e in (ev("newCall", "pop-3", 30), ev("answer", "pop-3", 20, user="pop_a")):
        pbx(e)
    html = web_a.get("/telephony/pop/card").get_data(as_text=True)
    assert done.number not in html and "Открытых обращений нет." in html and "Не зарегистрировано." in html


def test_appeals_registered_during_the_call_are_linked_and_the_hangup_clears(ctx, client, pbx, operators,
                                                                           api_token, as_role):
    from crm import jobs
    from crm.telephony import services

    (a, web_a), (b, _) = operators
    _, sup = as_role("supervisor")
    citizen = CitizenFactory(phone=PHONE)
    for e in (ev("newCall", "pop-4", 60), ev("answer", "pop-4", 50, user="pop_a")):
        pbx(e)
    record_id = services.get("pop-4").id

    def register(user, channel: str = "phone") -> str:
        resp = client.post("/api/v1/appeals", headers=api_token(user),
                           json={"citizen_id": citizen.id, "category": "routine", "topic": "heating",
                                 "description": "Холодные батареи", "channel": channel})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        return resp.get_json()["id"]

    during = register(a)
    register(b)             # another operator, on no call: not this call's
    register(a, "letter")   # a letter typed during the call is not taken on it
    assert record(client, sup, "pop-4")["appeal_ids"] == [during]
    html = web_a.get("/telephony/pop/card").get_data(as_text=True)
    assert "Обращения этого звонка:" in html and f'href="/appeals/{during}"' in html
    # the hang-up clears the pop (and its Redis key); an appeal after it is not linked
    assert pbx(ev("hangup", "pop-4", 10, cause="normalClearing")).status_code == 202
    assert pop_of(web_a)["call"] is None
    assert jobs.redis_connection().get(f"{ctx.config['CRM_QUEUE_PREFIX']}crm:telephony:pop:{a.id}") is None
    assert web_a.get("/telephony/pop/card").status_code == 404
    register(a)
    assert record(client, sup, "pop-4")["appeal_ids"] == [during]


def test_a_transfer_moves_the_pop(ctx, pbx, operators):
    from crm.telephony import services

    (a, web_a), (b, web_b) = operators
    for e in (ev("newCall", "pop-5", 100), ev("answer", "pop-5", 90, user="pop_a")):
        pbx(e)
    assert pop_of(web_a)["call"] == services.get("pop-5").id
    pbx(ev("hangup", "pop-5", 60, cause="forwarded"))
    pbx(ev("answer", "pop-5", 58, user="pop_b"))
    assert pop_of(web_a)["call"] is None and pop_of(web_b)["call"] == services.get("pop-5").id


def test_an_answer_by_an_unknown_user_pops_nothing(ctx, pbx, operators):
    (a, web_a), (b, web_b) = operators
    for e in (ev("newCall", "pop-6", 30), ev("answer", "pop-6", 20, user="pop_ghost")):
        assert pbx(e).status_code == 202
    assert pop_of(web_a)["call"] is None and pop_of(web_b)["call"] is None


def test_the_intake_from_the_pop_is_prefilled_for_the_answering_operator_only(ctx, pbx, operators):
    from crm.telephony import services

    (a, web_a), (b, web_b) = operators
    for e in (ev("newCall", "pop-7", 30), ev("answer", "pop-7", 20, user="pop_a")):
        pbx(e)
    record_id = services.get("pop-7").id
    page = web_a.get(f"/operator?call={record_id}").get_data(as_text=True)
    assert f'value="{PHONE}"' in page  # the search and the new-citizen form, prefilled
    [revealed] = entries("telephony.reveal")
    assert revealed.actor_id == a.id and revealed.detail == f"intake {record_id}" and revealed.fields == "phone"
    other = web_b.get(f"/operator?call={record_id}")
    assert other.status_code == 200 and PHONE not in other.get_data(as_text=True)
    assert len(entries("telephony.reveal")) == 1


def test_operator_pages_carry_the_pop_script_and_others_do_not(ctx, make_user):
    op = SharedContextClient(ctx, make_user("operator"))
    html = op.get("/operator").get_data(as_text=True)
    assert "pop.js" in html and 'id="screen-pop"' in html and 'data-source="/telephony/pop"' in html
    sup = SharedContextClient(ctx, make_user("supervisor"))
    assert "pop.js" not in sup.get("/telephony/queue").get_data(as_text=True)
    assert sup.get("/telephony/pop").status_code == 403
