"""Executors (issue 14, point 3): the directory of services appeals are handed over to
(`/api/v1/executors`), the hand-over (`POST /api/v1/appeals/{id}/assign`), executor-role accounts
(`crm users create … --role executor --executor-id ID`) that see only their executor's appeals.
Every JSON answer is checked against the OpenAPI document by the test client."""
from __future__ import annotations

import pytest

from tests.clients import SharedContextClient
from tests.api.test_api import appeal_body, as_role, assert_error, log_entries  # noqa: F401


@pytest.fixture()
def executor_of(ctx, make_user, api_token):
    """``executor_of(executor_id)`` → (user, headers) of an executor-role account of that executor."""
    from crm.db import db

    def make(executor_id):
        user = make_user("executor")
        user.executor_id = executor_id
        db.session.commit()
        return user, api_token(user)
    return make


def _new_executor(client, headers, **over) -> dict:
    """A new executor; ``topics`` left out unless given (the default АДС serves heating, hot water)."""
    body = {"name": "АДС Центрального района", "kind": "emergency_dispatch", "topics": ["heating", "hot_water"]}
    if "name" in over:
        body.pop("topics")
    body.update(over)
    resp = client.post("/api/v1/executors", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def _new_appeal(client, headers) -> str:
    resp = client.post("/api/v1/appeals", json=appeal_body(), headers=headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()["id"]


def test_directory_create_validate_and_list(client, as_role):
    _, admin = as_role("admin")
    _, sup = as_role("supervisor")
    _, op = as_role("operator")
    ads = _new_executor(client, admin)
    assert ads["id"] and ads["kind"] == "emergency_dispatch" and ads["topics"] == ["heating", "hot_water"]
    uk = _new_executor(client, sup, name="УК «Уютный дом»", kind="management_company", phone="+7 4822 00-00-00")
    assert uk["topics"] == [] and uk["phone"] == "+7 4822 00-00-00"
    assert_error(client.post("/api/v1/executors", json={"name": "X", "kind": "plumber"}, headers=admin),
                 400, "invalid_kind")
    assert_error(client.post("/api/v1/executors", json={"kind": "contractor"}, headers=admin), 400, "invalid_name")
    assert_error(client.post("/api/v1/executors", json={"name": "АДС Центрального района", "kind": "contractor"},
                             headers=admin), 400, "invalid_name")
    assert_error(client.post("/api/v1/executors", json={"name": "Y", "kind": "contractor"}, headers=op),
                 403, "forbidden")
    items = client.get("/api/v1/executors", headers=op).get_json()["items"]
    assert [e["id"] for e in items] == [ads["id"], uk["id"]]  # by name
    assert [e["id"] for e in client.get("/api/v1/executors?kind=management_company", headers=op)
            .get_json()["items"]] == [uk["id"]]
    # an executor serving any topic (none listed) serves electricity; the АДС here does not
    assert [e["id"] for e in client.get("/api/v1/executors?topic=electricity", headers=op)
            .get_json()["items"]] == [uk["id"]]
    assert log_entries(action="executor.create")


def test_assign_moves_to_escalated_and_get_shows_executor(client, as_role):
    from crm.appeals.services import get

    _, admin = as_role("admin")
    op_user, op = as_role("operator")
    ads = _new_executor(client, admin)
    uk = _new_executor(client, admin, name="УК", kind="management_company")
    aid = _new_appeal(client, op)
    assert client.get(f"/api/v1/appeals/{aid}", headers=op).get_json()["executor_id"] is None
    resp = client.post(f"/api/v1/appeals/{aid}/assign", json={"executor_id": ads["id"]}, headers=op)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["executor_id"] == ads["id"] and resp.get_json()["status"] == "escalated"
    data = client.get(f"/api/v1/appeals/{aid}", headers=op).get_json()
    assert data["executor_id"] == ads["id"] and data["status"] == "escalated"
    assert [(h["from"], h["to"], h["user_id"]) for h in data["history"]][-1] == ("received", "escalated", op_user.id)
    assert [e.detail for e in log_entries(action="appeal.assign", appeal_id=aid)] == [f"executor={ads['id']}"]
    assert log_entries(action="appeal.transition", appeal_id=aid)
    # already escalated: the executor changes, the status stays (no new history row)
    _, sup = as_role("supervisor")
    resp = client.post(f"/api/v1/appeals/{aid}/assign", json={"executor_id": uk["id"]}, headers=sup)
    assert resp.status_code == 200 and resp.get_json()["executor_id"] == uk["id"]
    assert len(client.get(f"/api/v1/appeals/{aid}", headers=op).get_json()["history"]) == 2
    assert get(aid).executor_id == uk["id"]
    # refused: unknown executor, unknown appeal, a role that may not, an appeal that can no longer go
    assert_error(client.post(f"/api/v1/appeals/{aid}/assign", json={"executor_id": 999999}, headers=op),
                 400, "invalid_executor_id")
    assert_error(client.post("/api/v1/appeals/nope/assign", json={"executor_id": ads["id"]}, headers=op), 404)
    _, dpo = as_role("dpo")
    assert_error(client.post(f"/api/v1/appeals/{aid}/assign", json={"executor_id": ads["id"]}, headers=dpo), 403)
    assert client.post(f"/api/v1/appeals/{aid}/transitions", json={"status": "rejected"}, headers=op).status_code == 200
    assert_error(client.post(f"/api/v1/appeals/{aid}/assign", json={"executor_id": ads["id"]}, headers=op),
                 409, "bad_transition")


def test_executor_sees_only_its_appeals(ctx, client, as_role, executor_of):
    _, admin = as_role("admin")
    _, op = as_role("operator")
    ads = _new_executor(client, admin)
    uk = _new_executor(client, admin, name="УК", kind="management_company")
    mine, theirs, nobodys = _new_appeal(client, op), _new_appeal(client, op), _new_appeal(client, op)
    assert client.post(f"/api/v1/appeals/{mine}/assign", json={"executor_id": ads["id"]}, headers=op).status_code == 200
    assert client.post(f"/api/v1/appeals/{theirs}/assign", json={"executor_id": uk["id"]}, headers=op).status_code == 200
    user, ex = executor_of(ads["id"])
    resp = client.get(f"/api/v1/appeals/{mine}", headers=ex)
    assert resp.status_code == 200 and resp.get_json()["executor_id"] == ads["id"]
    assert_error(client.get(f"/api/v1/appeals/{theirs}", headers=ex), 404, "not_found")
    assert_error(client.get(f"/api/v1/appeals/{nobodys}", headers=ex), 404, "not_found")
    # an executor account without an executor sees nothing
    _, lost = executor_of(None)
    assert_error(client.get(f"/api/v1/appeals/{mine}", headers=lost), 404)
    # the pages: the list shows its appeals only, another service's appeal is 404
    from crm.appeals.services import get

    page = SharedContextClient(ctx, user)
    html = page.get("/appeals").get_data(as_text=True)
    assert get(mine).number in html and get(theirs).number not in html and get(nobodys).number not in html
    assert page.get(f"/appeals/{mine}").status_code == 200
    assert page.get(f"/appeals/{theirs}").status_code == 404


def test_cli_creates_executor_account(runner, client, as_role):
    from crm.users.services import get_by_username

    _, admin = as_role("admin")
    ads = _new_executor(client, admin)
    out = runner("users", "create", "ads_staff", "--role", "executor", "--executor-id", str(ads["id"]),
                 "--password-stdin", input="correct-horse-battery-1\n")
    assert out.exit_code == 0, out.output
    assert get_by_username("ads_staff").executor_id == ads["id"]
    for args in ((), ("--executor-id", "999999")):
        out = runner("users", "create", "ads_other", "--role", "executor", *args, "--password-stdin",
                     input="correct-horse-battery-1\n")
        assert out.exit_code == 1 and "исполнител" in out.output, out.output
        assert get_by_username("ads_other") is None
    out = runner("users", "create", "op_x", "--role", "operator", "--executor-id", str(ads["id"]),
                 "--password-stdin", input="correct-horse-battery-1\n")
    assert out.exit_code == 1 and get_by_username("op_x") is None
