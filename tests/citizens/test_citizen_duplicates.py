"""A new citizen whose phone already belongs to other citizens: the operator's form warns and lists
them (logged reads), takes one of them or registers anyway once confirmed; a double-clicked form
registers one citizen; the API goes through the same service: 409 with the others, registers once
``confirm_duplicate`` is sent.

Runs on SQLite + embedded Redis by default and on PostgreSQL + Redis with ``DATABASE_URL`` /
``REDIS_URL`` set (CSRF is off in the ``app`` fixture).
"""
from __future__ import annotations

import re
import threading
import uuid
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from tests.clients import SharedContextClient
from tests.factories import CitizenFactory

PHONE = "8 916 404-12-34"          # as the operator types it
SAME_PHONE = "+7 (916) 404 12 34"  # another spelling of the same number
E164 = "+79164041234"
FIRST = "Ковалёва Мария Игоревна"
SECOND = "Ковалёв Игорь Петрович"
NEWCOMER = "Ковалёв Артём Игоревич"


def citizen_form(full_name: str = NEWCOMER, phone: str = SAME_PHONE, **extra) -> dict:
    data = {"full_name": full_name, "phone": phone, "email": "", "address": "ул. Садовая, д. 5", "apartment": "17",
            "submission_key": uuid.uuid4().hex}
    data.update(extra)
    return data


def count_citizens() -> int:
    from crm.citizens.models import Citizen
    from crm.db import db

    db.session.expire_all()
    return db.session.execute(sa.select(sa.func.count()).select_from(Citizen)).scalar_one()


def citizens_with_phone(e164: str) -> list:
    """Every citizen holding ``e164`` (decrypted here, in the test, to check what was stored)."""
    from crm.citizens.models import Citizen
    from crm.db import db

    db.session.expire_all()
    return [c for c in db.session.execute(sa.select(Citizen)).scalars() if c.phone == e164]


def log(**where) -> list:
    from crm.db import db
    from crm.security.models import AccessLogEntry

    db.session.expire_all()
    q = sa.select(AccessLogEntry).order_by(AccessLogEntry.seq)
    for k, v in where.items():
        q = q.where(getattr(AccessLogEntry, k) == v)
    return list(db.session.execute(q).scalars())


def path_of(resp) -> str:
    return urlparse(resp.headers["Location"]).path


def new_appeal_path(resp) -> str:
    """The citizen id of a redirect to ``/citizens/<id>/appeals/new``."""
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1500]
    m = re.fullmatch(r"/citizens/([^/]+)/appeals/new", path_of(resp))
    assert m, resp.headers["Location"]
    return m.group(1)


@pytest.fixture()
def existing(ctx):
    """Two citizens already registered with the number (a mother and a son sharing a landline)."""
    from crm.db import db

    first = CitizenFactory(full_name=FIRST, phone=PHONE, address="ул. Садовая, д. 5", apartment="17")
    second = CitizenFactory(full_name=SECOND, phone="89164041234")
    ids = (first.id, second.id)
    db.session.commit()
    return ids


@pytest.fixture()
def operator(make_user):
    return make_user("operator")


@pytest.fixture()
def op(ctx, operator):
    return SharedContextClient(ctx, operator)


# --- the operator's form --------------------------------------------------------------------------

def test_known_phone_shows_the_warning_and_registers_nobody(op, existing, operator):
    first_id, second_id = existing
    resp = op.post("/citizens", data=citizen_form())
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409, html[:1500]
    assert "Location" not in resp.headers
    assert count_citizens() == 2
    assert not log(action="citizen.create", actor=operator.username)

    warning = re.search(r'<div class="flash warn" role="alert" id="phone-duplicates">(.*?)</div>', html, re.S)
    assert warning, html[:3000]
    text = warning.group(1)
    assert "Этот номер уже есть у заявителей (2)" in text
    # the names as the operator sees them in a search (full name, masked phone), each with a link to take them
    for cid, name in ((first_id, FIRST), (second_id, SECOND)):
        assert name in text
        assert f'href="/citizens/{cid}/appeals/new"' in text
    assert "+7 916 ***-**-34" in text and "404-12-34" not in text
    # the form is back with what was typed, the checkbox unticked, the number the warning is about kept
    assert f'value="{NEWCOMER}"' in html and f'value="{SAME_PHONE}"' in html
    box = re.search(r'<input[^>]*name="confirm_duplicate"[^>]*>', html)
    assert box and "checked" not in box.group(0)
    assert "Всё равно зарегистрировать нового заявителя" in html
    assert re.search(rf'<input[^>]*name="confirmed_phone"[^>]*value="{re.escape(SAME_PHONE)}"', html)


