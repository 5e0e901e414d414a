"""The JSON API, part 3: consents (record, list, withdraw) and the access log for the DPO."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.api.test_api import as_role, assert_error  # noqa: F401  (as_role is a fixture)
from tests.factories import CitizenFactory

NAME, PHONE = "Кузнецова Мария Андреевна", "+7 916 555-44-33"


@pytest.fixture()
def citizen(ctx):
    return CitizenFactory(full_name=NAME, phone=PHONE, address="г. Казань, ул. Баумана, д. 1")


# --- consent --------------------------------------------------------------------------------------

@pytest.mark.parametrize("purpose", ["appeal_processing", "sms_notifications", "csat_survey", "call_recording_qa"])
def test_record_each_purpose(client, as_role, citizen, purpose):
    _, op = as_role("operator")
    resp = client.post(f"/api/v1/citizens/{citizen.id}/consents", json={"purpose": purpose, "channel": "call"},
                       headers=op)
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["id"] and data["purpose"] == purpose and data["status"] == "active"
    assert data["citizen_id"] == citizen.id and len(data["text_hash"]) == 64


def test_record_list_withdraw(client, as_role, citizen):
    from crm.consent import services as consent

    op_user, op = as_role("operator")
    _, dpo = as_role("dpo")
    body = {"purpose": "sms_notifications", "text_version": "sms-2026-1", "channel": "call"}
    created = client.post(f"/api/v1/citizens/{citizen.id}/consents", json=body, headers=op).get_json()
    assert created["text_version"] == "sms-2026-1" and created["channel"] == "call"
    assert consent.has_consent(citizen.id, "sms_notifications")
    listed = client.get(f"/api/v1/citizens/{citizen.id}/consents", headers=dpo).get_json()["items"]
    assert [c["id"] for c in listed] == [created["id"]]

    resp = client.post(f"/api/v1/consents/{created['id']}/withdraw", json={"channel": "call"}, headers=op)
    assert resp.status_code == 200, resp.get_json()
    withdrawn = resp.get_json()
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawn_at"]
    assert not consent.has_consent(citizen.id, "sms_notifications")
    event = consent.get(created["id"])
    assert event.withdrawn_channel == "call" and event.withdrawn_by == op_user.id
    # again, by the DPO and without a body: still withdrawn, the first time kept
    again = client.post(f"/api/v1/consents/{created['id']}/withdraw", headers=dpo)
    assert again.status_code == 200 and again.get_json()["withdrawn_at"] == withdrawn["withdrawn_at"]


def test_refusal_is_recorded(client, as_role, citizen):
    _, op = as_role("operator")
    resp = client.post(f"/api/v1/citizens/{citizen.id}/consents",
                       json={"purpose": "call_recording_qa", "given": False}, headers=op)
    assert resp.status_code == 201 and resp.get_json()["status"] == "refused"


@pytest.mark.parametrize("body, code", [
    ({"purpose": "marketing"}, "invalid_purpose"),
    ({"purpose": "sms_notifications", "text_version": "sms-1999"}, "invalid_text_version"),
    ({"purpose": "sms_notifications", "channel": "telepathy"}, "invalid_channel"),
    ({"purpose": "sms_notifications", "given": "yes"}, "invalid_given"),
    ({"text_version": "sms-2026-1"}, "invalid_purpose"),
    ({"purpose": 7}, "invalid_purpose"),
])
def test_bad_consent_is_400(client, as_role, citizen, body, code):
    from crm.consent import services as consent

    _, op = as_role("operator")
    err = assert_error(client.post(f"/api/v1/citizens/{citizen.id}/consents", json=body, headers=op), 400, code)
    assert err["message"]
    assert consent.for_citizen(citizen.id) == []


def test_consent_unknown_ids_404(client, as_role, citizen):
    _, op = as_role("operator")
    assert_error(client.post("/api/v1/citizens/nope/consents", json={"purpose": "csat_survey"}, headers=op), 404)
    assert_error(client.post(f"/api/v1/citizens/{citizen.id}/consents",
                             json={"purpose": "csat_survey", "evidence_call_id": "nope"}, headers=op),
                 404, "call_not_found")
    assert_error(client.post("/api/v1/consents/nope/withdraw", headers=op), 404, "not_found")
    assert_error(client.get("/api/v1/citizens/nope/consents", headers=op), 404)


def test_withdraw_bad_channel_or_json_is_400(client, as_role, citizen):
    _, op = as_role("operator")
    cid = client.post(f"/api/v1/citizens/{citizen.id}/consents", json={"purpose": "csat_survey"},
                      headers=op).get_json()["id"]
    assert_error(client.post(f"/api/v1/consents/{cid}/withdraw", json={"channel": "fax"}, headers=op),
                 400, "invalid_channel")
    assert_error(client.post(f"/api/v1/consents/{cid}/withdraw", data="{", content_type="application/json",
                             headers=op), 400, "invalid_json")
    assert client.get(f"/api/v1/citizens/{citizen.id}/consents", headers=op).get_json()["items"][0]["status"] == "active"


def test_erased_citizen_consent_is_409(client, as_role, citizen):
    from crm.db import db, utcnow

    _, op = as_role("operator")
    citizen.erased_at = utcnow()  # as the erasure job leaves it
    db.session.commit()
    err = assert_error(client.post(f"/api/v1/citizens/{citizen.id}/consents", json={"purpose": "csat_survey"},
                                   headers=op), 409, "erased")
    assert "уничтожены" in err["message"]


# --- the access log -------------------------------------------------------------------------------

def test_audit_is_for_the_dpo_only(client, as_role):
    for role in ("operator", "supervisor", "admin"):
        _, headers = as_role(role)
        assert_error(client.get("/api/v1/audit", headers=headers), 403, "forbidden")
    _, dpo = as_role("dpo")
    assert client.get("/api/v1/audit", headers=dpo).status_code == 200


def test_reading_a_citizen_via_api_shows_in_the_audit(client, as_role, citizen):
    op_user, op = as_role("operator")
    _, dpo = as_role("dpo")
    assert client.get(f"/api/v1/citizens/{citizen.id}", headers=op).status_code == 200
    resp = client.get("/api/v1/audit", query_string={"citizen_id": citizen.id}, headers=dpo)
    assert resp.status_code == 200
    page = resp.get_json()
    items = page["items"]
    assert [e["seq"] for e in items] == sorted((e["seq"] for e in items), reverse=True)  # newest first
    newest = items[0]
    assert newest["action"] == "citizen.view" and newest["actor"] == op_user.username
    assert newest["actor_role"] == "operator" and newest["citizen_id"] == citizen.id
    assert sorted(newest["fields"]) == ["full_name", "phone"] and newest["purpose"] == "appeal_processing"
    assert datetime.fromisoformat(newest["at"]).utcoffset() is not None and len(newest["hash"]) == 64
    assert {e["action"] for e in items} >= {"citizen.create", "citizen.view"}
    text = resp.get_data(as_text=True)
    for value in ("Кузнецова", "555-44-33", "79165554433", "Баумана"):  # ids and field names, never values
        assert value not in text
    assert page["next_before_seq"] is None


def test_audit_filters_and_paging(client, as_role, citizen):
    op_user, op = as_role("operator")
    _, dpo = as_role("dpo")
    for _ in range(3):
        client.get(f"/api/v1/citizens/{citizen.id}", headers=op)
    views = client.get("/api/v1/audit", query_string={"action": "citizen.view", "actor": op_user.username},
                       headers=dpo).get_json()["items"]
    assert len(views) == 3 and all(e["action"] == "citizen.view" for e in views)
    first = client.get("/api/v1/audit", query_string={"action": "citizen.view", "limit": 2}, headers=dpo).get_json()
    assert len(first["items"]) == 2 and first["next_before_seq"] == first["items"][-1]["seq"]
    rest = client.get("/api/v1/audit", query_string={"action": "citizen.view", "limit": 2,
                                                     "before_seq": first["next_before_seq"]}, headers=dpo).get_json()
    assert [e["seq"] for e in first["items"] + rest["items"]] == [e["seq"] for e in views]
    assert rest["next_before_seq"] is None

    today = datetime.now(ZoneInfo("Europe/Moscow")).date()
    q = {"action": "citizen.view"}
    assert len(client.get("/api/v1/audit", query_string={**q, "from": today.isoformat(), "to": today.isoformat()},
                          headers=dpo).get_json()["items"]) == 3
    assert client.get("/api/v1/audit", query_string={**q, "to": (today - timedelta(days=1)).isoformat()},
                      headers=dpo).get_json()["items"] == []
    assert client.get("/api/v1/audit", query_string={**q, "from": (today + timedelta(days=1)).isoformat()},
                      headers=dpo).get_json()["items"] == []
    assert client.get("/api/v1/audit", query_string={"citizen_id": "nobody"}, headers=dpo).get_json()["items"] == []


@pytest.mark.parametrize("query, code", [
    ({"from": "yesterday"}, "invalid_from"),
    ({"to": "2026-02-30"}, "invalid_to"),
    ({"limit": "0"}, "invalid_limit"),
    ({"limit": "501"}, "invalid_limit"),
    ({"limit": "ten"}, "invalid_limit"),
    ({"before_seq": "-1"}, "invalid_before_seq"),
])
def test_audit_bad_parameters_are_400(client, as_role, query, code):
    _, dpo = as_role("dpo")
    assert_error(client.get("/api/v1/audit", query_string=query, headers=dpo), 400, code)
