"""The JSON API, part 1: authentication and errors, the OpenAPI document, appeals and citizens.

Through the Flask test client against the real database and Redis of the run (SQLite + embedded
Redis by default, PostgreSQL + Redis with ``DATABASE_URL`` / ``REDIS_URL``). Calls, QA and the
telephony webhook are in ``test_api_calls.py``; consent and the access log in
``test_api_consent_audit.py``; KPIs in ``test_api_reports.py``.
"""
from __future__ import annotations

import re
import threading
from datetime import datetime

import pytest
import sqlalchemy as sa

PHONE = "+7 (912) 345 67 89"
CITIZEN = {"full_name": "Петров Пётр Петрович", "phone": PHONE, "address": "г. Тверь, ул. Советская, д. 5",
           "apartment": "12"}


def appeal_body(**overrides) -> dict:
    body = {"citizen": dict(CITIZEN), "category": "routine", "topic": "hot_water",
            "description": "Третий день нет горячей воды в квартире", "channel": "phone"}
    body.update(overrides)
    return body


@pytest.fixture()
def as_role(make_user, api_token):
    """``as_role("operator")`` → (user, Authorization headers) for a new user of that role (the other
    ``test_api_*.py`` files import it, with :func:`assert_error`)."""
    def make(role: str):
        user = make_user(role)
        return user, api_token(user)
    return make


@pytest.fixture()
def operator(as_role):
    return as_role("operator")


def count(model) -> int:
    from crm.db import db

    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def log_entries(**where) -> list:
    from crm.db import db
    from crm.security.models import AccessLogEntry

    q = sa.select(AccessLogEntry).order_by(AccessLogEntry.seq)
    for k, v in where.items():
        q = q.where(getattr(AccessLogEntry, k) == v)
    return list(db.session.execute(q).scalars())


def assert_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    err = resp.get_json()["error"]
    assert set(err) >= {"code", "message"} and err["message"]
    if code:
        assert err["code"] == code, err
    return err


def is_iso_with_offset(value: str) -> bool:
    return datetime.fromisoformat(value).utcoffset() is not None


# --- authentication, roles, malformed requests ----------------------------------------------------

PROTECTED = [("get", "/api/v1/citizens?phone=89123456789"), ("post", "/api/v1/citizens/search"),
             ("get", "/api/v1/citizens/x"),
             ("post", "/api/v1/appeals"), ("get", "/api/v1/appeals/x"), ("post", "/api/v1/appeals/x/transitions"),
             ("post", "/api/v1/calls"), ("get", "/api/v1/calls/x"), ("post", "/api/v1/calls/x/evaluations"),
             ("post", "/api/v1/citizens/x/consents"), ("get", "/api/v1/citizens/x/consents"),
             ("post", "/api/v1/consents/x/withdraw"), ("get", "/api/v1/audit"), ("get", "/api/v1/reports/kpi")]


@pytest.mark.parametrize("method, url", PROTECTED)
def test_no_token_or_bad_token_is_401(client, method, url):
    assert_error(getattr(client, method)(url), 401, "unauthorized")
    assert_error(getattr(client, method)(url, headers={"Authorization": "Bearer crm_nope"}), 401, "unauthorized")
    assert_error(getattr(client, method)(url, headers={"Authorization": "Basic abc"}), 401, "unauthorized")


@pytest.mark.parametrize("role, method, url", [
    ("supervisor", "get", "/api/v1/citizens?phone=89123456789"),
    ("dpo", "post", "/api/v1/citizens/search"),
    ("dpo", "post", "/api/v1/appeals"),
    ("dpo", "get", "/api/v1/appeals/x"),
    ("supervisor", "post", "/api/v1/appeals/x/transitions"),
    ("dpo", "post", "/api/v1/calls"),
    ("operator", "post", "/api/v1/calls/x/evaluations"),
    ("supervisor", "post", "/api/v1/citizens/x/consents"),
    ("supervisor", "post", "/api/v1/consents/x/withdraw"),
    ("operator", "get", "/api/v1/audit"),
    ("admin", "get", "/api/v1/audit"),
    ("operator", "get", "/api/v1/reports/kpi"),
    ("executor", "get", "/api/v1/calls/x"),
])
def test_wrong_role_is_403(as_role, client, role, method, url):
    _, headers = as_role(role)
    assert_error(getattr(client, method)(url, headers=headers), 403, "forbidden")


