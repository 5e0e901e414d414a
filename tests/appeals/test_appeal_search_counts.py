"""The appeal lists' count of matches at scale (bench/appeals.py): counted up to CRM_SEARCH_COUNT_CAP
only («более …»), once on the first page (the cursor carries it to the next pages), exactly on the
last page; and keyset paging across rows that share the sort key (the cursor's bound ``key >= v``
that lets an index seek to a deep page)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.appeals.test_appeal_deadlines import move, now
from tests.appeals.test_appeal_search import api, follow, operator  # noqa: F401 (api and operator are fixtures)
from tests.factories import AppealFactory, CitizenFactory


@pytest.fixture()
def count_queries(ctx):
    """The number of ``count(*)`` statements sent, as a list one can read at any moment."""
    from crm.db import db

    seen = []

    def on_execute(conn, cursor, statement, *_):
        if "count(" in statement.lower() and "appeals" in statement.lower():
            seen.append(statement)
    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", on_execute)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", on_execute)


def test_the_count_stops_at_the_cap_and_is_made_once(ctx, api, operator, monkeypatch, count_queries):
    monkeypatch.setitem(ctx.config, "CRM_SEARCH_COUNT_CAP", 5)
    citizen = CitizenFactory()
    made = [AppealFactory(citizen=citizen, operator=operator) for _ in range(12)]
    pages, cursor = [], None
    while True:
        body = api.get("/api/v1/appeals", limit=3, sort="created", **({"cursor": cursor} if cursor else {})).get_json()
        pages.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [i["id"] for p in pages for i in p["items"]] == [a.id for a in sorted(made, key=lambda a: (a.created_at, a.id))]
    # more than the cap: «at least 5» until the last page, which knows the exact number
    assert [(p["total"], p["total_capped"]) for p in pages] == [(5, True), (6, True), (9, True), (12, False)]
    assert len(count_queries) == 1  # the first page's; the next pages read it from the cursor


def test_no_count_when_one_page_holds_every_match(ctx, api, operator, count_queries):
    a = AppealFactory(operator=operator)
    AppealFactory(operator=operator)
    body = api.get("/api/v1/appeals", q=a.number).get_json()
    assert [i["id"] for i in body["items"]] == [a.id] and (body["total"], body["total_capped"]) == (1, False)
    body = api.get("/api/v1/appeals", limit=5).get_json()
    assert (body["total"], body["total_capped"]) == (2, False)
    assert count_queries == []


def test_the_list_page_says_more_than(ctx, client, login, operator, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_SEARCH_COUNT_CAP", 3)
    citizen = CitizenFactory()
    for _ in range(5):
        AppealFactory(citizen=citizen, operator=operator)
    login(operator)
    monkeypatch.setattr("crm.appeals.views.PAGE_SIZE", 2)
    body = client.get("/appeals").get_data(as_text=True)
    assert "1–2 из более чем 3" in body


def test_paging_across_equal_sort_keys(ctx, api, operator):
    """Appeals created at the same instant (and so sharing nearest deadlines): the cursor's bound
    keeps the ties after the last one shown, each reached once, in id order."""
    citizen = CitizenFactory()
    made = [AppealFactory(citizen=citizen, operator=operator) for _ in range(7)]
    same = now()
    for a in made:
        move(a, created_at=same, escalate_by=same, update_by=same, resolve_by=same)
    for sort in ("created", "-created", "deadline"):
        items, _ = follow(api, limit=2, sort=sort)
        ids = [i["id"] for i in items]
        assert sorted(ids) == sorted(a.id for a in made) and len(ids) == 7
        assert ids == sorted(ids, reverse=sort.startswith("-"))
