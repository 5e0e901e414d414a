"""The hand-over suggestion (issue 14, point 3): each executor serves topics and buildings; an
appeal's suggestions rank those that serve its topic and its house first, as Doma's auto-assignment
does; the appeal page preselects the best; the executor is notified of each hand-over."""
from __future__ import annotations

import pytest

from tests.api.test_api import appeal_body, assert_error
from tests.clients import SharedContextClient


@pytest.fixture()
def world(ctx, make_user, api_token, client):
    """Two houses, four executors, one emergency sewer appeal on the first house."""
    from crm.buildings.models import Building
    from crm.db import db
    from crm.executors import services as executors

    b1, b2 = Building(address="ул. Ленина, д. 5", address_key="ленина 5"), Building(address="ул. Мира, д. 7",
                                                                                   address_key="мира 7")
    db.session.add_all([b1, b2])
    db.session.commit()
    ex = {
        "ads": executors.create("АДС Центрального района", "emergency_dispatch", topics=["sewerage", "cold_water"]),
        "uk": executors.create("УК «Уютный дом»", "management_company", building_ids=[b1.id]),
        "rso": executors.create("Теплосеть", "utility_supplier", topics=["heating"]),
        "sub": executors.create("Подрядчик «Труба»", "contractor", topics=["sewerage"], building_ids=[b2.id]),
    }
    op = api_token(make_user("operator"))
    resp = client.post("/api/v1/appeals", json=appeal_body(category="emergency", topic="sewerage", building_id=b1.id),
                       headers=op)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return {"b1": b1, "b2": b2, "ex": ex, "op": op, "appeal_id": resp.get_json()["id"]}


def test_suggestions_follow_topic_and_building(client, world, api_token, make_user):
    ex, op = world["ex"], world["op"]
    data = client.get(f"/api/v1/appeals/{world['appeal_id']}/executor-suggestions", headers=op).get_json()
    # the АДС names the topic and is the emergency dispatch (3), the УК names the house (2); Теплосеть
    # serves heating only and the contractor another house
    assert [(i["executor"]["id"], i["score"], i["reasons"]) for i in data["items"]] == [
        (ex["ads"].id, 3, ["topic", "emergency"]), (ex["uk"].id, 2, ["building"])]
    assert data["suggested_id"] == ex["ads"].id
    assert data["items"][1]["executor"]["building_ids"] == [world["b1"].id]
    # on the contractor's house it comes first (topic and house named)
    from crm.executors import services as executors

    ranked = executors.suggest(topic="sewerage", building_id=world["b2"].id, category="routine")
    assert [s.executor.name for s in ranked] == ["Подрядчик «Труба»", "АДС Центрального района"]
    assert_error(client.get("/api/v1/appeals/nope/executor-suggestions", headers=op), 404, "not_found")
    assert_error(client.get(f"/api/v1/appeals/{world['appeal_id']}/executor-suggestions",
                            headers=api_token(make_user("dpo"))), 403, "forbidden")
    # a building not in the register is refused when the executor is made
    assert_error(client.post("/api/v1/executors", json={"name": "Х", "kind": "contractor", "building_ids": [999999]},
                             headers=api_token(make_user("admin"))), 400, "invalid_building_ids")


def test_ties_go_to_the_less_loaded(ctx, make_user):
    from crm.appeals import services as appeals
    from crm.executors import services as executors
    from tests.factories import CitizenFactory

    a = executors.create("Аварийка-1", "emergency_dispatch")
    b = executors.create("Аварийка-2", "emergency_dispatch")
    op = make_user("operator")
    appeal = appeals.create(CitizenFactory(), category="routine", topic="lift", description="Лифт стоит",
                            channel="phone", operator_id=op.id)
    assert [s.executor.id for s in executors.suggest(topic="lift")] == [a.id, b.id]  # by name
    appeals.assign(appeal, a.id, user_id=op.id)
    assert appeals.open_counts_by_executor() == {a.id: 1}
    ranked = executors.suggest(topic="lift", loads=appeals.open_counts_by_executor())
    assert [(s.executor.id, s.open_appeals) for s in ranked] == [(b.id, 0), (a.id, 1)]


def test_the_page_preselects_the_suggestion_and_the_executor_is_notified(ctx, world, make_user):
    from crm.appeals.services import get
    from crm.dispatch import services as dispatch

    ex = world["ex"]
    page = SharedContextClient(ctx, make_user("operator"))
    html = page.get(f"/appeals/{world['appeal_id']}").get_data(as_text=True)
    assert 'id="assign-panel"' in html
    assert f'<option value="{ex["ads"].id}" data-suggested="1" selected>' in html
    assert f'<option value="{ex["uk"].id}" data-suggested="2">' in html
    assert f'<option value="{ex["rso"].id}">' in html  # every other executor below the suggestions
    resp = page.post(f"/appeals/{world['appeal_id']}/assign", data={"executor_id": str(ex["ads"].id)})
    assert resp.status_code == 302
    appeal = get(world["appeal_id"])
    assert (appeal.status, appeal.executor_id) == ("escalated", ex["ads"].id)
    staff = make_user("executor")
    staff.executor_id = ex["ads"].id
    texts = [dispatch.notification_text(n) for n in dispatch.notifications_for(staff)]
    assert texts == [f"Вам передано обращение № {appeal.number}."]
    # handed to the УК and back: the АДС is told again; the УК once
    dispatch_user = make_user("supervisor")
    from crm.appeals import services as appeals

    appeals.assign(appeal, ex["uk"].id, user_id=dispatch_user.id)
    appeals.assign(appeals.get(appeal.id), ex["ads"].id, user_id=dispatch_user.id)
    assert len(dispatch.notifications_for(staff)) == 2
    # the executor's own page has no hand-over form; a resolved appeal has none either
    assert 'id="assign-panel"' not in SharedContextClient(ctx, staff).get(f"/appeals/{appeal.id}").get_data(as_text=True)