def test_one_match_is_named_in_the_singular(op, ctx):
    only = CitizenFactory(full_name=FIRST, phone=PHONE)
    resp = op.post("/citizens", data=citizen_form())
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "Этот номер уже есть у заявителя:" in html and FIRST in html
    assert f"/citizens/{only.id}/appeals/new" in html
    assert count_citizens() == 1


def test_new_phone_registers_at_once(op, existing):
    resp = op.post("/citizens", data=citizen_form(phone="8 916 404-99-00"))
    cid = new_appeal_path(resp)
    assert count_citizens() == 3
    assert [c.id for c in citizens_with_phone("+79164049900")] == [cid]


def test_ticked_checkbox_registers_a_new_citizen(op, existing):
    warned = op.post("/citizens", data=citizen_form())
    assert warned.status_code == 409
    key = re.search(r'name="submission_key"[^>]*value="([^"]+)"', warned.get_data(as_text=True)).group(1)

    resp = op.post("/citizens", data=citizen_form(submission_key=key, confirm_duplicate="y",
                                                  confirmed_phone=SAME_PHONE))
    cid = new_appeal_path(resp)
    assert cid not in existing
    assert count_citizens() == 3
    assert {c.id for c in citizens_with_phone(E164)} == {*existing, cid}
    from crm.citizens.models import Citizen
    from crm.db import db

    assert db.session.get(Citizen, cid).full_name == NEWCOMER
    assert [e.action for e in log(citizen_id=cid)] == ["citizen.create"]
    page = op.get(f"/citizens/{cid}/appeals/new").get_data(as_text=True)
    assert "Заявитель зарегистрирован." in page and NEWCOMER in page


def test_checkbox_counts_only_for_the_number_warned_about(op, existing, ctx):
    CitizenFactory(full_name="Сидоров Павел", phone="8 916 555-00-11")
    # ticked under the warning for one number, then the number was changed to another known one
    resp = op.post("/citizens", data=citizen_form(phone="8 916 555-00-11", confirm_duplicate="y",
                                                  confirmed_phone=SAME_PHONE))
    assert resp.status_code == 409
    assert "Сидоров Павел" in resp.get_data(as_text=True) and FIRST not in resp.get_data(as_text=True)
    # ticked without a warning having been shown (no confirmed number): warned first
    resp = op.post("/citizens", data=citizen_form(confirm_duplicate="y"))
    assert resp.status_code == 409 and FIRST in resp.get_data(as_text=True)
    assert count_citizens() == 3


def test_choosing_the_existing_citizen_logs_the_appeal_for_them(op, existing):
    from crm.appeals.models import Appeal
    from crm.db import db

    first_id, _ = existing
    html = op.post("/citizens", data=citizen_form()).get_data(as_text=True)
    link = re.search(rf'<a class="btn" href="(/citizens/{first_id}/appeals/new)">([^<]+)</a>', html)
    assert link and link.group(2) == "Выбрать этого заявителя", html[:3000]

    form = op.get(link.group(1))
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert FIRST in page and "Новое обращение" in page
    key = re.search(r'name="submission_key"[^>]*value="([^"]+)"', page).group(1)
    resp = op.post(link.group(1), data={"submission_key": key, "category": "routine", "topic": "hot_water",
                                        "channel": "phone", "description": "Нет горячей воды третий день",
                                        "consent_sms": "unknown", "consent_recording": "unknown"},
                   content_type="multipart/form-data")
    assert resp.status_code == 302 and re.fullmatch(r"/appeals/[^/]+", path_of(resp)), resp.get_data(as_text=True)[:800]
    appeal = db.session.get(Appeal, path_of(resp).rsplit("/", 1)[1])
    assert appeal.citizen_id == first_id
    assert count_citizens() == 2


