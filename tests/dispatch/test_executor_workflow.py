"""The executor's workflow (issue 14, point 3): an executor's account accepts an appeal handed over to
its service, reports progress, asks for more time with a reason (a supervisor approves — the
resolution deadline moves — or rejects), reports the work done, and reads the address it needs, the
read logged with its purpose. API and the appeal page's buttons."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.test_api import appeal_body, assert_error, log_entries
from tests.clients import SharedContextClient


@pytest.fixture()
def handed(ctx, client, make_user, api_token):
    """An appeal (with the citizen's address) handed over to the АДС; headers of an АДС account, of
    another executor's account, of an operator and of a supervisor."""
    from crm.db import db
    from crm.executors import services as executors

    ads = executors.create("АДС", "emergency_dispatch")
    uk = executors.create("УК", "management_company")
    op = api_token(make_user("operator"))
    citizen = {"full_name": "Работова Нина", "phone": "8 916 800-30-01", "address": "ул. Ленина, д. 5", "apartment": "12"}
    resp = client.post("/api/v1/appeals", json=appeal_body(citizen=citizen), headers=op)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    appeal_id = resp.get_json()["id"]
    assert client.post(f"/api/v1/appeals/{appeal_id}/assign", json={"executor_id": ads.id}, headers=op).status_code == 200
    staff, other = make_user("executor"), make_user("executor")
    staff.executor_id, other.executor_id = ads.id, uk.id
    db.session.commit()
    sup = make_user("supervisor")
    return {"id": appeal_id, "ads": ads, "staff": staff, "ex": api_token(staff), "other": api_token(other),
            "op": op, "sup_user": sup, "sup": api_token(sup)}


def _kinds(client, h) -> list:
    return [(e["to"], e["kind"]) for e in client.get(f"/api/v1/appeals/{h['id']}", headers=h["op"]).get_json()["history"]]


def test_accept_progress_done(client, handed):
    from crm.appeals.services import get
    from crm.dispatch import services as dispatch

    h = handed
    url = f"/api/v1/appeals/{h['id']}"
    assert_error(client.post(f"{url}/accept", json={}, headers=h["other"]), 404, "not_found")
    assert_error(client.post(f"{url}/accept", json={}, headers=h["op"]), 403, "forbidden")
    resp = client.post(f"{url}/accept", json={"comment": "Бригада назначена"}, headers=h["ex"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "in_progress"
    assert_error(client.post(f"{url}/accept", json={}, headers=h["ex"]), 409, "bad_transition")
    before = get(h["id"]).update_by
    assert_error(client.post(f"{url}/progress", json={"comment": ""}, headers=h["ex"]), 400)
    resp = client.post(f"{url}/progress", json={"comment": "Бригада на месте, перекрыли стояк"}, headers=h["ex"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "in_progress"
    assert get(h["id"]).update_by > before  # a progress report is a status update
    history = client.get(url, headers=h["op"]).get_json()["history"]
    assert history[-1]["kind"] == "note" and history[-1]["comment"] == "Бригада на месте, перекрыли стояк"
    assert history[-1]["user_id"] == h["staff"].id
    assert [e.detail for e in log_entries(action="appeal.comment", appeal_id=h["id"])] == ["note"]
    resp = client.post(f"{url}/done", json={"comment": "Заменили участок трубы"}, headers=h["ex"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "resolved"
    assert _kinds(client, h)[-1] == ("resolved", "transition")
    assert_error(client.post(f"{url}/progress", json={"comment": "ещё"}, headers=h["ex"]), 409, "bad_transition")
    kinds = [n.kind for n in dispatch.notifications_for(h["sup_user"])]
    assert kinds == ["done", "accepted"]


def test_extension_requested_approved_and_rejected(client, handed):
    from crm.appeals.services import get
    from crm.dispatch import services as dispatch

    h = handed
    url = f"/api/v1/appeals/{h['id']}"
    old_due = get(h["id"]).resolve_by
    until = (old_due + timedelta(days=5)).replace(microsecond=0)
    body = {"until": until.isoformat(), "reason": "Нужна запорная арматура, поставка через неделю"}
    assert_error(client.post(f"{url}/extension-requests", json={**body, "until": old_due.isoformat()}, headers=h["ex"]),
                 400, "invalid_until")
    assert_error(client.post(f"{url}/extension-requests",
                             json={**body, "until": (old_due + timedelta(days=90)).isoformat()}, headers=h["ex"]),
                 400, "invalid_until")
    resp = client.post(f"{url}/extension-requests", json=body, headers=h["ex"])
    assert resp.status_code == 201, resp.get_data(as_text=True)
    req = resp.get_json()
    assert req["status"] == "pending" and req["previous_due"] == old_due.isoformat()
    assert_error(client.post(f"{url}/extension-requests", json=body, headers=h["ex"]), 409, "pending")
    assert [r["id"] for r in client.get("/api/v1/extension-requests", headers=h["sup"]).get_json()["items"]] == [req["id"]]
    assert "extension_requested" in [n.kind for n in dispatch.notifications_for(h["sup_user"])]
    assert _kinds(client, h)[-1] == ("escalated", "extension_request")
    assert_error(client.post(f"/api/v1/extension-requests/{req['id']}/decision", json={"approve": True},
                             headers=h["ex"]), 403, "forbidden")
    resp = client.post(f"/api/v1/extension-requests/{req['id']}/decision", json={"approve": True}, headers=h["sup"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "approved"
    assert get(h["id"]).resolve_by == until
    data = client.get(url, headers=h["op"]).get_json()
    assert data["sla"]["resolve_by"] == until.isoformat()
    assert data["history"][-1]["kind"] == "extension"
    assert_error(client.post(f"/api/v1/extension-requests/{req['id']}/decision", json={"approve": False,
                                                                                        "comment": "нет"},
                             headers=h["sup"]), 409, "decided")
    assert [e.detail for e in log_entries(action="appeal.extend", appeal_id=h["id"])] == [
        f"resolve_by={until.isoformat()}"]
    # a second request, rejected: a reason is required, the deadline stays
    second = client.post(f"{url}/extension-requests", json={**body, "until": (until + timedelta(days=3)).isoformat()},
                         headers=h["ex"]).get_json()
    assert_error(client.post(f"/api/v1/extension-requests/{second['id']}/decision", json={"approve": False},
                             headers=h["sup"]), 400, "invalid_comment")
    resp = client.post(f"/api/v1/extension-requests/{second['id']}/decision",
                       json={"approve": False, "comment": "Арматура есть на складе АДС"}, headers=h["sup"])
    assert resp.get_json()["status"] == "rejected" and get(h["id"]).resolve_by == until
    assert sorted(n.kind for n in dispatch.notifications_for(h["staff"])) == [
        "assigned", "extension_approved", "extension_rejected"]
    items = client.get(f"{url}/extension-requests", headers=h["ex"]).get_json()["items"]
    assert [r["status"] for r in items] == ["rejected", "approved"]
    assert_error(client.get(f"{url}/extension-requests", headers=h["other"]), 404)


def test_the_address_for_the_work_is_logged_with_its_purpose(client, handed):
    h = handed
    url = f"/api/v1/appeals/{h['id']}/address"
    assert_error(client.post(url, headers=h["other"]), 404, "not_found")
    assert_error(client.post(url, headers=h["op"]), 403, "forbidden")
    resp = client.post(url, headers=h["ex"])
    assert resp.status_code == 200
    assert resp.get_json() == {"address": "ул. Ленина, д. 5", "apartment": "12", "building": None}
    entries = log_entries(action="citizen.reveal", appeal_id=h["id"])
    assert [(e.fields, e.purpose, e.detail, e.actor_id) for e in entries] == [
        ("address,apartment", "appeal_processing", "executor_work", h["staff"].id)]
    # the appeal itself, read by the executor, keeps the address masked
    card = client.get(f"/api/v1/appeals/{h['id']}", headers=h["ex"]).get_json()["citizen"]
    assert card["masked"] and "Ленина" not in (card["address"] or "")


def test_the_executors_page(ctx, handed):
    from crm.appeals.services import get

    h = handed
    page = SharedContextClient(ctx, h["staff"])
    html = page.get(f"/appeals/{h['id']}").get_data(as_text=True)
    assert 'id="executor-panel"' in html and 'id="executor-accept"' in html
    assert page.post(f"/appeals/{h['id']}/work/accept", data={}).status_code == 302
    assert get(h["id"]).status == "in_progress"
    html = page.get(f"/appeals/{h['id']}").get_data(as_text=True)
    assert 'id="executor-progress"' in html and 'id="executor-extension"' in html and 'id="executor-done"' in html
    day = (get(h["id"]).resolve_by + timedelta(days=3)).date().isoformat()
    page.post(f"/appeals/{h['id']}/work/extension", data={"until": day, "reason": "Ждём подрядчика"})
    html = page.get(f"/appeals/{h['id']}").get_data(as_text=True)
    assert 'data-extension="pending"' in html and 'id="executor-extension"' not in html
    resp = page.post(f"/appeals/{h['id']}/work/address")
    assert resp.status_code == 302
    assert "ул. Ленина, д. 5, кв. 12" in page.get(f"/appeals/{h['id']}").get_data(as_text=True)
    # the supervisor decides on the appeal page
    sup = SharedContextClient(ctx, h["sup_user"])
    html = sup.get(f"/appeals/{h['id']}").get_data(as_text=True)
    assert 'id="extension-panel"' in html
    from crm.dispatch import services as dispatch

    request_id = dispatch.pending_extension(h["id"]).id
    assert sup.post(f"/extension-requests/{request_id}/decision", data={"approve": "1"}).status_code == 302
    assert dispatch.get_extension(request_id).status == "approved"
    assert page.post(f"/appeals/{h['id']}/work/done", data={"comment": "Готово"}).status_code == 302
    assert get(h["id"]).status == "resolved"
    english = page.get(f"/appeals/{h['id']}?lang=en").get_data(as_text=True)
    assert "Work on the appeal" in english
