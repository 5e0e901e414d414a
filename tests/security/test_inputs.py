"""Input the layers below cannot take is refused with a 4xx before it reaches them (issue 17 point 6).
Each case answered 500 before (found by tests/fuzz): NUL characters (PostgreSQL), JSON nested deeper
than the parser's recursion limit, ids and integers beyond SQL INTEGER / BIGINT, years 0 and 99999."""
from __future__ import annotations

import pytest

from crm.errors import InvalidInput
from crm.timeutil import parse_day


@pytest.fixture()
def admin(make_user, api_token):
    return api_token(make_user("admin"))


def test_nul_in_json_query_form_and_path_is_refused_400(client, admin, make_user, login):
    resp = client.post("/api/v1/executors", json={"name": "АДС\x00", "kind": "emergency_dispatch"}, headers=admin)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_characters"
    assert "NUL" in resp.get_json()["error"]["message"]
    resp = client.get("/api/v1/appeals", query_string={"citizen_id": "a\x00b"}, headers=admin)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_characters"
    assert client.get("/api/v1/appeals/abc%00def", headers=admin).status_code == 400
    login(make_user("operator"))
    resp = client.post("/operator", data={"phone": "+7912\x00"})
    assert resp.status_code == 400 and "недопустимый символ" in resp.get_data(as_text=True)


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 40 + b"1" + b"}" * 40])
def test_deep_json_is_invalid_json_400(client, admin, body):
    resp = client.post("/api/v1/appeals/search", data=body, headers={**admin, "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_json"


def test_ids_beyond_sql_integer_are_404_and_integers_400(client, admin):
    assert client.get("/api/v1/incidents/11757562066008", headers=admin).status_code == 404
    assert client.post("/api/v1/notifications/2147483648/read", headers=admin).status_code == 404
    resp = client.post("/api/v1/executors", json={"name": "АДС", "kind": "emergency_dispatch",
                                                  "building_ids": [2**63]}, headers=admin)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_building_ids"
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["components"]["schemas"]["ExecutorCreate"]["properties"]["building_ids"]["items"]["maximum"] == 2**31 - 1


def test_absurd_dates_are_400(client, make_user, api_token, admin):
    dpo = api_token(make_user("dpo"))
    assert client.get("/api/v1/audit", query_string={"before_seq": str(2**63)}, headers=dpo).status_code == 400
    assert client.get("/api/v1/audit", query_string={"from": "0001-01-01"}, headers=dpo).status_code == 400
    assert client.get("/api/v1/reports/kpi", query_string={"to": "0001-01-01"}, headers=admin).status_code == 400
    for moment in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59-23:59"):
        resp = client.get("/api/v1/appeals", query_string={"created_from": moment}, headers=admin)
        assert resp.status_code == 400, moment
    resp = client.post("/api/v1/incidents", json={"starts_at": "9999-12-31T23:59:59-23:59", "text": "Нет воды",
                                                  "topic": "cold_water"}, headers=admin)
    assert resp.status_code == 400 and "1900" in resp.get_json()["error"]["message"]
    # a date-time without an offset is the hotline's local time (it reached the UTC column naive: 500)
    resp = client.get("/api/v1/appeals", query_string={"created_from": "2026-03-02T10:00:00"}, headers=admin)
    assert resp.status_code == 200


def test_parse_day_bounds():
    assert parse_day("2026-03-02", "from").year == 2026
    for bad in ("0001-01-01", "9999-12-31", "٢٠٢٦-٠٣-٠٢"):
        with pytest.raises(InvalidInput):
            parse_day(bad, "from")


def test_forms_with_huge_numbers_and_year_one_answer_without_a_server_error(client, make_user, login):
    """Found by tests/fuzz/test_form_fuzz.py: each answered 500."""
    from crm.calls.search import SearchError, parse_bound
    from tests.factories import AppealFactory

    login(make_user("supervisor"))
    assert client.get("/qa/dashboard", query_string={"operator_id": str(10**30)}).status_code == 200
    assert client.get("/qa/dashboard", query_string={"from": "0001-01-01"}).status_code == 200
    resp = client.post("/qa/queue/sample", data={"day": "0001-01-01"})
    assert resp.status_code == 302  # back to the queue with «Проверьте дату.»
    appeal = AppealFactory()
    resp = client.post(f"/appeals/{appeal.id}/assign", data={"executor_id": str(10**30)})
    assert resp.status_code == 302
    resp = client.post("/calls/search", data={"q": "батареи", "start": "0001-01-01"})
    assert resp.status_code == 400
    for bad in ("0001-01-01", "9999-12-31", "0001-01-01T00:00:00"):
        with pytest.raises(SearchError):
            parse_bound(bad, "start", end=True)
