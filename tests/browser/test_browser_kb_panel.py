"""The knowledge base beside the intake form (issue 15, point 4), in headless Chromium: the caller's
house brings its hints at once; choosing a topic shows that topic's call script and articles, and
choosing another topic replaces them. A supervisor writes the entries through the service."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from tests.core.test_pages import clean_side_effects  # noqa: F401  (fixture)
from tests.factories import CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.fixture()
def knowledge(ctx, make_user):
    from crm.buildings.services import find, import_csv
    from crm.db import db
    from crm.kb import services as kb

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 15\"\n".encode())
    five, fifteen = find("москва ул ленина 5"), find("москва ул ленина 15")
    sup = make_user("supervisor")
    kb.create(sup, kind="script", topic="hot_water", title="Сценарий: нет горячей воды",
              body="Начало: Здравствуйте, «горячая линия ЖКХ», оператор (имя).\n"
                   "Уточните, есть ли горячая вода у соседей: «у соседей»\n"
                   "Завершение: «Номер вашего обращения» …")
    kb.create(sup, topic="hot_water", title="Плановое отключение ГВС", body="Летом горячую воду отключают на 14 дней.")
    kb.create(sup, topic="lift", title="Лифт остановился", body="Спросите, есть ли люди в кабине.")
    kb.create(sup, kind="hint", building_id=five.id, topic=None, title="Ключи от подвала",
              body="Ключи у старшего по дому.")
    kb.create(sup, kind="hint", building_id=fifteen.id, topic=None, title="Дом 15: домофон",
              body="Домофон обслуживает другая компания.")
    username = f"op_{secrets.token_hex(3)}"
    make_user("operator", username=username)
    citizen = CitizenFactory(full_name="Кнопкина Анна Ивановна", address="Москва, улица Ленина, дом 5")
    out = {"username": username, "citizen_id": citizen.id}
    db.session.commit()
    db.session.remove()
    return out


def test_the_topic_brings_its_script_and_articles_beside_the_form(ctx, new_page, sign_in, knowledge,
                                                                   clean_side_effects):  # noqa: F811
    page = sign_in(new_page(viewport={"width": 1280, "height": 900}), knowledge["username"])
    page.goto(f"/citizens/{knowledge['citizen_id']}/appeals/new")
    panel = page.locator("#kb-panel")
    # the caller's house is known: its hint is there before a topic is chosen; the other house's is not
    panel.locator("[data-kb-hint]").first.wait_for()
    assert "Ключи от подвала" in panel.inner_text() and "Дом 15" not in panel.inner_text()
    assert "Сценарий: нет горячей воды" not in panel.inner_text()
    # the topic, found by typing: its script and article appear
    page.keyboard.type("горяч")
    page.locator("#topic-suggestions [role=option]").first.wait_for()
    page.keyboard.press("Enter")
    panel.locator("[data-kb-script]").first.wait_for()
    text = panel.inner_text()
    assert "Сценарий: нет горячей воды" in text and "горячая линия ЖКХ" in text and "Номер вашего обращения" in text
    assert "Плановое отключение ГВС" in text and "Ключи от подвала" in text and "Лифт остановился" not in text
    # beside the form, not below it (a wide screen)
    form_box, panel_box = page.locator("#appeal-form").bounding_box(), panel.bounding_box()
    assert panel_box["x"] >= form_box["x"] + form_box["width"] and panel_box["y"] < form_box["y"] + form_box["height"]
    # another topic replaces them
    page.locator("select[name=topic]").select_option("lift")
    page.locator("#kb-panel[data-topic=lift]").wait_for()
    text = panel.inner_text()
    assert "Лифт остановился" in text and "Сценарий: нет горячей воды" not in text and "Плановое отключение" not in text
    assert not page.crm_problems, page.crm_problems
