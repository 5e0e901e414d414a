"""Finding appeals (issue 14, point 1): ``GET /api/v1/appeals`` / ``POST /api/v1/appeals/search`` and the
appeal list page: filters, the free-text ``q`` (number, phone, surname, address through blind indexes),
keyset paging that reaches every appeal once, the nearest-deadline order, and the access log of a search
(its kind, never the values). Answers are validated against the OpenAPI document by the test client."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.appeals.test_appeal_deadlines import move, now
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CitizenFactory


@pytest.fixture()
def operator(make_user):
    return make_user("operator")


@pytest.fixture()
def api(ctx, api_token, operator):
    client, headers = SharedContextClient(ctx), api_token(operator)

    class Api:
        def get(self, url, **params):
            return client.get(url, query_string=params, headers=headers)

        def post(self, url, json):
            return client.post(url, json=json, headers=headers)
    return Api()


def follow(api, **params) -> tuple[list[dict], list[int]]:
    """Every item of every page (following next_cursor), and each page's total."""
    items, totals, cursor = [], [], None
    while True:
        resp = api.get("/api/v1/appeals", **params, **({"cursor": cursor} if cursor else {}))
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        body = resp.get_json()
        items += body["items"]
        totals.append(body["total"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items, totals


def search_log():
    from tests.api.test_api import log_entries

    return log_entries(action="appeal.search")


def test_every_appeal_reached_once_across_pages(ctx, api, operator):
    citizen = CitizenFactory()
    made = [AppealFactory(citizen=citizen, operator=operator) for _ in range(250)]
    items, totals = follow(api, limit=100, sort="created")
    assert len(items) == 250 and totals == [250, 250, 250]
    assert [i["id"] for i in items] == [a.id for a in sorted(made, key=lambda a: (a.created_at, a.id))]
    # the default order too: nearest deadline first, every appeal once
    items, totals = follow(api, limit=60)
    assert sorted(i["id"] for i in items) == sorted(a.id for a in made) and set(totals) == {250}
    dues = [i["next_deadline"]["due"] for i in items]
    assert dues == sorted(dues)


def test_paging_is_stable_while_appeals_are_added(ctx, api, operator):
    citizen = CitizenFactory()
    first = [AppealFactory(citizen=citizen, operator=operator) for _ in range(5)]
    page1 = api.get("/api/v1/appeals", limit=3, sort="created").get_json()
    added = AppealFactory(citizen=citizen, operator=operator)
    page2 = api.get("/api/v1/appeals", limit=3, sort="created", cursor=page1["next_cursor"]).get_json()
    seen = [i["id"] for i in page1["items"] + page2["items"]]
    assert seen == [a.id for a in first] + [added.id]


def test_default_order_is_the_nearest_pending_deadline(ctx, api, operator):
    a, b, c = (AppealFactory(operator=operator) for _ in range(3))
    move(a, escalate_by=now() + timedelta(hours=5), update_by=now() + timedelta(hours=6))
    move(b, escalate_by=now() - timedelta(hours=1))  # overdue: first
    move(c, status="closed")  # nothing pending: last
    ids = [i["id"] for i in api.get("/api/v1/appeals").get_json()["items"]]
    assert ids[0] == b.id and ids[-1] == c.id and ids.index(a.id) == 1


def test_filters(ctx, api, operator, make_user):
    other = make_user("operator")
    a = AppealFactory(operator=operator, category="emergency", topic="electricity")
    b = AppealFactory(operator=other, topic="hot_water")
    c = AppealFactory(operator=other, topic="cold_water")
    move(b, status="in_progress", resolve_by=now() - timedelta(minutes=5), update_by=now() + timedelta(hours=3))
    move(c, created_at=now() - timedelta(days=40), repeat_of_id=a.id)

    def ids(**params):
        return {i["id"] for i in follow(api, **params)[0]}
    assert ids(status="in_progress") == {b.id}
    assert ids(status=["in_progress", "received"]) == {a.id, b.id, c.id}
    assert ids(category="emergency") == {a.id}
    assert ids(topic="cold_water") == {c.id}
    assert ids(operator_id=other.id) == {b.id, c.id}
    assert ids(overdue="true") == {b.id}
    assert ids(repeat="true") == {c.id} and ids(repeat="false") == {a.id, b.id}
    assert ids(created_to=(now() - timedelta(days=1)).isoformat()) == {c.id}
    assert ids(created_from=(now() - timedelta(days=1)).isoformat()) == {a.id, b.id}
    assert ids(citizen_id=a.citizen_id) == {a.id}
    resp = api.get("/api/v1/appeals", status="nonsense")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_status"


def test_executor_filter_and_an_executors_own_appeals(ctx, api, operator, make_user, api_token):
    from crm.appeals import services
    from crm.executors import services as executors
    from tests.clients import SharedContextClient

    mine, other, unassigned = (AppealFactory(operator=operator) for _ in range(3))
    ads = executors.create(name="АДС Центр", kind="emergency_dispatch")
    services.assign(mine, ads.id, user_id=operator.id)
    assert {i["id"] for i in follow(api, executor_id=ads.id)[0]} == {mine.id}
    worker = make_user("executor")
    worker.executor_id = ads.id
    from crm.db import db
    db.session.commit()
    client, headers = SharedContextClient(ctx), api_token(worker)
    body = client.get("/api/v1/appeals", headers=headers).get_json()
    assert [i["id"] for i in body["items"]] == [mine.id] and body["total"] == 1


def test_q_by_number_phone_surname_and_address(ctx, api, operator):
    petrov = CitizenFactory(full_name="Петров Иван Сергеевич", phone="+7 915 111-22-33",
                            address="г. Тверь, ул. Садовая, д. 5")
    sidorova = CitizenFactory(full_name="Сидорова Анна", phone="+7 915 444-55-66", address="г. Тверь, ул. Ленина, д. 1")
    a = AppealFactory(citizen=petrov, operator=operator)
    b = AppealFactory(citizen=sidorova, operator=operator)

    def ids(q):
        return {i["id"] for i in follow(api, q=q)[0]}
    assert ids(a.number) == {a.id}
    year, n = b.number.split("-")
    assert ids(f"{year}-{int(n)}") == {b.id}
    assert ids("8 (915) 111 22 33") == {a.id}
    assert ids("+79154445566") == {b.id}
    assert ids("петров") == {a.id}
    assert ids("Сидорова А.") == {b.id}
    assert ids("Г. ТВЕРЬ, УЛ. САДОВАЯ, Д. 5") == {a.id}  # the building index: case and ё ignored
    assert ids("Кузнецов") == set()
    # the same through POST (no phone in the URL)
    resp = api.post("/api/v1/appeals/search", json={"q": "8 915 111-22-33", "limit": 10})
    assert resp.status_code == 200 and [i["id"] for i in resp.get_json()["items"]] == [a.id]
    resp = api.get("/api/v1/appeals", q="12")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_q"


def test_search_is_logged_without_the_values(ctx, api, operator):
    citizen = CitizenFactory(full_name="Петров Иван", phone="+7 915 111-22-33")
    other = CitizenFactory(full_name="Петров Олег", phone="+7 915 111-22-44")
    AppealFactory(citizen=citizen, operator=operator)
    AppealFactory(citizen=other, operator=operator, topic="lift")
    before = len(search_log())
    api.get("/api/v1/appeals", q="+7 915 111-22-33", status="received")
    api.post("/api/v1/appeals/search", json={"q": "Петров"})
    api.get("/api/v1/appeals", q="+7 915 999-99-99")
    api.get("/api/v1/appeals", overdue="true")
    entries = search_log()[before:]
    assert [(e.detail, e.citizen_id, e.outcome) for e in entries] == [
        ("q=phone;filters=statuses;sort=deadline", citizen.id, "ok"),
        *sorted([("q=name_or_address;sort=deadline", c.id, "ok") for c in (citizen, other)],
                key=lambda t: [x.citizen_id for x in entries[1:3]].index(t[1])),
        ("q=phone;sort=deadline", None, "not_found"),
        ("filters=overdue;sort=deadline", None, "not_found")]
    assert entries[0].fields == "phone" and entries[1].fields == "address,full_name"
    assert {e.actor_id for e in entries} == {operator.id}
    for e in entries:
        text = " ".join(str(getattr(e, c.name)) for c in e.__table__.columns)
        assert not any(v in text for v in ("111-22", "1112233", "9999999", "Петров", "петров"))


def test_bad_cursor_and_limit(ctx, api, operator):
    AppealFactory(operator=operator)
    resp = api.get("/api/v1/appeals", cursor="garbage!")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_cursor"
    other_sort = api.get("/api/v1/appeals", limit=1, sort="created")
    assert other_sort.get_json()["next_cursor"] is None
    cur = base64.urlsafe_b64encode(b'["created","2026-01-01T00:00:00+00:00","x",0]').decode()
    resp = api.get("/api/v1/appeals", cursor=cur)  # a cursor of another sort
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_cursor"
    assert api.get("/api/v1/appeals", limit=201).status_code == 400


# --- the list page and the citizen card -------------------------------------------------------------

@pytest.fixture()
def page(ctx, operator):
    return SharedContextClient(ctx, operator)


def test_list_page_pages_through_every_appeal_with_n_of_m(ctx, page, operator):
    import re

    citizen = CitizenFactory()
    made = {AppealFactory(citizen=citizen, operator=operator).number for _ in range(120)}
    seen, url, positions = [], "/appeals", []
    while url:
        html = page.get(url).get_data(as_text=True)
        positions.append(re.search(r'id="page-position">([^<]+)<', html).group(1))
        seen += re.findall(r">(\d{4}-\d{6})</a>", html)
        nxt = re.search(r'id="next-page" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert sorted(seen) == sorted(made) and len(seen) == 120
    assert positions == ["1–50 из 120", "51–100 из 120", "101–120 из 120"]


def test_phone_search_is_posted_and_opens_the_citizen_card(ctx, page, operator):
    import re

    from crm.consent import services as consent

    citizen = CitizenFactory(full_name="Орлова Мария", phone="+7 915 123-45-67")
    old = AppealFactory(citizen=citizen, operator=operator, topic="lift")
    new = AppealFactory(citizen=citizen, operator=operator)
    move(old, status="in_progress")
    move(new, status="closed")
    consent.record(citizen, "sms_notifications", channel="call", operator_id=operator.id)
    resp = page.post("/appeals", data={"q": "8 915 123 45 67"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "1–2 из 2" in html and "915" not in resp.request.url
    card_url = re.search(r'href="(/citizens/[^"]+)">Орлова Мария</a>', html).group(1)
    card = page.get(card_url).get_data(as_text=True)
    assert "Орлова Мария" in card and "SMS-уведомления о статусе заявки" in card
    assert card.index(old.number) < card.index(new.number)  # open first
    assert re.search(r'id="new-appeal" accesskey="n" href="/citizens/%s/appeals/new"' % citizen.id, card)


def test_list_filters_on_the_page_and_a_bad_status(ctx, page, operator):
    a = AppealFactory(operator=operator)
    b = AppealFactory(operator=operator, topic="lift")
    move(b, escalate_by=now() - timedelta(minutes=1))
    html = page.get("/appeals", query_string={"overdue": "1"}).get_data(as_text=True)
    assert b.number in html and a.number not in html and "1–1 из 1" in html
    html = page.get("/appeals", query_string={"topic": "heating"}).get_data(as_text=True)
    assert a.number in html and b.number not in html
    resp = page.get("/appeals", query_string={"date_from": "junk"})
    assert resp.status_code == 400 and "не дата" in resp.get_data(as_text=True)


def test_supervisor_has_the_list_and_the_card(ctx, make_user):
    supervisor = make_user("supervisor")
    client = SharedContextClient(ctx, supervisor)
    appeal = AppealFactory()
    home = client.get("/appeals").get_data(as_text=True)
    assert 'href="/appeals">Заявки</a>' in home and appeal.number in home
    card = client.get(f"/citizens/{appeal.citizen_id}").get_data(as_text=True)
    assert appeal.number in card and 'id="new-appeal"' not in card  # supervisors do not register appeals


def test_due_soon_and_newest_first(ctx, api, operator):
    a, b, c = (AppealFactory(operator=operator) for _ in range(3))
    for appeal in (a, b, c):  # only the escalation clock differs: 2 h, 2 days, overdue
        move(appeal, update_by=now() + timedelta(days=5), resolve_by=now() + timedelta(days=9))
    move(a, escalate_by=now() + timedelta(hours=2))
    move(b, escalate_by=now() + timedelta(days=2))
    move(c, escalate_by=now() - timedelta(hours=1))
    assert {i["id"] for i in follow(api, due_soon="true")[0]} == {a.id}
    newest = [i["id"] for i in follow(api, sort="-created", limit=1)[0]]
    assert newest == [c.id, b.id, a.id]


def test_generated_nearest_deadline_agrees_with_next_deadline(ctx, operator):
    """The database's ``nearest_deadline`` (migration 0019, the lists' sort key) is the ``due`` of
    :func:`next_deadline` for every status and category, or 9999-01-01 when nothing is pending."""
    from crm.appeals import services
    from crm.appeals.catalog import CATEGORIES, STATUSES
    from crm.appeals.models import Appeal
    from crm.db import db

    made = []
    for category in CATEGORIES:
        for status in STATUSES:
            a = AppealFactory(operator=operator, category=category)
            move(a, status=status, update_by=now() + timedelta(minutes=len(made)))
            made.append(a)
    db.session.expire_all()
    sql = services.deadline_expr()
    for a in made:
        expected = services.next_deadline(a)
        want = expected.due if expected else services.NO_DEADLINE
        assert a.nearest_deadline == want, (a.category, a.status)
        computed = db.session.execute(sa.select(sql).where(Appeal.id == a.id)).scalar_one()
        assert computed == want, (a.category, a.status)


def test_q_in_the_url_still_works_but_is_deprecated_for_the_post(ctx, api, operator):
    """design.md keeps ``GET /appeals?q=`` (change only by adding); a phone, name or address in a URL
    leaks into proxies' and clients' logs, so such answers point to POST /appeals/search (RFC 9745
    ``Deprecation``, RFC 8594 ``Link``). Filters without ``q`` are not personal: no header."""
    citizen = CitizenFactory(full_name="Петров Иван", phone="+7 915 111-22-33")
    a = AppealFactory(citizen=citizen, operator=operator)
    resp = api.get("/api/v1/appeals", q="8 915 111-22-33")
    assert resp.status_code == 200 and [i["id"] for i in resp.get_json()["items"]] == [a.id]
    assert resp.headers["Deprecation"].startswith("@")
    assert resp.headers["Link"] == '</api/v1/appeals/search>; rel="successor-version"'
    for resp in (api.get("/api/v1/appeals", status="received"),
                 api.post("/api/v1/appeals/search", json={"q": "8 915 111-22-33"})):
        assert resp.status_code == 200 and "Deprecation" not in resp.headers and "Link" not in resp.headers
    doc = api.get("/api/v1/openapi.json").get_json()
    headers = doc["paths"]["/appeals"]["get"]["responses"]["200"]["headers"]
    assert {"Deprecation", "Link"} <= set(headers)
