"""«Инциденты», the supervisors' pages: register an incident with the form (houses by address, or a
street), see it in the list, close it with the text for the citizens."""
from __future__ import annotations

from tests.clients import SharedContextClient


def test_a_supervisor_registers_and_closes_an_incident(ctx, make_user):
    from crm.buildings.services import import_csv
    from crm.incidents import services

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n".encode())
    sup = SharedContextClient(ctx, make_user("supervisor"))
    assert "Инциденты" in sup.get("/incidents").get_data(as_text=True)
    form = {"topic": "heating", "kind": "emergency", "scope": "buildings", "addresses": "Ленина 5\nул. Мира, д. 1",
            "starts_at": "2026-12-01T08:00", "text": "Порыв на теплотрассе"}
    resp = sup.post("/incidents/new", data=form)
    assert resp.status_code == 422 and "ул. Мира, д. 1" in resp.get_data(as_text=True)
    assert services.listing() == []
    resp = sup.post("/incidents/new", data={**form, "addresses": "Ленина 5"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1500]
    incident = services.listing()[0]
    assert incident.starts_at.isoformat() == "2026-12-01T05:00:00+00:00"  # 08:00 Moscow time
    page = sup.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "Порыв на теплотрассе" in page and "г. Москва, ул. Ленина, д. 5" in page
    assert "перерасчёт платы" in page  # open since 1 December: far beyond 16 h at a time
    assert sup.post(f"/incidents/{incident.id}/close", data={"text": ""}).status_code == 422
    resp = sup.post(f"/incidents/{incident.id}/close", data={"text": "Отопление восстановлено"})
    assert resp.status_code == 302
    assert services.get(incident.id).closing_text == "Отопление восстановлено"
    # closed again from a stale tab: a clear message (it answered 422 with no message, the form being gone)
    again = sup.post(f"/incidents/{incident.id}/close", data={"text": "Ещё раз"})
    assert again.status_code == 302
    assert "инцидент уже закрыт" in sup.get(again.headers["Location"]).get_data(as_text=True)
    assert services.get(incident.id).closing_text == "Отопление восстановлено"
    resp = sup.post("/incidents/new", data={**form, "scope": "street", "addresses": "", "area": "ул. Ленина"})
    assert resp.status_code == 302
    assert "ул. Ленина" in sup.get("/incidents").get_data(as_text=True)


def test_operators_have_no_incident_pages(ctx, make_user):
    op = SharedContextClient(ctx, make_user("operator"))
    assert op.get("/incidents").status_code == 403
