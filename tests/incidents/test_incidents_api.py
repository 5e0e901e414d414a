"""Incidents over the API (issue 15, point 1; design.md "Added interfaces"): register one on houses of
the register, find the active ones for a caller's address (and not for a neighbour's), link an appeal
with `incident_id`, read `appeals_count` and `calls_count`; bad input answered with clear errors and
nothing written."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.factories import CitizenFactory

ADDRESSES = ("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 7\"\n"
             "\"г. Москва, ул. Ленина, д. 15\"\n\"г. Москва, ул. Ленинская, д. 5\"\n")


@pytest.fixture()
def houses(ctx):
    from crm.buildings.services import find, import_csv

    import_csv(ADDRESSES.encode())
    return {n: find(f"г. Москва, ул. Ленина, д. {n}") for n in ("5", "7", "15")}


def _iso(delta_h: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=delta_h)).isoformat()


def _count(model) -> int:
    from crm.db import db
    import sqlalchemy as sa

    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_an_incident_is_registered_and_shown_for_its_houses_only(ctx, client, make_user, api_token, houses):
    sup = api_token(make_user("supervisor"))
    op = api_token(make_user("operator"))
    resp = client.post("/api/v1/incidents", headers=sup, json={
        "addresses": ["Ленина 5", "г. Москва, улица Ленина, дом 7"], "topic": "hot_water",
        "starts_at": _iso(-1), "ends_at": _iso(5), "text": "Авария на теплотрассе, ГВС дадут к 18:00"})
    assert resp.status_code == 201, resp.get_json()
    incident_id = resp.get_json()["id"]
    assert resp.headers["Location"].endswith(f"/incidents/{incident_id}")
    for spelling in ("ул. Ленина, д. 5", "Москва, Ленина 7, кв. 12"):
        items = client.get("/api/v1/incidents/active", query_string={"address": spelling}, headers=op).get_json()["items"]
        assert [(i["id"], i["text"]) for i in items] == [(incident_id, "Авария на теплотрассе, ГВС дадут к 18:00")]
        assert items[0]["status"] == "active"
    # the neighbours: «15» and another street with a «5» are not covered
    for neighbour in ("ул. Ленина, д. 15", "ул. Ленинская, д. 5", "ул. Ленина, д. 9"):
        assert client.get("/api/v1/incidents/active", query_string={"address": neighbour},
                          headers=op).get_json()["items"] == []
    by_id = client.get("/api/v1/incidents/active", query_string={"building_id": houses["5"].id}, headers=op)
    assert [i["id"] for i in by_id.get_json()["items"]] == [incident_id]
    card = client.get(f"/api/v1/incidents/{incident_id}", headers=op).get_json()
    assert card["appeals_count"] == 0 and card["calls_count"] == 0
    assert [b["address"] for b in card["buildings"]] == ["г. Москва, ул. Ленина, д. 5", "г. Москва, ул. Ленина, д. 7"]
    assert card["recalculation"]["applies"] is True and card["recalculation"]["required"] is False


def test_a_street_incident_covers_every_house_of_the_street_and_no_other(ctx, client, make_user, api_token, houses):
    sup = api_token(make_user("supervisor"))
    resp = client.post("/api/v1/incidents", headers=sup, json={
        "street": "ул. Ленина", "topic": "electricity", "kind": "planned", "starts_at": _iso(2),
        "text": "Плановые работы на подстанции"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["street"] == "ул. Ленина" and resp.get_json()["status"] == "upcoming"
    # within 24 h of the start: shown, even for a house that is not in the register
    for address in ("Ленина 15", "г. Москва, ул. Ленина, д. 99"):
        items = client.get("/api/v1/incidents/active", query_string={"address": address}, headers=sup).get_json()["items"]
        assert [i["id"] for i in items] == [resp.get_json()["id"]] and items[0]["status"] == "upcoming"
    assert client.get("/api/v1/incidents/active", query_string={"address": "ул. Ленинская, д. 5"},
                      headers=sup).get_json()["items"] == []


def test_bad_input_is_refused_and_nothing_is_written(ctx, client, make_user, api_token, houses):
    from crm.incidents.models import Incident

    sup = api_token(make_user("supervisor"))
    good = {"addresses": ["Ленина 5"], "topic": "cold_water", "starts_at": _iso(-1), "text": "Нет ХВС"}
    resp = client.post("/api/v1/incidents", headers=sup, json={**good, "addresses": ["Ленина 5", "ул. Мира, д. 1"]})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "unknown_address" and resp.get_json()["addresses"] == ["ул. Мира, д. 1"]
    assert "ул. Мира, д. 1" in resp.get_json()["error"]["message"]
    cases = [({"topic": "weather"}, "invalid_topic"), ({"kind": "maybe"}, "invalid_kind"),
             ({"text": " "}, "invalid_text"), ({"ends_at": _iso(-2)}, "invalid_ends_at"),
             ({"addresses": []}, "invalid_addresses"), ({"street": "ул. Ленина"}, "invalid_addresses"),
             ({"starts_at": "вчера"}, "invalid_starts_at")]
    for change, code in cases:
        resp = client.post("/api/v1/incidents", headers=sup, json={**good, **change})
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == code, (change, resp.get_json())
    missing = client.post("/api/v1/incidents", headers=sup, json={k: v for k, v in good.items() if k != "text"})
    assert missing.status_code == 400 and missing.get_json()["error"]["code"] == "invalid_text"
    assert client.get("/api/v1/incidents/active", headers=sup).get_json()["error"]["code"] == "invalid_address"
    assert client.get("/api/v1/incidents/424242", headers=sup).status_code == 404
    assert _count(Incident) == 0
    executor_token = api_token(make_user("dpo"))
    assert client.post("/api/v1/incidents", headers=executor_token, json=good).status_code == 403


def test_an_appeal_is_linked_with_incident_id_and_counted(ctx, client, make_user, api_token, houses):
    sup, op_user = api_token(make_user("supervisor")), make_user("operator")
    op = api_token(op_user)
    incident_id = client.post("/api/v1/incidents", headers=sup, json={
        "addresses": ["Ленина 5"], "topic": "hot_water", "starts_at": _iso(-1), "text": "Нет ГВС до вечера"}
    ).get_json()["id"]
    citizen = CitizenFactory()
    body = {"citizen_id": citizen.id, "category": "emergency", "topic": "hot_water", "description": "Нет горячей воды",
            "building_id": houses["5"].id}
    resp = client.post("/api/v1/appeals", headers=op, json={**body, "incident_id": incident_id})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["incident_id"] == incident_id
    appeal_id = resp.get_json()["id"]
    assert client.get(f"/api/v1/appeals/{appeal_id}", headers=op).get_json()["incident_id"] == incident_id
    bad = client.post("/api/v1/appeals", headers=op, json={**body, "incident_id": 999999})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_incident_id"
    # a call attached instead of an appeal
    other = CitizenFactory()
    resp = client.post(f"/api/v1/incidents/{incident_id}/calls", headers=op, json={"citizen_id": other.id})
    assert resp.status_code == 201 and resp.get_json()["calls_count"] == 1
    card = client.get(f"/api/v1/incidents/{incident_id}", headers=op).get_json()
    assert (card["appeals_count"], card["calls_count"]) == (1, 1)
    # closed: nothing more is linked
    assert client.post(f"/api/v1/incidents/{incident_id}/close", headers=op, json={"text": "ГВС дали"}).status_code == 403
    closed = client.post(f"/api/v1/incidents/{incident_id}/close", headers=sup, json={"text": "ГВС дали"})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    again = client.post(f"/api/v1/incidents/{incident_id}/close", headers=sup, json={"text": "ГВС дали"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "incident_closed"
    late = client.post("/api/v1/appeals", headers=op, json={**body, "incident_id": incident_id})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "incident_closed"
    assert client.post(f"/api/v1/incidents/{incident_id}/calls", headers=op,
                       json={"citizen_id": other.id}).status_code == 409
    assert client.get("/api/v1/incidents/active", query_string={"address": "Ленина 5"},
                      headers=op).get_json()["items"] == []


def test_the_openapi_document_describes_the_incidents(ctx, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ("/incidents", "/incidents/active", "/incidents/{incident_id}", "/incidents/{incident_id}/close",
                 "/incidents/{incident_id}/calls"):
        assert path in doc["paths"], path
    assert "appeals_count" in doc["components"]["schemas"]["Incident"]["allOf"][1]["properties"] \
        or "appeals_count" in str(doc["components"]["schemas"]["Incident"])
    assert "incident_id" in str(doc["components"]["schemas"]["AppealCreate"])


def test_incident_topics_are_appeal_topics():
    from crm.appeals.catalog import TOPICS as APPEAL_TOPICS
    from crm.incidents.catalog import PERMITTED, TOPICS

    assert set(TOPICS) <= set(APPEAL_TOPICS)
    assert all(TOPICS[c] == APPEAL_TOPICS[c] for c in TOPICS)
    assert set(PERMITTED) <= set(TOPICS)
