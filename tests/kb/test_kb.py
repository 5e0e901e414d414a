"""Knowledge base and call scripts (issue 15, point 4): articles by topic with versions, Russian
full-text search that finds word forms on PostgreSQL (``russian`` configuration) and on SQLite (FTS5
over the lemmas), the API of design.md and the supervisors' pages. Every JSON answer is checked
against the OpenAPI document by the test client."""
from __future__ import annotations

import secrets

import pytest

from tests.api.test_api import as_role, assert_error  # noqa: F401

HOT_WATER = ("Отключение горячей воды летом",
             "Ежегодно на 10–14 дней отключают подачу горячей воды для профилактики сетей. "
             "Сроки отключения публикует РСО; перерасчёт за дни без горячей воды делается автоматически.")


def _create(client, headers, title=HOT_WATER[0], body=HOT_WATER[1], topic="hot_water", **extra) -> dict:
    resp = client.post("/api/v1/kb/articles", json={"title": title, "body": body, "topic": topic, **extra},
                       headers=headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def _search(client, headers, q: str, **args) -> list[dict]:
    resp = client.get("/api/v1/kb/search", query_string={"q": q, **args}, headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["items"]


# --- search ----------------------------------------------------------------------------------------

def test_search_finds_word_forms(client, as_role):
    """«горячая вода» finds the article that says «горячей воды» (on the suite's database: PostgreSQL
    in CI, SQLite under `make test`); every word must occur; an operator may search."""
    _, sup = as_role("supervisor")
    _, op = as_role("operator")
    article = _create(client, sup)
    _create(client, sup, title="Лифт не работает", body="Сообщите номер подъезда и этаж, где остановился лифт.",
            topic="lift")
    found = _search(client, op, "горячая вода")
    assert [i["id"] for i in found] == [article["id"]]
    assert found[0]["title"] == HOT_WATER[0] and "горячей воды" in found[0]["snippet"]
    assert [i["id"] for i in _search(client, op, "перерасчёты")] == [article["id"]]  # another form again
    assert _search(client, op, "горячая вода лифт") == []  # every word must occur
    assert _search(client, op, "") == []
    assert [i["id"] for i in _search(client, op, "лифта")] != [article["id"]]
    assert _search(client, op, "горячая вода", topic="lift") == []


def test_search_finds_word_forms_on_sqlite_too(tmp_path, app_config):
    """The SQLite path (FTS5 fed with the lemmatiser) on a database of its own, whatever the suite's
    database is: a second app on a fresh SQLite file, migrated from scratch."""
    from flask_migrate import upgrade

    from crm import create_app
    from crm.db import db
    from crm.kb import services as kb
    from tests.factories import UserFactory

    (tmp_path / "keys").symlink_to(app_config["INSTANCE_PATH"] + "/keys")
    cfg = {**app_config, "INSTANCE_PATH": str(tmp_path), "WTF_CSRF_ENABLED": False,
           "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'kb.sqlite3'}", "CRM_KEYSTORE_URL": None}
    cfg = {k: v for k, v in cfg.items() if v is not None}
    lite = create_app(cfg)
    with lite.app_context():
        upgrade()
        assert db.engine.dialect.name == "sqlite"
        sup = UserFactory(role="supervisor", username=f"sup-{secrets.token_hex(3)}")
        db.session.commit()
        a = kb.create(sup, title=HOT_WATER[0], body=HOT_WATER[1], topic="hot_water")
        kb.create(sup, title="Лифт", body="Лифт остановился между этажами.", topic="lift")
        assert [r["id"] for r in kb.search("горячая вода")] == [a.id]
        assert [r["id"] for r in kb.search("Горячую  воду!")] == [a.id]
        # an edit re-indexes (the FTS5 triggers): the old words are gone, the new ones found
        kb.update(sup, a.id, title="Отопление", body="Батареи холодные.", topic="heating")
        assert kb.search("горячая вода") == []
        assert [r["id"] for r in kb.search("холодная батарея")] == [a.id]
        # archived: not found
        kb.set_archived(sup, a.id, True)
        assert kb.search("холодная батарея") == []
        db.session.remove()
        db.engine.dispose()


# --- versions --------------------------------------------------------------------------------------

def test_every_edit_is_a_version_and_an_old_one_can_be_restored(client, as_role):
    sup_user, sup = as_role("supervisor")
    admin_user, admin = as_role("admin")
    a = _create(client, sup)
    assert a["version"] == 1
    url = f"/api/v1/kb/articles/{a['id']}"
    edited = client.put(url, json={"title": "Отключение ГВС", "body": "Новый текст про отопление.", "topic": "heating",
                                   "expected_version": 1}, headers=admin)
    assert edited.status_code == 200 and edited.get_json()["version"] == 2
    # the same text again saves no version
    same = client.put(url, json={"title": "Отключение ГВС", "body": "Новый текст про отопление.", "topic": "heating"},
                      headers=admin)
    assert same.get_json()["version"] == 2
    # an edit from a stale version is refused and writes nothing
    assert_error(client.put(url, json={"title": "x", "body": "y", "topic": None, "expected_version": 1}, headers=sup),
                 409, "stale")
    history = client.get(f"{url}/versions", headers=sup).get_json()["items"]
    assert [v["version"] for v in history] == [2, 1]
    assert history[0]["edited_by"] == admin_user.id and history[1]["edited_by"] == sup_user.id
    assert history[1]["title"] == HOT_WATER[0] and history[1]["topic"] == "hot_water"
    restored = client.post(f"{url}/restore", json={"version": 1}, headers=sup).get_json()
    assert restored["version"] == 3 and restored["title"] == HOT_WATER[0] and restored["topic"] == "hot_water"
    history = client.get(f"{url}/versions", headers=sup).get_json()["items"]
    assert [(v["version"], v["restored_from"]) for v in history] == [(3, 1), (2, None), (1, None)]
    # the search follows the current text
    assert [i["id"] for i in _search(client, sup, "горячая вода")] == [a["id"]]
    assert _search(client, sup, "отопление текст") == []
    assert_error(client.post(f"{url}/restore", json={"version": 9}, headers=sup), 404, "not_found")


def test_versions_pages(client, make_user, login):
    from crm.kb import services as kb

    sup = make_user("supervisor")
    a = kb.create(sup, title="Перерасчёт", body="Первый текст.", topic="billing")
    kb.update(sup, a.id, title="Перерасчёт", body="Второй текст.", topic="billing")
    login(sup)
    page = client.get(f"/kb/{a.id}/versions").get_data(as_text=True)
    assert 'data-version="2"' in page and 'data-version="1"' in page and sup.display_name in page
    assert "Первый текст." in client.get(f"/kb/{a.id}/versions?v=1").get_data(as_text=True)
    resp = client.post(f"/kb/{a.id}/versions/1/restore")
    assert resp.status_code == 302
    assert "Первый текст." in client.get(f"/kb/{a.id}").get_data(as_text=True)
    assert kb.get(a.id).version == 3


# --- permissions and input -------------------------------------------------------------------------

def test_operator_cannot_edit(client, as_role, make_user, login):
    _, sup = as_role("supervisor")
    _, op = as_role("operator")
    a = _create(client, sup)
    assert_error(client.post("/api/v1/kb/articles", json={"title": "t", "body": "b", "topic": None}, headers=op),
                 403, "forbidden")
    assert_error(client.put(f"/api/v1/kb/articles/{a['id']}", json={"title": "t", "body": "b", "topic": None},
                            headers=op), 403, "forbidden")
    assert_error(client.post(f"/api/v1/kb/articles/{a['id']}/restore", json={"version": 1}, headers=op), 403,
                 "forbidden")
    from crm.kb import services as kb
    from crm.security.permissions import PermissionDenied

    operator = make_user("operator")
    with pytest.raises(PermissionDenied):
        kb.update(operator, a["id"], title="t", body="b", topic=None)
    assert kb.get(a["id"]).version == 1
    login(operator)
    assert client.get(f"/kb/{a['id']}/edit").status_code == 403
    assert client.post(f"/kb/{a['id']}/edit", data={"title": "t", "body": "b"}).status_code == 403
    assert client.get("/kb/new").status_code == 403
    page = client.get(f"/kb/{a['id']}")  # reading is allowed
    assert page.status_code == 200 and "Редактировать" not in page.get_data(as_text=True)
    assert kb.get(a["id"]).version == 1 and len(kb.versions(a["id"])) == 1


def test_bad_input_is_refused_and_writes_nothing(client, as_role):
    from crm.kb import services as kb

    _, sup = as_role("supervisor")
    assert_error(client.post("/api/v1/kb/articles", json={"title": " ", "body": "b", "topic": None}, headers=sup),
                 400, "invalid_title")
    assert_error(client.post("/api/v1/kb/articles", json={"title": "t", "body": "b", "topic": "weather"}, headers=sup),
                 400)
    assert_error(client.post("/api/v1/kb/articles", json={"title": "t", "body": "b", "topic": None, "kind": "hint"},
                             headers=sup), 400, "invalid_building_id")
    assert_error(client.post("/api/v1/kb/articles", json={"title": "t", "body": "b", "topic": None,
                                                          "building_id": 1}, headers=sup), 400, "invalid_building_id")
    assert_error(client.get("/api/v1/kb/search", query_string={"q": "в" * 201}, headers=sup), 400)
    assert kb.list_articles() == []


def test_supervisor_pages_create_and_edit(client, make_user, login):
    from crm.kb import services as kb

    sup = make_user("supervisor")
    login(sup)
    assert client.get("/kb").status_code == 200
    resp = client.post("/kb/new", data={"kind": "article", "topic": "hot_water", "title": "ГВС",
                                        "body": "Нет горячей воды — проверьте отключения."})
    assert resp.status_code == 302
    (a,) = kb.list_articles()
    empty = client.post(f"/kb/{a.id}/edit", data={"kind": "article", "topic": "hot_water", "title": "ГВС", "body": " ",
                                                  "expected_version": "1"})
    assert empty.status_code == 422 and "Текст не может быть пустым" in empty.get_data(as_text=True)
    assert kb.get(a.id).version == 1
    ok = client.post(f"/kb/{a.id}/edit", data={"kind": "article", "topic": "hot_water", "title": "ГВС",
                                               "body": "Новый текст.", "expected_version": "1"})
    assert ok.status_code == 302 and kb.get(a.id).version == 2
    found = client.get("/kb", query_string={"q": "новые тексты"}).get_data(as_text=True)
    assert f'data-id="{a.id}"' in found


def test_building_hints_and_the_intake_panel(client, make_user, login):
    from crm.buildings import services as buildings
    from crm.kb import services as kb

    buildings.import_csv("address\n\"ул. Ленина, 5\"\n\"ул. Ленина, 7\"\n".encode())
    five, seven = buildings.find("ул. Ленина, 5"), buildings.find("ул. Ленина, 7")
    sup = make_user("supervisor")
    kb.create(sup, kind="script", topic="hot_water", title="Сценарий: нет горячей воды",
              body="Начало: «горячая линия»\nУточните, есть ли вода у соседей: «у соседей есть вода»")
    kb.create(sup, topic="hot_water", title="Плановые отключения ГВС", body="Летом воду отключают на 14 дней.")
    kb.create(sup, topic="lift", title="Лифт", body="Про лифт.")
    kb.create(sup, kind="hint", building_id=five.id, topic=None, title="Ключи от подвала",
              body="Ключи у старшего по дому, кв. 1.")
    op = make_user("operator")
    login(op)
    html = client.get("/kb/panel", query_string={"topic": "hot_water", "building_id": five.id}).get_data(as_text=True)
    assert "Сценарий: нет горячей воды" in html and "Плановые отключения ГВС" in html and "Ключи от подвала" in html
    assert "Про лифт" not in html
    html = client.get("/kb/panel", query_string={"topic": "hot_water", "building_id": seven.id}).get_data(as_text=True)
    assert "Ключи от подвала" not in html and "Плановые отключения ГВС" in html
    html = client.get("/kb/panel", query_string={"topic": "lift"}).get_data(as_text=True)
    assert "Про лифт" in html and "Сценарий: нет горячей воды" not in html


def test_an_edit_without_kind_keeps_it_and_ids_out_of_range_are_not_found(client, as_role, make_user, login):
    _, sup = as_role("supervisor")
    script = _create(client, sup, title="Сценарий", body="Завершение: «всего доброго»", kind="script")
    edited = client.put(f"/api/v1/kb/articles/{script['id']}", json={"title": "Сценарий", "body": "Начало: «добрый день»",
                                                                    "topic": "hot_water"}, headers=sup).get_json()
    assert edited["kind"] == "script" and edited["lines"][0]["stage"] == "opening"
    big = 2**40
    assert_error(client.get(f"/api/v1/kb/articles/{big}", headers=sup), 404, "not_found")
    assert_error(client.post(f"/api/v1/kb/articles/{script['id']}/restore", json={"version": big}, headers=sup), 404)
    assert_error(client.post("/api/v1/kb/articles", json={"title": "t", "body": "b", "topic": None, "kind": "hint",
                                                          "building_id": big}, headers=sup), 400, "invalid_building_id")
    login(make_user("supervisor"))
    assert client.get(f"/kb/{big}").status_code == 404
    assert client.get(f"/kb/{script['id']}/versions?v={big}").status_code == 404
    assert client.get("/kb/panel", query_string={"topic": "hot_water", "building_id": str(big)}).status_code == 200


def test_demo_data_brings_a_knowledge_base_once(ctx):
    from crm.demo import DEMO_KB, load_demo
    from crm.kb import services as kb

    out = load_demo(with_call=False)
    assert any("knowledge base" in line for line in out)
    assert len(kb.list_articles()) == len(DEMO_KB)
    assert [r["title"] for r in kb.search("горячая вода", kind="article")] == ["Сколько может не быть горячей воды"]
    assert [line["stage"] for line in kb.script_lines_for("hot_water")] == ["opening", "closing", "closing"]
    load_demo(with_call=False)
    assert len(kb.list_articles()) == len(DEMO_KB)
