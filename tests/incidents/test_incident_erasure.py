"""Erasure and incidents (issue 13 re-audit M3): a call attached to an incident stops naming its caller,
and an erased citizen's appeal page no longer shows its incident, whose houses say where they lived."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from crm.db import db
from tests.factories import AppealFactory, CitizenFactory


def test_erasure_clears_the_caller_of_attached_calls_and_hides_the_incident_of_the_appeal(ctx, make_user, login):
    from crm.buildings.services import import_csv
    from crm.incidents import services as incidents
    from crm.incidents.models import IncidentCall
    from crm.security.shredding import erase_citizen

    import_csv("address\n\"г. Москва, ул. Ленина, д. 7\"\n".encode())
    op, sup = make_user("operator"), make_user("supervisor")
    incident = incidents.create(sup, addresses=["Ленина 7"], topic="hot_water", text="Авария на Ленина 7, ГВС к вечеру",
                                starts_at=datetime.now(timezone.utc) - timedelta(hours=1))
    caller, other = CitizenFactory(full_name="Стёртов Иван"), CitizenFactory(full_name="Оставлев Пётр")
    incidents.attach_call(op, incident.id, citizen_id=caller.id)
    incidents.attach_call(op, incident.id, citizen_id=other.id)
    appeal = AppealFactory(citizen=caller, operator=op)
    incidents.link_appeal(incident.id, appeal.id)
    db.session.commit()
    page = login(sup).get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert "Авария на Ленина 7" in page

    erase_citizen(caller.id, "отзыв согласия, 152-ФЗ ст. 9 ч. 2", actor=sup)
    db.session.expire_all()
    callers = db.session.execute(sa.select(IncidentCall.citizen_id).where(IncidentCall.incident_id == incident.id)
                                 ).scalars().all()
    assert sorted(callers, key=str) == sorted([None, other.id], key=str)  # still counted, no longer named
    assert incidents.export_for_citizen(caller.id) == []
    page = login(sup).get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert "Авария на Ленина 7" not in page