def test_revoked_token_is_401(client, operator):
    from crm.db import db
    from crm.users.models import ApiToken

    _, headers = operator
    assert client.get("/api/v1/citizens?phone=89123456789", headers=headers).status_code == 200
    db.session.execute(sa.update(ApiToken).values(revoked=True))
    db.session.commit()
    assert_error(client.get("/api/v1/citizens?phone=89123456789", headers=headers), 401)


@pytest.mark.parametrize("data, content_type", [
    ("{\"citizen\": ", "application/json"),  # cut off
    ("[1, 2]", "application/json"),  # not an object
    ("category=routine", "application/x-www-form-urlencoded"),
    ("", "application/json"),
])
def test_malformed_json_is_400(client, operator, data, content_type):
    _, headers = operator
    resp = client.post("/api/v1/appeals", data=data, content_type=content_type, headers=headers)
    assert_error(resp, 400, "invalid_json")


@pytest.mark.parametrize("body, code, words", [
    (appeal_body(category=None), "invalid_category", "category"),
    ({k: v for k, v in appeal_body().items() if k != "description"}, "invalid_description", "description"),
    (appeal_body(category=["routine"]), "invalid_category", "строкой"),
    (appeal_body(citizen={**CITIZEN, "phone": 89123456789}), "invalid_phone", "citizen.phone"),
    (appeal_body(citizen={"phone": PHONE}), "invalid_full_name", "citizen.full_name"),
    (appeal_body(citizen="Петров"), "invalid_citizen", "объектом"),
    (appeal_body(description="x" * 10001), "invalid_description", "10000"),
    (appeal_body(category="urgent"), "invalid_category", "неизвестная категория"),
    (appeal_body(topic="plumbing"), "invalid_topic", "неизвестная тематика"),
    (appeal_body(channel="pigeon"), "invalid_channel", "неизвестный канал"),
    (appeal_body(description="  "), "invalid_description", "опишите"),
    (appeal_body(citizen={**CITIZEN, "phone": "112"}), "invalid_phone", "номер"),
    (appeal_body(citizen={**CITIZEN, "email": "not-an-email"}), "invalid_email", "почты"),
    ({**appeal_body(), "citizen_id": "abc"}, "invalid_citizen", "citizen_id"),
    ({k: v for k, v in appeal_body().items() if k != "citizen"}, "invalid_citizen", "citizen_id"),
])
def test_invalid_appeal_is_400_and_writes_nothing(client, operator, body, code, words):
    from crm.appeals.models import Appeal
    from crm.citizens.models import Citizen

    _, headers = operator
    err = assert_error(client.post("/api/v1/appeals", json=body, headers=headers), 400, code)
    assert words in err["message"]
    assert count(Appeal) == 0 and count(Citizen) == 0


def test_unknown_ids_are_404(client, as_role):
    _, op = as_role("operator")
    _, sup = as_role("supervisor")
    assert_error(client.get("/api/v1/appeals/00000000-0000-0000-0000-000000000000", headers=op), 404, "not_found")
    assert_error(client.post("/api/v1/appeals/nope/transitions", json={"status": "escalated"}, headers=op), 404)
    assert_error(client.get("/api/v1/citizens/nope", headers=op), 404, "not_found")
    assert_error(client.get("/api/v1/calls/nope", headers=sup), 404, "not_found")
    body = {k: v for k, v in appeal_body().items() if k != "citizen"} | {"citizen_id": "nope"}
    assert_error(client.post("/api/v1/appeals", json=body, headers=op), 404, "citizen_not_found")
    assert_error(client.get("/api/v1/no-such-endpoint", headers=op), 404)


# --- the OpenAPI document -------------------------------------------------------------------------

