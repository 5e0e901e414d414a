"""Repeats before saving (issue 14, point 6): the open or recent appeals on the same house and topic,
or of the same citizen and topic, offered while the operator types (the service, ``POST
/api/v1/appeals/repeat-candidates`` and the intake page's endpoint); houses written differently are
one house of the register; linking the new appeal as a repeat (``repeat_of_id``) or attaching the
call to the existing appeal instead; the telephony's call of a known caller attached at intake;
the repeat rate and first-contact resolution over a period."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.api.test_api import log_entries
from tests.appeals.test_appeal_deadlines import move, now
from tests.clients import SharedContextClient
from tests.core.test_pages import clean_side_effects  # noqa: F401  (fixture)
from tests.factories import AppealFactory, CitizenFactory
from tests.wavs import tone_wav


@pytest.fixture()
def operator(make_user):
    return make_user("operator")


@pytest.fixture()
def houses(ctx):
    from crm.buildings.services import find, import_csv

    import_csv("address\n\"г. Тверь, ул. Ленина, д. 5\"\n\"г. Тверь, ул. Ленина, д. 15\"\n".encode())
    return find("Тверь ул Ленина 5"), find("Тверь ул Ленина 15")


@pytest.fixture()
def api(ctx, api_token, operator):
    client, headers = SharedContextClient(ctx), api_token(operator)

    class Api:
        def post(self, url, json):
            return client.post(url, json=json, headers=headers)
    return Api()


def ids(found) -> set[str]:
    return {c.appeal.id for c in found}


def test_candidates_by_house_written_differently_and_by_citizen(ctx, operator, houses):
    from crm.appeals import repeats

    five, fifteen = houses
    neighbour = CitizenFactory(address="г. Тверь, ул. Ленина, д. 5, кв. 3")
    caller = CitizenFactory(address="ТВЕРЬ, улица Ленина, дом 5")
    on_house = AppealFactory(citizen=neighbour, operator=operator, topic="heating", building_id=five.id)
    other_topic = AppealFactory(citizen=neighbour, operator=operator, topic="lift", building_id=five.id)
    other_house = AppealFactory(citizen=CitizenFactory(), operator=operator, topic="heating", building_id=fifteen.id)
    own = AppealFactory(citizen=caller, operator=operator, topic="heating")
    old_open = move(AppealFactory(citizen=neighbour, operator=operator, topic="heating", building_id=five.id),
                    created_at=now() - timedelta(days=40), status="in_progress")
    old_closed = move(AppealFactory(citizen=caller, operator=operator, topic="heating"),
                      created_at=now() - timedelta(days=40), status="closed")
    rejected = move(AppealFactory(citizen=caller, operator=operator, topic="heating"), status="rejected")

    # the house as typed in yet another spelling: the register's house; open ones first
    found = repeats.candidates(operator, citizen_id=caller.id, topic="heating", address="Тверь, Ленина ул., д.5")
    assert ids(found) == {on_house.id, own.id, old_open.id}
    assert [c.open for c in found] == [True, True, True]
    by_id = {c.appeal.id: c for c in found}
    assert by_id[on_house.id].same_building and not by_id[on_house.id].same_citizen
    assert by_id[own.id].same_citizen
    # picked from the register: the same
    assert ids(repeats.candidates(operator, citizen_id=caller.id, topic="heating", building_id=five.id)) == ids(found)
    # no house given: the citizen's own appeals only (the neighbour wrote the address differently,
    # so the citizens' blind-indexed addresses differ; the register is what makes them one house)
    assert ids(repeats.candidates(operator, citizen_id=caller.id, topic="heating")) == {own.id}
    # a closed appeal counts while it is recent: the window is configurable
    closed = move(AppealFactory(citizen=caller, operator=operator, topic="heating"), status="closed")
    assert closed.id in ids(repeats.candidates(operator, citizen_id=caller.id, topic="heating"))
    ctx.config["CRM_REPEAT_WINDOW_DAYS"] = 60
    try:
        assert old_closed.id in ids(repeats.candidates(operator, citizen_id=caller.id, topic="heating"))
    finally:
        ctx.config["CRM_REPEAT_WINDOW_DAYS"] = 30
    assert not ids(found) & {other_topic.id, other_house.id, old_closed.id, rejected.id}


def test_candidates_api_and_log(ctx, api, operator, houses):
    five, _ = houses
    caller = CitizenFactory()
    earlier = AppealFactory(citizen=CitizenFactory(), operator=operator, topic="hot_water", building_id=five.id)
    resp = api.post("/api/v1/appeals/repeat-candidates",
                    {"citizen_id": caller.id, "topic": "hot_water", "address": "г.Тверь,ул.Ленина,д.5"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert [i["id"] for i in body["items"]] == [earlier.id] and body["window_days"] == 30
    assert body["items"][0]["same_building"] and not body["items"][0]["same_citizen"]
    entry = log_entries(action="appeal.search")[-1]
    assert entry.citizen_id == caller.id and entry.detail == "repeat_candidates;building"
    assert api.post("/api/v1/appeals/repeat-candidates", {"citizen_id": caller.id, "topic": "nonsense"}).status_code == 400
    assert api.post("/api/v1/appeals/repeat-candidates", {"citizen_id": "nobody", "topic": "lift"}).status_code == 404


def test_the_intake_page_asks_by_post(ctx, operator, houses):
    five, _ = houses
    caller = CitizenFactory()
    earlier = AppealFactory(citizen=caller, operator=operator, topic="lift")
    op = SharedContextClient(ctx, operator)
    resp = op.post(f"/citizens/{caller.id}/appeals/repeat-candidates", json={"topic": "lift", "building_id": ""})
    assert resp.status_code == 200
    item = resp.get_json()["items"][0]
    assert item["id"] == earlier.id and item["topic_label"] == "Лифт" and item["url"].endswith(earlier.id)
    page = op.get(f"/citizens/{caller.id}/appeals/new").get_data(as_text=True)
    assert "data-repeat-api" in page and 'id="repeat-candidates"' in page


def test_link_as_repeat_and_refuse_a_mismatch(ctx, api, operator):
    from crm.appeals import services

    caller = CitizenFactory()
    earlier = AppealFactory(citizen=caller, operator=operator, topic="heating")
    later = AppealFactory(citizen=caller, operator=operator, topic="heating")
    body = {"citizen_id": caller.id, "category": "routine", "topic": "heating", "description": "Снова холодно",
            "channel": "phone"}
    # automatic: the latest; linked by the operator: the one chosen
    resp = api.post("/api/v1/appeals", {**body, "repeat_of_id": earlier.id})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert services.get(resp.get_json()["id"]).repeat_of_id == earlier.id != later.id
    before = sa.func.count()
    from crm.appeals.models import Appeal
    from crm.db import db

    n = db.session.execute(sa.select(before).select_from(Appeal)).scalar_one()
    resp = api.post("/api/v1/appeals", {**body, "topic": "lift", "repeat_of_id": earlier.id})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "repeat_of_mismatch"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Appeal)).scalar_one() == n


def test_attach_the_call_to_the_existing_appeal(ctx, operator, houses, clean_side_effects):  # noqa: F811
    from crm.appeals.models import Appeal
    from crm.calls import services as calls
    from crm.db import db

    five, _ = houses
    neighbour, caller = CitizenFactory(), CitizenFactory()
    existing = AppealFactory(citizen=neighbour, operator=operator, topic="roof_leak", building_id=five.id)
    n = db.session.execute(sa.select(sa.func.count()).select_from(Appeal)).scalar_one()
    op = SharedContextClient(ctx, operator)
    resp = op.post(f"/citizens/{caller.id}/appeals/attach", content_type="multipart/form-data", data={
        "attach_to": existing.id, "category": "", "topic": "roof_leak", "description": "",
        "recording": (io.BytesIO(tone_wav()), "Звонок.wav"), "consent_sms": "unknown", "consent_recording": "unknown"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/appeals/{existing.id}")
    assert db.session.execute(sa.select(sa.func.count()).select_from(Appeal)).scalar_one() == n  # none opened
    attached = calls.for_appeal(existing.id)
    assert len(attached) == 1 and attached[0].operator_id == operator.id
    # an appeal long closed is refused, nothing attached
    move(existing, status="closed", created_at=now() - timedelta(days=90))
    resp = op.post(f"/citizens/{caller.id}/appeals/attach", content_type="multipart/form-data", data={
        "attach_to": existing.id, "recording": (io.BytesIO(tone_wav()), "Звонок.wav")})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/citizens/{caller.id}/appeals/new")
    assert len(calls.for_appeal(existing.id)) == 1


def test_the_telephony_call_of_a_known_caller_is_attached_at_intake(ctx, api, operator, api_token,
                                                                   clean_side_effects):  # noqa: F811
    from crm.appeals import services
    from crm.calls import services as calls

    caller = CitizenFactory(full_name="Звонарёв Пётр")
    client = SharedContextClient(ctx)
    resp = client.post("/api/v1/calls", headers=api_token(operator), content_type="multipart/form-data",
                       data={"file": (io.BytesIO(tone_wav()), "pbx-123.wav"), "citizen_id": caller.id})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    call_id = resp.get_json()["id"]
    op = SharedContextClient(ctx, operator)
    card = op.get(f"/citizens/{caller.id}").get_data(as_text=True)
    assert f"call_id={call_id}" in card  # «Новое обращение по этому звонку»
    form = op.get(f"/citizens/{caller.id}/appeals/new").get_data(as_text=True)
    assert f'<option selected value="{call_id}">' in form or f'value="{call_id}" selected' in form
    resp = op.post(f"/citizens/{caller.id}/appeals/new", content_type="multipart/form-data", data={
        "category": "routine", "topic": "heating", "channel": "phone", "description": "Холодные батареи",
        "call_id": call_id, "consent_sms": "unknown", "consent_recording": "unknown"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    appeal = services.get(resp.headers["Location"].rsplit("/", 1)[-1])
    assert [c.id for c in calls.for_appeal(appeal.id)] == [call_id]
    assert calls.unattached_for_citizen(caller.id) == []
    entry = log_entries(action="call.attach")[-1]
    assert (entry.call_id, entry.appeal_id, entry.citizen_id) == (call_id, appeal.id, caller.id)
    # another citizen's call is refused
    other = CitizenFactory()
    with pytest.raises(calls.CallError):
        services.register_appeal(operator, citizen_id=other.id, category="routine", topic="heating",
                                 description="Холодно", channel="phone", call_id=call_id)


def test_repeat_rate_and_first_contact_resolution(ctx, operator):
    from crm.appeals import repeats, services

    start = now() - timedelta(hours=1)
    caller = CitizenFactory()
    first = AppealFactory(citizen=caller, operator=operator, topic="heating")
    AppealFactory(citizen=caller, operator=operator, topic="heating")  # a repeat of the first
    consulted = AppealFactory(citizen=CitizenFactory(), operator=operator, topic="billing", category="consultation")
    services.transition(consulted, "consulted", user_id=operator.id)
    AppealFactory(citizen=CitizenFactory(), operator=operator, topic="lift")
    end = now() + timedelta(hours=1)
    assert repeats.repeat_rate(start, end) == {"appeals": 4, "repeats": 1, "repeat_rate": 0.25}
    assert repeats.first_contact_resolution(start, end) == {"appeals": 4, "resolved_first_contact": 1, "fcr": 0.25}
    # a consultation the citizen calls about again was not resolved at first contact
    AppealFactory(citizen=consulted_citizen(consulted), operator=operator, topic="billing")
    end = now() + timedelta(hours=1)
    assert repeats.first_contact_resolution(start, end)["resolved_first_contact"] == 0
    assert repeats.repeat_rate(now() + timedelta(days=1), now() + timedelta(days=2))["repeat_rate"] is None
    assert first.repeat_of_id is None


def consulted_citizen(appeal):
    from crm.citizens import services as citizens

    return citizens.get(appeal.citizen_id)


def test_attaching_a_call_keeps_the_moment_of_the_consent_answers(ctx, operator, houses, clean_side_effects):  # noqa: F811
    """Issue 13 re-audit M5: the «Добавить звонок к обращению» button dropped the form's «момент ответов
    о согласии» (consent_at), so the consent given on the call lost where in the recording it was said."""
    from crm.consent import services as consent

    five, _ = houses
    caller = CitizenFactory()
    existing = AppealFactory(citizen=caller, operator=operator, topic="roof_leak", building_id=five.id)  # a repeat call
    op = SharedContextClient(ctx, operator)
    resp = op.post(f"/citizens/{caller.id}/appeals/attach", content_type="multipart/form-data", data={
        "attach_to": existing.id, "topic": "roof_leak", "recording": (io.BytesIO(tone_wav()), "Звонок.wav"),
        "consent_sms": "yes", "consent_recording": "unknown", "consent_at": "0:01"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/appeals/{existing.id}"), \
        op.get(resp.headers["Location"]).get_data(as_text=True)[:6000]
    [event] = [e for e in consent.for_citizen(caller.id) if e.purpose_code == "sms_notifications"]
    assert event.evidence_call_id and event.evidence_offset_s == 1.0
    # a malformed moment is refused with the form's message, nothing attached
    resp = op.post(f"/citizens/{caller.id}/appeals/attach", content_type="multipart/form-data", data={
        "attach_to": existing.id, "recording": (io.BytesIO(tone_wav()), "Звонок.wav"),
        "consent_sms": "yes", "consent_at": "вчера"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/citizens/{caller.id}/appeals/new")
