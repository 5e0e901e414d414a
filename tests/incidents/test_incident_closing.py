"""Closing an incident (issue 15, point 1): the appeals linked to it are resolved with the closing text
as the comment for the citizen, and the status notification reaches every linked citizen who consented
to notifications — and nobody else: not a citizen who did not consent, not a neighbour with an
unlinked appeal, not a caller only attached to the incident, not an appeal already closed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from crm.db import db
from tests.factories import AppealFactory, CitizenFactory


@pytest.fixture()
def work(run_worker):
    def run():
        db.session.commit()
        run_worker()
        db.session.expire_all()
    return run


def test_closing_resolves_the_linked_appeals_and_notifies_exactly_the_consenting_citizens(
        ctx, client, make_user, api_token, work, sms_inbox):
    from crm.appeals import services as appeals
    from crm.buildings.services import find, import_csv
    from crm.consent import services as consent
    from crm.consent import sms
    from crm.incidents import services as incidents

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n".encode())
    house = find("г. Москва, ул. Ленина, д. 5")
    op, sup = make_user("operator"), make_user("supervisor")
    incident = incidents.create(sup, addresses=["Ленина 5"], topic="hot_water", text="Авария, ГВС к вечеру",
                                starts_at=datetime.now(timezone.utc) - timedelta(hours=1))
    people = {name: CitizenFactory(full_name=f"{name} Иван", phone=f"8 916 700-40-{i:02d}")
              for i, name in enumerate(("Агеев", "Бобров", "Волков", "Гусев", "Дронов", "Ершов"), start=1)}
    for name in ("Агеев", "Бобров", "Гусев", "Дронов", "Ершов"):  # Волков did not consent
        consent.record(people[name], "sms_notifications", channel="call", operator_id=op.id)
    consent.record(people["Волков"], "sms_notifications", channel="call", operator_id=op.id, given=False)

    def register(name, **extra):
        return appeals.register_appeal(op, citizen_id=people[name].id, category="emergency", topic="hot_water",
                                       description="Нет горячей воды", channel="phone", building_id=house.id,
                                       **extra).appeal
    a = register("Агеев", incident_id=incident.id)                     # «Принято»
    b = register("Бобров", incident_id=incident.id)
    appeals.transition(b, "escalated", user=op)                         # «Передано исполнителю»
    c = register("Волков", incident_id=incident.id)                     # linked, no consent
    d = register("Гусев")                                               # same house, not linked
    e = register("Ершов", incident_id=incident.id)
    appeals.transition(e, "consulted", user=op)                         # answered on the call: closed already
    incidents.attach_call(op, incident.id, citizen_id=people["Дронов"].id)  # a call, no appeal
    work()
    before = {m.id for m in sms.outbox()}
    delivered_before = len(sms_inbox)

    resp = client.post(f"/api/v1/incidents/{incident.id}/close", headers=api_token(sup),
                       json={"text": "Горячую воду дали в 17:40"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["appeals_count"] == 4 and resp.get_json()["calls_count"] == 1
    work()

    assert [appeals.get(x.id).status for x in (a, b, c, d, e)] == ["resolved", "resolved", "resolved", "received",
                                                                  "consulted"]
    for appeal in (a, b, c):
        told = [h for h in appeals.history(appeals.get(appeal.id)) if h["visibility"] == "citizen"]
        assert [(h["to"], h["comment"]) for h in told] == [("resolved", "Горячую воду дали в 17:40")]
    new = [m for m in sms.outbox() if m.id not in before]
    assert sorted(m.citizen_id for m in new) == sorted([people["Агеев"].id, people["Бобров"].id])
    assert all(m.kind == "status" for m in new)
    assert sorted(m.to for m in sms_inbox[delivered_before:]) == sorted(
        [people["Агеев"].phone, people["Бобров"].phone])


def test_a_failure_while_resolving_leaves_the_incident_open(ctx, make_user, monkeypatch):
    """The closing and the resolutions are one transaction: when resolving fails, nothing is closed."""
    from crm.appeals import services as appeals
    from crm.buildings.services import import_csv
    from crm.incidents import services as incidents

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n".encode())
    op, sup = make_user("operator"), make_user("supervisor")
    incident = incidents.create(sup, addresses=["Ленина 5"], topic="gas", text="Утечка газа, газ отключён",
                                starts_at=datetime.now(timezone.utc) - timedelta(hours=1))
    appeal = appeals.register_appeal(op, citizen_id=CitizenFactory().id, category="emergency", topic="gas",
                                     description="Нет газа", channel="phone", incident_id=incident.id).appeal

    def broken(*args, **kwargs):
        raise RuntimeError("resolution failed")
    monkeypatch.setattr(appeals, "_apply", broken)
    with pytest.raises(RuntimeError):
        incidents.close(sup, incident.id, text="Газ дали")
    db.session.expire_all()
    assert incidents.get(incident.id).closed_at is None
    assert appeals.get(appeal.id).status == "received"