def test_openapi_documents_every_route_with_its_roles(ctx, client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    routed = set()
    for rule in ctx.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        view = ctx.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routed.add((path, method.lower()))
            op = doc["paths"][path][method.lower()]
            assert set(op.get("x-roles", ())) == set(getattr(view, "crm_roles", ())), (path, method)
            for p in re.findall(r"{(\w+)}", path):
                assert any(x["name"] == p and x["in"] == "path" for x in op.get("parameters", ())), (path, p)
    assert documented == routed
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', resp.get_data(as_text=True)))
    assert refs <= set(doc["components"]["schemas"])


def test_openapi_enums_follow_the_catalog(client):
    from crm.appeals.catalog import CATEGORIES, TOPICS

    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert schemas["AppealCreate"]["properties"]["category"]["enum"] == list(CATEGORIES)
    assert set(schemas["AppealCreate"]["properties"]["topic"]["enum"]) == set(TOPICS)
    assert set(schemas["ConsentCreate"]["properties"]["purpose"]["enum"]) == {
        "appeal_processing", "sms_notifications", "email_notifications", "csat_survey", "call_recording_qa"}


# --- appeals --------------------------------------------------------------------------------------

def test_create_then_get_appeal(client, operator):
    user, headers = operator
    resp = client.post("/api/v1/appeals", json=appeal_body(), headers=headers)
    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()
    assert {"id", "number", "status", "citizen_id", "sla", "repeat_of"} <= set(created)
    assert created["status"] == "received" and created["repeat_of"] is None
    assert re.fullmatch(r"\d{4}-\d{6}", created["number"])
    assert created["operator_id"] == user.id
    assert "description" not in created  # not decrypted for the answer
    assert resp.headers["Location"].endswith(f"/api/v1/appeals/{created['id']}")

    got = client.get(f"/api/v1/appeals/{created['id']}", headers=headers)
    assert got.status_code == 200
    data = got.get_json()
    assert data["id"] == created["id"] and data["number"] == created["number"]
    assert data["description"] == "Третий день нет горячей воды в квартире"
    assert set(data["sla"]) == {"escalate_by", "update_by", "resolve_by", "breached"}
    for key in ("escalate_by", "update_by", "resolve_by"):
        assert is_iso_with_offset(data["sla"][key]), data["sla"]
    assert data["sla"]["breached"] is False
    assert datetime.fromisoformat(data["sla"]["escalate_by"]) < datetime.fromisoformat(data["sla"]["resolve_by"])
    assert "repeat_of" in data and data["repeat_of"] is None
    assert data["citizen"]["full_name"] == CITIZEN["full_name"]
    assert data["citizen"]["phone"] == "+7 912 ***-**-89" and data["citizen"]["masked"] is True
    assert [h["to"] for h in data["history"]] == ["received"]
    views = log_entries(action="appeal.view", appeal_id=created["id"])
    assert len(views) == 1 and views[0].actor == user.username and views[0].actor_role == "operator"


def test_supervisor_reads_appeal(client, operator, as_role):
    _, headers = operator
    appeal_id = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()["id"]
    _, sup = as_role("supervisor")
    assert client.get(f"/api/v1/appeals/{appeal_id}", headers=sup).status_code == 200


def test_citizen_reused_when_phone_and_name_match(client, operator):
    from crm.citizens.models import Citizen

    _, headers = operator
    first = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()
    same = appeal_body(topic="heating", citizen={"full_name": "  ПЕТРОВ  Петр петрович ", "phone": "8 912 345-67-89"})
    second = client.post("/api/v1/appeals", json=same, headers=headers).get_json()
    assert second["citizen_id"] == first["citizen_id"]
    other = appeal_body(citizen={"full_name": "Петрова Анна Ивановна", "phone": "89123456789"})
    # same phone, another person: the API stops as the operator's form does ...
    assert_error(client.post("/api/v1/appeals", json=other, headers=headers), 409, "phone_in_use")
    # ... and registers once that is confirmed
    third = client.post("/api/v1/appeals", json=other | {"confirm_duplicate": True}, headers=headers).get_json()
    assert third["citizen_id"] != first["citizen_id"]  # same phone, another person: registered
    assert count(Citizen) == 2


def test_create_with_citizen_id(client, operator):
    _, headers = operator
    first = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()
    body = {k: v for k, v in appeal_body(topic="lift").items() if k != "citizen"} | {"citizen_id": first["citizen_id"]}
    resp = client.post("/api/v1/appeals", json=body, headers=headers)
    assert resp.status_code == 201 and resp.get_json()["citizen_id"] == first["citizen_id"]


def test_channel_defaults_to_api(client, operator):
    _, headers = operator
    body = {k: v for k, v in appeal_body().items() if k != "channel"}
    assert client.post("/api/v1/appeals", json=body, headers=headers).get_json()["channel"] == "api"


def test_idempotency_key_makes_one_appeal(client, operator):
    from crm.appeals.models import Appeal
    from crm.citizens.models import Citizen

    _, headers = operator
    h = {**headers, "Idempotency-Key": "pbx-7f3a-0001"}
    first = client.post("/api/v1/appeals", json=appeal_body(), headers=h)
    assert first.status_code == 201
    # the retry even carries another spelling of the name: no second citizen, no second appeal
    retry_body = appeal_body(citizen={**CITIZEN, "full_name": "Петров-Водкин Кузьма"})
    again = client.post("/api/v1/appeals", json=retry_body, headers=h)
    assert again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["number"] == first.get_json()["number"]
    assert count(Appeal) == 1 and count(Citizen) == 1
    searches = log_entries(action="citizen.search")
    assert len(searches) == 1  # the retry looked nobody up
    other = client.post("/api/v1/appeals", json=appeal_body(), headers={**headers, "Idempotency-Key": "pbx-7f3a-0002"})
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]
    assert count(Appeal) == 2
    assert_error(client.post("/api/v1/appeals", json=appeal_body(), headers={**headers, "Idempotency-Key": "k" * 65}),
                 400, "invalid_idempotency_key")