def test_the_names_shown_are_in_the_access_log_as_the_phone_search_writes_them(op, existing, operator):
    before = {e.seq for e in log()}
    assert op.post("/citizens", data=citizen_form()).status_code == 409
    new = [e for e in log() if e.seq not in before]
    for cid in existing:
        mine = [e for e in new if e.citizen_id == cid]
        # the same entries as the operator's phone search (POST /operator): the look-up by blind index,
        # then the card shown
        assert [e.action for e in mine] == ["citizen.search", "citizen.view"], [(e.action, e.citizen_id) for e in new]
        for e in mine:
            assert e.actor == operator.username and e.actor_role == "operator"
            assert e.purpose == "appeal_processing" and e.outcome == "ok"
            assert set(e.fields.split(",")) == {"full_name", "phone"}
    assert {e.citizen_id for e in new} == set(existing)
    # and it matches the search page entry for entry
    before = {e.seq for e in log()}
    assert op.post("/operator", data={"phone": PHONE}).status_code == 200
    searched = [(e.action, e.citizen_id, e.fields, e.purpose) for e in log() if e.seq not in before]
    assert sorted(searched) == sorted((e.action, e.citizen_id, e.fields, e.purpose) for e in new)


def test_no_match_is_logged_as_a_search_that_found_nobody(op, ctx, operator):
    cid = new_appeal_path(op.post("/citizens", data=citizen_form(phone="8 916 404-77-88")))
    mine = [e for e in log(actor=operator.username) if e.action.startswith("citizen.")]
    assert [(e.action, e.citizen_id, e.outcome) for e in mine] == [
        ("citizen.search", None, "not_found"), ("citizen.create", cid, "ok")]


# --- double submission ----------------------------------------------------------------------------

def test_double_clicked_form_registers_one_citizen(op, ctx):
    data = citizen_form(phone="8 916 404-55-66")
    first, second = op.post("/citizens", data=data), op.post("/citizens", data=data)
    assert new_appeal_path(first) == new_appeal_path(second)  # the second goes to the same citizen, no warning
    assert count_citizens() == 1


def test_double_clicked_confirmation_registers_one_citizen(op, existing):
    data = citizen_form(confirm_duplicate="y", confirmed_phone=PHONE)
    first, second = op.post("/citizens", data=data), op.post("/citizens", data=data)
    assert new_appeal_path(first) == new_appeal_path(second)
    assert count_citizens() == 3


def test_form_reused_for_another_person_registers_them(op, ctx):
    """Back button after a registration, then the same page filled in for the next caller: its key
    was used, but for another person — registered, not sent to the first one."""
    data = citizen_form(phone="8 916 404-55-66")
    first = new_appeal_path(op.post("/citizens", data=data))
    again = citizen_form(full_name="Тихонова Вера", phone="8 916 404-55-67", submission_key=data["submission_key"])
    second = new_appeal_path(op.post("/citizens", data=again))
    assert first != second and count_citizens() == 2


def test_form_is_sent_once_by_the_browser_and_carries_a_fresh_key(op):
    keys = set()
    for _ in range(2):
        html = op.get("/operator").get_data(as_text=True)
        form = re.search(r'<form method="post" action="/citizens"[^>]*>', html)
        assert form and "data-submit-once" in form.group(0)
        keys.add(re.search(r'name="submission_key"[^>]*value="([0-9a-f]{32})"', html).group(1))
    assert len(keys) == 2


def test_concurrent_double_submission_registers_one_citizen(ctx, operator, existing):
    """Four copies of one confirmed form at once, as separate web workers would take them."""
    from crm.db import db

    clients = [SharedContextClient(ctx, operator).client for _ in range(4)]
    db.session.commit()  # hold no transaction (SQLite: no write lock) while the threads work
    data = citizen_form(confirm_duplicate="y", confirmed_phone=PHONE)
    barrier, results = threading.Barrier(len(clients)), []

    def post(client):
        barrier.wait()
        resp = client.post("/citizens", data=data)
        results.append((resp.status_code, resp.headers.get("Location")))

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == len(clients) and {s for s, _ in results} == {302}, results
    assert len({loc for _, loc in results}) == 1
    assert count_citizens() == 3


# --- the API --------------------------------------------------------------------------------------

def appeal_body(full_name: str, phone: str = SAME_PHONE, **over) -> dict:
    body = {"citizen": {"full_name": full_name, "phone": phone}, "category": "routine", "topic": "heating",
            "description": "Холодные батареи в квартире", "channel": "phone"}
    body.update(over)
    return body


