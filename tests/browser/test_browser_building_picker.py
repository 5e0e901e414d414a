"""The new-appeal form's house picker in headless Chromium: typing asks GET /api/v1/buildings with
the signed-in session, the arrows and Enter pick a suggestion, the appeal keeps its building id."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from tests.factories import CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def test_the_operator_picks_the_house_with_the_keyboard(ctx, make_user, new_page, sign_in):
    from crm.appeals import services as appeals
    from crm.buildings.services import find, import_csv
    from crm.db import db

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 5а\"\n"
               "\"г. Москва, ул. Ленина, д. 15\"\n".encode())
    five_a = find("москва ул ленина 5а").id
    username = f"op_{secrets.token_hex(3)}"
    make_user("operator", username=username)
    cid = CitizenFactory().id
    db.session.commit()
    db.session.remove()

    page = sign_in(new_page(), username)
    page.goto(f"/citizens/{cid}/appeals/new")
    box = page.get_by_label("Дом (из реестра домов)")
    box.press_sequentially("ленина 5", delay=30)
    options = page.locator("#building-suggestions [role=option]")
    options.first.wait_for()
    assert options.all_inner_texts() == ["г. Москва, ул. Ленина, д. 5", "г. Москва, ул. Ленина, д. 5а"]  # not 15
    box.press("ArrowDown")
    box.press("ArrowDown")
    box.press("Enter")  # picks, does not submit
    assert box.input_value() == "г. Москва, ул. Ленина, д. 5а"
    assert page.locator("input[name=building_id]").input_value() == str(five_a)
    assert page.locator("#building-suggestions").is_hidden()
    page.get_by_label("Категория").select_option("routine")
    page.get_by_label("Тематика").select_option("heating")
    page.get_by_label("Суть обращения").fill("Нет отопления")
    page.get_by_role("button", name="Зарегистрировать обращение").click()
    page.wait_for_load_state()
    assert "/appeals/" in page.url and "Ленина, д. 5а" in page.content()
    assert not page.crm_problems
    appeal = appeals.get(page.url.rstrip("/").rsplit("/", 1)[-1])
    assert appeal.building_id == five_a