@pytest.mark.parametrize("new_citizen", [False, True])
def test_concurrent_retries_with_one_key_make_one_appeal(ctx, operator, new_citizen):
    """Eight clients send the same POST at once (each with its own app context and database
    session, as separate web workers would): one appeal, one citizen, every answer 201 with its id.

    The year's appeal counter is made first: racing for the first appeal of a year can deadlock on
    PostgreSQL (appeals.services._next_number inserts the counter in a savepoint, and the access log
    chains at savepoint release too); reported to the lead, not this endpoint's to fix."""
    from crm.appeals.models import Appeal
    from crm.citizens.models import Citizen
    from crm.db import db

    _, headers = operator
    other = appeal_body(topic="yard", citizen={"full_name": "Иванова Ольга", "phone": "89167770011"})
    assert ctx.test_client().post("/api/v1/appeals", json=other, headers=headers).status_code == 201
    if not new_citizen:
        assert ctx.test_client().post("/api/v1/appeals", json=appeal_body(), headers=headers).status_code == 201
    db.session.commit()  # end this thread's transaction: on SQLite it would hold the write lock
    n, barrier, results = 8, threading.Barrier(8), []

    def post():
        client = ctx.test_client()
        barrier.wait()
        resp = client.post("/api/v1/appeals", json=appeal_body(topic="lift"),
                           headers={**headers, "Idempotency-Key": "race-0001"})
        results.append((resp.status_code, (resp.get_json() or {}).get("id")))

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n and {status for status, _ in results} == {201}, results
    assert len({appeal_id for _, appeal_id in results}) == 1
    assert count(Appeal) == (2 if new_citizen else 3)
    assert count(Citizen) == 2


def test_repeat_of_links_second_appeal_on_same_topic(client, operator):
    _, headers = operator
    first = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()
    second = client.post("/api/v1/appeals", json=appeal_body(description="Воды так и нет"), headers=headers).get_json()
    assert second["repeat_of"] == first["id"]
    assert client.get(f"/api/v1/appeals/{second['id']}", headers=headers).get_json()["repeat_of"] == first["id"]
    other_topic = client.post("/api/v1/appeals", json=appeal_body(topic="lift"), headers=headers).get_json()
    assert other_topic["repeat_of"] is None


