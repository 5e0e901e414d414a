"""The intake page and incidents (issue 15, point 1): the caller's house shows its active incident and
the text to read before the operator types — not a neighbouring house's; the call is attached to the
incident (counted, no appeal opened), or the appeal is opened linked to it."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.clients import SharedContextClient
from tests.factories import CitizenFactory


@pytest.fixture()
def outage(ctx, make_user):
    from crm.buildings.services import find, import_csv
    from crm.incidents import services as incidents

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 7\"\n".encode())
    five, seven = find("г. Москва, ул. Ленина, д. 5"), find("г. Москва, ул. Ленина, д. 7")
    incident = incidents.create(make_user("supervisor"), addresses=["Ленина 5"], topic="hot_water",
                                text="Авария на сетях РСО, горячую воду дадут к 20:00",
                                starts_at=datetime.now(timezone.utc) - timedelta(hours=1))
    return incident, five, seven


def _form(**over) -> dict:
    data = {"submission_key": uuid.uuid4().hex, "category": "emergency", "topic": "hot_water", "channel": "phone",
            "description": "Нет горячей воды", "consent_sms": "unknown", "consent_recording": "unknown"}
    data.update(over)
    return data


def test_the_form_shows_the_incident_of_the_callers_house_and_not_a_neighbours(ctx, make_user, outage):
    incident, five, seven = outage
    op = SharedContextClient(ctx, make_user("operator"))
    at_five = CitizenFactory(address="г. Москва, ул. Ленина, д. 5, кв. 3")
    at_seven = CitizenFactory(address="ул. Ленина 7, кв. 9")
    page = op.get(f"/citizens/{at_five.id}/appeals/new").get_data(as_text=True)
    assert "Авария на сетях РСО, горячую воду дадут к 20:00" in page
    banner = page.index('id="incident-banner"')
    assert banner < page.index('name="description"') and banner < page.index('id="topic-filter"')
    page = op.get(f"/citizens/{at_seven.id}/appeals/new").get_data(as_text=True)
    assert "Авария на сетях РСО" not in page
    # the script's question when a house is picked
    assert [i["id"] for i in op.get(f"/citizens/{at_seven.id}/incidents/active?building_id={five.id}")
            .get_json()["items"]] == [incident.id]
    assert op.get(f"/citizens/{at_seven.id}/incidents/active?building_id={seven.id}").get_json()["items"] == []


def test_the_call_is_attached_to_the_incident_instead_of_an_appeal(ctx, make_user, outage):
    from crm.appeals import services as appeals
    from crm.consent import services as consent
    from crm.incidents import services as incidents

    incident, five, _ = outage
    op = SharedContextClient(ctx, make_user("operator"))
    callers = [CitizenFactory(), CitizenFactory()]
    for caller in callers:
        resp = op.post(f"/citizens/{caller.id}/incidents/{incident.id}/attach",
                       data=_form(building_id=str(five.id), consent_sms="yes"))
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/citizens/{caller.id}")
        assert appeals.for_citizen(caller.id) == []  # no appeal opened
    assert incidents.counts(incident.id) == {"appeals_count": 0, "calls_count": 2}
    assert consent.may_notify(callers[0].id, "sms_notifications")  # the answer given on the call is kept
    # the citizen's access export names the calls counted on incidents; retention sees the contact
    from crm import hooks

    exported = {k: v for part in hooks.fire("citizen.export", citizen_id=callers[0].id, purpose="data_subject_request",
                                             erased=False) for k, v in (part or {}).items()}
    assert [(c["incident_id"], c["topic"]) for c in exported["incident_calls"]] == [(incident.id, "hot_water")]
    from crm.db import db

    contacts = [row for stmt in hooks.fire("retention.activity") for s in stmt for row in db.session.execute(s)]
    assert callers[1].id in {row[0] for row in contacts}
    # or the appeal is opened linked to the incident
    resp = op.post(f"/citizens/{callers[0].id}/appeals/new", data=_form(building_id=str(five.id),
                                                                        incident_id=str(incident.id)))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1500]
    appeal = appeals.get(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert incidents.incident_of_appeal(appeal.id) == incident.id
    page = op.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert 'id="incident-panel"' in page and "Авария на сетях РСО, горячую воду дадут к 20:00" in page
    assert incidents.counts(incident.id) == {"appeals_count": 1, "calls_count": 2}
    # a closed incident takes no more calls: the operator is told, nothing counted
    incidents.close(make_user("supervisor"), incident.id, text="ГВС дали")
    resp = op.post(f"/citizens/{callers[1].id}/incidents/{incident.id}/attach", data=_form())
    assert resp.status_code == 302 and "/appeals/new" in resp.headers["Location"]
    assert incidents.counts(incident.id)["calls_count"] == 2
