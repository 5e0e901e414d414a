"""Surge detection (issue 15, point 1): CRM_SURGE_APPEALS appeals on one house and topic within
CRM_SURGE_WINDOW_MIN minutes propose an incident to the supervisors — once per surge, not once per
appeal; a neighbouring house or another topic does not count; an open incident stops proposals."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.clients import SharedContextClient
from tests.factories import CitizenFactory


@pytest.fixture()
def houses(ctx):
    from crm.buildings.services import find, import_csv

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 7\"\n".encode())
    return find("г. Москва, ул. Ленина, д. 5"), find("г. Москва, ул. Ленина, д. 7")


@pytest.fixture()
def proposed():
    from crm import hooks

    seen = []
    spy = lambda **kw: seen.append(kw)  # noqa: E731
    hooks.subscribe("incident.proposed", spy)
    yield seen
    hooks.unsubscribe("incident.proposed", spy)


def _appeal(op, house, topic="hot_water"):
    from crm.appeals import services as appeals

    return appeals.register_appeal(op, citizen_id=CitizenFactory().id, category="emergency", topic=topic,
                                   description="Нет воды", channel="phone", building_id=house.id).appeal


def test_a_surge_proposes_one_incident(ctx, make_user, houses, proposed):
    from crm.incidents import surge

    five, seven = houses
    op = make_user("operator")
    assert ctx.config["CRM_SURGE_APPEALS"] == 3 and ctx.config["CRM_SURGE_WINDOW_MIN"] == 60
    _appeal(op, five)
    _appeal(op, five)
    _appeal(op, seven)               # the neighbour's house does not count
    _appeal(op, five, topic="lift")  # nor another service
    assert surge.pending() == [] and proposed == []
    _appeal(op, five)                # the third on house 5 and hot water: the surge
    for _ in range(3):
        _appeal(op, five)            # the same surge: no new proposal
    pending = surge.pending()
    assert [(p.building_id, p.topic, p.appeals_count) for p in pending] == [(five.id, "hot_water", 6)]
    assert [(p["building_id"], p["topic"]) for p in proposed] == [(five.id, "hot_water")]
    supervisor = SharedContextClient(ctx, make_user("supervisor"))
    page = supervisor.get("/incidents").get_data(as_text=True)
    assert "Предложения: всплеск обращений" in page and "г. Москва, ул. Ленина, д. 5" in page
    # and one in-app notification of the supervisors (crm.dispatch)
    page = supervisor.get("/notifications").get_data(as_text=True)
    assert page.count('data-kind="incident_proposed"') == 1
    assert "Всплеск обращений: 3 по теме «Горячее водоснабжение (ГВС)», дом г. Москва, ул. Ленина, д. 5" in page


def test_a_dismissed_surge_is_proposed_again_only_for_a_new_surge(ctx, make_user, houses, proposed):
    from crm.incidents import surge

    five, _ = houses
    op, sup = make_user("operator"), make_user("supervisor")
    for _ in range(3):
        _appeal(op, five)
    proposal = surge.pending()[0]
    surge.decide(sup, proposal.id, accept=False)
    _appeal(op, five)
    _appeal(op, five)
    assert surge.pending() == []     # two after the decision: not a surge yet
    _appeal(op, five)
    assert len(surge.pending()) == 1 and len(proposed) == 2


def test_an_accepted_proposal_becomes_an_incident_and_stops_proposals(ctx, make_user, houses, proposed):
    from crm.incidents import services as incidents
    from crm.incidents import surge

    five, _ = houses
    op, sup = make_user("operator"), make_user("supervisor")
    for _ in range(3):
        _appeal(op, five)
    client = SharedContextClient(ctx, sup)
    proposal = surge.pending()[0]
    resp = client.post(f"/incidents/proposals/{proposal.id}", data={"decision": "accept", "kind": "emergency",
                                                                    "text": "Нет ГВС в доме, выясняем причину"})
    assert resp.status_code == 302
    incident = incidents.get(surge.get(proposal.id).incident_id)
    assert incidents.covers_building(incident, five.id) and incident.topic == "hot_water"
    assert incident.starts_at == proposal.first_at
    assert incidents.counts(incident.id)["appeals_count"] == 3  # the surge's appeals are the incident's
    for _ in range(4):
        _appeal(op, five)
    assert surge.pending() == [] and len(proposed) == 1
    assert client.post(f"/incidents/proposals/{proposal.id}", data={"decision": "dismiss"}).status_code == 302
    assert surge.get(proposal.id).status == "accepted"  # decided once


def test_old_appeals_are_not_a_surge(ctx, make_user, houses):
    from crm.incidents import surge

    five, _ = houses
    now = datetime.now(timezone.utc)
    assert surge.consider(five.id, "hot_water", [now - timedelta(hours=3), now - timedelta(hours=2), now]) is None
    assert surge.consider(five.id, "hot_water", [now - timedelta(minutes=50), now - timedelta(minutes=5), now]) \
        is not None