def test_transitions(client, operator, as_role):
    _, headers = operator
    appeal_id = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()["id"]
    url = f"/api/v1/appeals/{appeal_id}/transitions"
    resp = client.post(url, json={"status": "escalated", "comment": "Передано в АДС"}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "escalated"
    err = assert_error(client.post(url, json={"status": "closed"}, headers=headers), 409, "bad_transition")
    assert "нельзя перевести" in err["message"]
    assert_error(client.post(url, json={"status": "teleported"}, headers=headers), 400, "invalid_status")
    assert_error(client.post(url, json={"comment": "x"}, headers=headers), 400, "invalid_status")
    assert_error(client.post(url, data="nope", content_type="application/json", headers=headers), 400, "invalid_json")
    assert client.post(url, json={"status": "in_progress"}, headers=headers).status_code == 200
    data = client.get(f"/api/v1/appeals/{appeal_id}", headers=headers).get_json()
    assert [h["to"] for h in data["history"]] == ["received", "escalated", "in_progress"]
    assert data["history"][1]["comment"] == "Передано в АДС"


# --- citizens -------------------------------------------------------------------------------------

def test_every_phone_spelling_finds_the_same_citizen(client, operator):
    _, headers = operator
    citizen_id = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()["citizen_id"]
    for spelling in ("8 912 345-67-89", "+7 (912) 345 67 89", "89123456789", "9123456789", "+79123456789"):
        resp = client.get("/api/v1/citizens", query_string={"phone": spelling}, headers=headers)
        assert resp.status_code == 200, (spelling, resp.get_json())
        items = resp.get_json()["items"]
        assert [c["id"] for c in items] == [citizen_id], spelling
        assert items[0]["full_name"] == CITIZEN["full_name"]
        assert items[0]["phone"] == "+7 912 ***-**-89" and items[0]["masked"] is True


def test_post_search_returns_the_same_as_get_with_the_phone_out_of_the_url(client, operator):
    user, headers = operator
    citizen_id = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()["citizen_id"]
    for spelling in ("8 912 345-67-89", "+7 (912) 345 67 89", "9123456789"):
        resp = client.post("/api/v1/citizens/search", json={"phone": spelling}, headers=headers)
        assert resp.status_code == 200, (spelling, resp.get_json())
        assert resp.request.full_path.rstrip("?") == "/api/v1/citizens/search"  # no number in the request line
        got = resp.get_json()
        assert got == client.get("/api/v1/citizens", query_string={"phone": spelling}, headers=headers).get_json()
        assert [c["id"] for c in got["items"]] == [citizen_id] and got["items"][0]["masked"] is True
    actions = [e.action for e in log_entries(citizen_id=citizen_id, actor=user.username)]
    assert actions[-4:-2] == ["citizen.search", "citizen.view"]  # the POST is logged like the GET
    assert client.post("/api/v1/citizens/search", json={"phone": "89161112233"},
                       headers=headers).get_json() == {"items": []}
    assert "345" not in assert_error(client.post("/api/v1/citizens/search", json={"phone": "garbage"},
                                                 headers=headers), 400, "invalid_phone")["message"]
    assert_error(client.post("/api/v1/citizens/search", json={}, headers=headers), 400, "invalid_phone")
    assert_error(client.post("/api/v1/citizens/search", json={"phone": 89123456789}, headers=headers), 400)
    assert_error(client.post("/api/v1/citizens/search", data="phone=89123456789",
                             content_type="application/x-www-form-urlencoded", headers=headers), 400, "invalid_json")


def test_post_search_is_documented_as_keeping_the_number_out_of_urls(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/citizens/search"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PhoneSearch"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CitizenList"}
    assert "out of URLs" in op["description"] and set(op["x-roles"]) == {"operator", "admin"}
    assert doc["components"]["schemas"]["PhoneSearch"]["required"] == ["phone"]
    assert "get" in doc["paths"]["/citizens"]  # the GET stays: a stable interface


def test_unknown_phone_gives_empty_list(client, operator):
    _, headers = operator
    resp = client.get("/api/v1/citizens?phone=89161112233", headers=headers)
    assert resp.status_code == 200 and resp.get_json() == {"items": []}


@pytest.mark.parametrize("phone, words", [
    ("+44 20 7946 0958", "российские"),
    ("garbage", "не номер телефона"),
    ("112", "номер"),
    ("", "укажите номер"),
])
def test_bad_phone_is_400_with_russian_message(client, operator, phone, words):
    _, headers = operator
    err = assert_error(client.get("/api/v1/citizens", query_string={"phone": phone}, headers=headers),
                       400, "invalid_phone")
    assert words in err["message"]


def test_reading_a_citizen_is_logged(client, operator):
    user, headers = operator
    citizen_id = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()["citizen_id"]
    before = len(log_entries(citizen_id=citizen_id))
    resp = client.get(f"/api/v1/citizens/{citizen_id}", headers=headers)
    assert resp.status_code == 200
    card = resp.get_json()
    assert card["id"] == citizen_id and card["masked"] is True and card["phone"] == "+7 912 ***-**-89"
    assert card["email"] is None and card["apartment"] is None
    entries = log_entries(citizen_id=citizen_id)
    assert len(entries) == before + 1
    assert entries[-1].action == "citizen.view" and entries[-1].actor == user.username
    assert set(entries[-1].fields.split(",")) == {"full_name", "phone"}

    revealed = client.get(f"/api/v1/citizens/{citizen_id}?reveal=true", headers=headers).get_json()
    assert revealed["phone"] == "+7 912 345-67-89" and revealed["apartment"] == "12"
    assert revealed["address"] == CITIZEN["address"]
    last = log_entries(citizen_id=citizen_id)[-1]
    assert last.action == "citizen.reveal" and "address" in last.fields


def test_phone_search_is_logged(client, operator):
    user, headers = operator
    citizen_id = client.post("/api/v1/appeals", json=appeal_body(), headers=headers).get_json()["citizen_id"]
    client.get("/api/v1/citizens?phone=89123456789", headers=headers)
    actions = [e.action for e in log_entries(citizen_id=citizen_id, actor=user.username)]
    assert actions[-2:] == ["citizen.search", "citizen.view"]