def test_api_stops_like_the_form_and_registers_once_confirmed(client, existing, make_user, api_token):
    """The API registers citizens through the form's service: a known phone of other names is
    answered 409 with the citizens who have it and registers nobody; confirmed, it registers."""
    headers = api_token(make_user("operator"))
    resp = client.post("/api/v1/appeals", json=appeal_body(NEWCOMER), headers=headers)
    assert resp.status_code == 409, resp.get_json()
    data = resp.get_json()
    assert data["error"]["code"] == "phone_in_use"
    assert sorted(data["citizen_ids"]) == sorted(existing)
    assert {c["id"] for c in data["duplicates"]} == set(existing) and all(c["masked"] for c in data["duplicates"])
    assert count_citizens() == 2
    for cid in existing:  # the look-up that found them is logged, then the cards shown (as the form logs them)
        assert [e.action for e in log(citizen_id=cid)][-2:] == ["citizen.search", "citizen.view"]

    resp = client.post("/api/v1/appeals", json=appeal_body(NEWCOMER, confirm_duplicate=True), headers=headers)
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["citizen_id"] not in existing
    assert data["possible_duplicates"] == []
    assert count_citizens() == 3

    # same phone and name: the existing citizen is used, nothing to report
    same = client.post("/api/v1/appeals", json=appeal_body(FIRST.upper(), topic="lift"), headers=headers).get_json()
    assert same["citizen_id"] == existing[0] and same["possible_duplicates"] == []
    # by id: no look-up, nothing to report
    by_id = {k: v for k, v in appeal_body(FIRST).items() if k != "citizen"} | {"citizen_id": existing[1]}
    assert client.post("/api/v1/appeals", json=by_id, headers=headers).get_json()["possible_duplicates"] == []
    # a number nobody has: registered, nothing to report
    fresh = client.post("/api/v1/appeals", json=appeal_body("Лебедев Олег", "8 916 404-00-01"), headers=headers)
    assert fresh.status_code == 201 and fresh.get_json()["possible_duplicates"] == []
    assert count_citizens() == 4  # NEWCOMER and Лебедев are the only new ones


def test_api_retry_with_the_same_key_looks_nobody_up(client, existing, make_user, api_token):
    headers = {**api_token(make_user("operator")), "Idempotency-Key": "dup-check-0001"}
    refused = client.post("/api/v1/appeals", json=appeal_body(NEWCOMER), headers=headers)
    assert refused.status_code == 409 and sorted(refused.get_json()["citizen_ids"]) == sorted(existing)
    first = client.post("/api/v1/appeals", json=appeal_body(NEWCOMER, confirm_duplicate=True), headers=headers)
    assert first.status_code == 201 and first.get_json()["possible_duplicates"] == []
    searches = len(log(action="citizen.search"))
    again = client.post("/api/v1/appeals", json=appeal_body(NEWCOMER, confirm_duplicate=True), headers=headers)
    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    assert "possible_duplicates" not in again.get_json()
    assert len(log(action="citizen.search")) == searches
    assert count_citizens() == 3


def test_openapi_documents_possible_duplicates(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    created = doc["paths"]["/appeals"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/AppealCreated"}
    schema = doc["components"]["schemas"]["AppealCreated"]
    assert {"$ref": "#/components/schemas/AppealSummary"} in schema["allOf"]
    prop = next(part["properties"]["possible_duplicates"] for part in schema["allOf"] if "properties" in part)
    assert prop["type"] == "array" and prop["items"] == {"type": "string"}
    assert "same phone" in prop["description"]
    assert "possible_duplicates" in doc["paths"]["/appeals"]["post"]["description"]


def test_form_and_api_register_citizens_through_one_service(op, ctx, make_user, api_token, monkeypatch):
    from crm.citizens import services as citizens

    used = []
    real = citizens.register_checked

    def spy(*args, **kwargs):
        used.append(kwargs.get("confirmed_phone"))
        return real(*args, **kwargs)

    monkeypatch.setattr(citizens, "register_checked", spy)
    new_appeal_path(op.post("/citizens", data=citizen_form(phone="8 916 404-55-70")))
    resp = op.post("/api/v1/appeals", json=appeal_body("Лебедев Олег", "8 916 404-55-71"),
                   headers=api_token(make_user("operator")))
    assert resp.status_code == 201, resp.get_json()
    assert used == [None, None] and count_citizens() == 2
