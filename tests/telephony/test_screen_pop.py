"""The screen pop (issue 16, point 2): the PBX's ``answer`` names an operator, and that operator's pages —
only theirs — show the caller: the citizen found through the phone blind index, their open appeals,
the incident at their house, their consents, or «Новый абонент»; each display is logged; appeals the
operator registers during the call are linked to it; the hang-up clears the pop."""
from __future__ import annotations

import html as htmllib
import re
import uuid
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
    # the intake: the number is never in a URL, only the record's id and the signed call reference
    assert re.search(rf'href="/operator\?call={record_id}&amp;call_ref=[\w.-]+"', html)
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
    assert f'href="/citizens/{citizen.id}/appeals/new?call_ref=' in html  # Enter: this citizen's intake
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


# --- the intake opened from the pop carries the call (issue 16, gap 2) -------------------------------------

def _intake_link(web) -> str:
    """The pop card's «Новое обращение» link (as the browser follows it)."""
    card = web.get("/telephony/pop/card").get_data(as_text=True)
    return htmllib.unescape(re.search(r'id="pop-intake" href="([^"]+)"', card).group(1))


def _hidden(page: str, name: str) -> str:
    return htmllib.unescape(re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page).group(1))


def _send_appeal(web, citizen_id: str, call_ref: str | None, *, key: str | None = None, channel: str = "phone"):
    data = {"submission_key": key or uuid.uuid4().hex, "category": "routine", "topic": "heating",
            "channel": channel, "description": "Холодные батареи в квартире"}
    if call_ref is not None:
        data["call_ref"] = call_ref
    resp = web.post(f"/citizens/{citizen_id}/appeals/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return resp.headers["Location"].rsplit("/", 1)[-1]


def _links_of(appeal_id: str) -> list[str]:
    from crm.db import db
    from crm.telephony.models import TelephonyCallAppeal

    db.session.expire_all()
    return list(db.session.execute(sa.select(TelephonyCallAppeal.telephony_call_id).where(
        TelephonyCallAppeal.appeal_id == appeal_id)).scalars())


def test_an_appeal_from_the_pops_intake_sent_after_the_hangup_is_linked_to_that_call(ctx, client, pbx, operators,
                                                                                     as_role):
    """The known caller's intake is opened from the pop during the call; the call ends and the operator
    already answers the next one when the form is sent: the appeal is linked to the call the form came
    from (not to the current one). Sent twice (a double click: the same submission key): one appeal, one
    link. Without the reference, the same late appeal is linked to the operator's current call, as before."""
    from crm.telephony import services

    (a, web_a), _ = operators
    _, sup = as_role("supervisor")
    citizen = CitizenFactory(phone=PHONE)
    for e in (ev("newCall", "ref-1", 200), ev("answer", "ref-1", 190, user="pop_a")):
        assert pbx(e).status_code == 202
    link = _intake_link(web_a)
    assert link.startswith(f"/citizens/{citizen.id}/appeals/new?call_ref=")
    page = web_a.get(link).get_data(as_text=True)
    ref = _hidden(page, "call_ref")
    assert ref and ref in link
    pbx(ev("hangup", "ref-1", 120, cause="normalClearing"))  # the call is over, the form still open
    for e in (ev("newCall", "ref-2", 100), ev("answer", "ref-2", 95, user="pop_a")):
        pbx(e)  # ... and the operator is on the next call
    key = uuid.uuid4().hex
    appeal_id = _send_appeal(web_a, citizen.id, ref, key=key)
    assert record(client, sup, "ref-1")["appeal_ids"] == [appeal_id]
    assert record(client, sup, "ref-2")["appeal_ids"] == []
    assert _send_appeal(web_a, citizen.id, ref, key=key) == appeal_id  # the double click: a replay
    assert _links_of(appeal_id) == [services.get("ref-1").id]
    # the hook fired again for the same appeal (a retried job, say) links nothing more
    from crm import hooks
    hooks.fire("appeal.registered", appeal_id=appeal_id, call_ref=ref)
    assert _links_of(appeal_id) == [services.get("ref-1").id]
    # a form opened elsewhere (no reference) during the next call: linked to the current call, as before
    other = _send_appeal(web_a, citizen.id, None)
    assert record(client, sup, "ref-2")["appeal_ids"] == [other]
    assert record(client, sup, "ref-1")["appeal_ids"] == [appeal_id]


def test_a_new_callers_intake_keeps_the_reference_through_registration(ctx, client, pbx, operators, as_role):
    """A new caller: the pop's intake is the operator page (search prefilled); the reference rides in the
    new-citizen form, then on to the appeal form; the appeal sent after the hang-up is linked."""
    from crm.telephony import services

    (a, web_a), _ = operators
    _, sup = as_role("supervisor")
    for e in (ev("newCall", "ref-new", 100), ev("answer", "ref-new", 90, user="pop_a")):
        pbx(e)
    link = _intake_link(web_a)
    assert link.startswith(f"/operator?call={services.get('ref-new').id}&call_ref=")
    page = web_a.get(link).get_data(as_text=True)
    ref = _hidden(page, "call_ref")
    assert ref and page.count(f'value="{ref}"') >= 2  # the search form and the new-citizen form
    created = web_a.post("/citizens", data={"submission_key": uuid.uuid4().hex, "full_name": "Новикова Ольга",
                                            "phone": PHONE, "call_ref": ref})
    assert created.status_code == 302 and "call_ref=" in created.headers["Location"]
    form_page = web_a.get(created.headers["Location"]).get_data(as_text=True)
    assert _hidden(form_page, "call_ref") == ref
    citizen_id = created.headers["Location"].split("/")[2]
    pbx(ev("hangup", "ref-new", 30, cause="normalClearing"))
    appeal_id = _send_appeal(web_a, citizen_id, _hidden(form_page, "call_ref"))
    assert record(client, sup, "ref-new")["appeal_ids"] == [appeal_id]


def test_a_forged_foreign_or_stale_reference_links_nothing(ctx, client, pbx, operators, as_role, monkeypatch):
    """References that must not link: altered, signed with another key, a colleague's reference sent by
    another operator, a validly signed one for an operator who never answered the call, an appeal through
    another channel, and a call that ended longer ago than the wrap-up (here 60 s; then 30 min: linked)."""
    from itsdangerous import URLSafeTimedSerializer

    from crm.telephony import pop, services

    (a, web_a), (b, web_b) = operators
    _, sup = as_role("supervisor")
    citizen = CitizenFactory(phone=PHONE)
    for e in (ev("newCall", "ref-x", 250), ev("answer", "ref-x", 240, user="pop_a")):
        pbx(e)
    ref = _hidden(web_a.get(_intake_link(web_a)).get_data(as_text=True), "call_ref")
    call = services.get("ref-x")
    pbx(ev("hangup", "ref-x", 120, cause="normalClearing"))
    altered = ref[:-3] + ("AAA" if not ref.endswith("AAA") else "BBB")
    other_key = URLSafeTimedSerializer("not-the-secret-key", salt="crm.telephony.pop intake call").dumps(
        {"c": call.id, "u": a.id})
    refused = [_send_appeal(web_a, citizen.id, altered), _send_appeal(web_a, citizen.id, other_key),
               _send_appeal(web_a, citizen.id, "garbage"),
               _send_appeal(web_b, citizen.id, ref),  # a's reference in b's form
               _send_appeal(web_b, citizen.id, pop.intake_reference(call, b)),  # b never answered it
               _send_appeal(web_a, citizen.id, ref, channel="letter")]
    assert record(client, sup, "ref-x")["appeal_ids"] == []
    assert all(_links_of(x) == [] for x in refused)
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_WRAPUP_S", 60)  # the call ended 120 s ago
    _send_appeal(web_a, citizen.id, ref)
    assert record(client, sup, "ref-x")["appeal_ids"] == []
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_WRAPUP_S", 1800)
    linked = _send_appeal(web_a, citizen.id, ref)
    assert record(client, sup, "ref-x")["appeal_ids"] == [linked]


def test_the_operator_who_had_the_call_before_a_transfer_may_link_it(ctx, client, pbx, operators, as_role):
    """a answers and opens the intake, transfers the call to b, and sends the form after the hang-up: a
    answered the call, so the appeal is linked."""
    (a, web_a), (b, _) = operators
    _, sup = as_role("supervisor")
    citizen = CitizenFactory(phone=PHONE)
    for e in (ev("newCall", "ref-t", 200), ev("answer", "ref-t", 190, user="pop_a")):
        pbx(e)
    ref = _hidden(web_a.get(_intake_link(web_a)).get_data(as_text=True), "call_ref")
    for e in (ev("hangup", "ref-t", 150, cause="forwarded"), ev("answer", "ref-t", 148, user="pop_b"),
              ev("hangup", "ref-t", 60, cause="normalClearing")):
        pbx(e)
    linked = _send_appeal(web_a, citizen.id, ref)
    assert record(client, sup, "ref-t")["appeal_ids"] == [linked]
