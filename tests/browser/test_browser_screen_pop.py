"""The screen pop in headless Chromium (issue 16, point 2): an operator's page shows the caller's card
a moment after the PBX's ``answer`` naming them reaches the webhook; Enter opens the intake, prefilled
(the known citizen's new-appeal form; for a new caller, the search and new-citizen forms with the
number); the hang-up clears the card. Another operator's open page shows nothing."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.factories import AppealFactory, CitizenFactory
from tests.telephony.test_events import SECRET, ev, fixed_now, pbx  # noqa: F401  (fixtures)

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser
PHONE = "+79161234567"  # test_events.ev's "from"


def operators(make_user) -> tuple[str, str]:
    from crm.db import db

    names = (f"op_{secrets.token_hex(3)}", f"op_{secrets.token_hex(3)}")
    for name in names:
        make_user("operator", username=name)
    db.session.commit()
    db.session.remove()
    return names


def test_the_card_pops_and_enter_opens_the_citizens_intake(ctx, make_user, new_page, sign_in, pbx):
    from playwright.sync_api import expect

    from crm.db import db

    mine, other = operators(make_user)
    citizen = CitizenFactory(full_name="Звонарёва Мария Ивановна", phone=PHONE)
    appeal = AppealFactory(citizen=citizen, topic="heating", description="Холодные батареи")
    citizen_id, number = citizen.id, appeal.number
    db.session.commit()
    db.session.remove()
    page = sign_in(new_page(), mine)
    page.goto("/operator")
    bystander = sign_in(new_page(), other)
    bystander.goto("/operator")
    assert pbx(ev("newCall", "br-pop-1", 20)).status_code == 202
    assert pbx(ev("answer", "br-pop-1", 10, user=mine)).status_code == 202
    db.session.remove()
    card = page.locator("#pop-card")
    expect(card).to_be_visible(timeout=15_000)
    expect(card).to_contain_text("Звонарёва Мария Ивановна")
    expect(card.locator(f'[data-appeal="{number}"]')).to_contain_text("Отопление")
    bystander.wait_for_timeout(2500)  # more than one poll of the other operator's page
    assert bystander.locator("#pop-card").count() == 0 and bystander.locator("#screen-pop").is_hidden()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/citizens/{citizen_id}/appeals/new*")  # ?call_ref=… (the pop's call)
    expect(page.locator("#pop-bar")).to_be_visible()  # the card stays one click away during the call
    assert pbx(ev("hangup", "br-pop-1", 0, cause="normalClearing")).status_code == 202
    db.session.remove()
    expect(page.locator("#screen-pop")).to_be_hidden(timeout=15_000)  # the hang-up clears it
    assert not page.crm_problems, page.crm_problems
    assert not bystander.crm_problems, bystander.crm_problems


def test_a_new_caller_and_enter_opens_the_prefilled_registration(ctx, make_user, new_page, sign_in, pbx):
    from playwright.sync_api import expect

    from crm.db import db

    mine, _ = operators(make_user)
    page = sign_in(new_page(), mine)
    page.goto("/telephony/callbacks")  # any operator page
    assert pbx(ev("newCall", "br-pop-2", 20)).status_code == 202
    assert pbx(ev("answer", "br-pop-2", 10, user=mine)).status_code == 202
    db.session.remove()
    card = page.locator("#pop-card")
    expect(card).to_be_visible(timeout=15_000)
    expect(card.locator("#pop-new")).to_contain_text("Новый абонент")
    expect(card.locator("#pop-number")).to_have_text("+7 916 ***-**-67")
    page.keyboard.press("Enter")
    page.wait_for_url("**/operator?call=*")
    expect(page.locator("input[name=phone]").first).to_have_value(PHONE)  # the search, already run for the number
    expect(page.locator("input[name=phone]").last).to_have_value(PHONE)  # the new-citizen form
    assert not page.crm_problems, page.crm_problems


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_the_card_leaves_the_operators_table_visible_at_1366x768(ctx, make_user, new_page, sign_in, pbx):
    """A newcomer's finding: at 1366×768 the card covered the «Статус» and «Срок» columns of the
    operator's recent appeals. While the card is shown the page reflows beside it: no cell of the
    table lies under the card."""
    from playwright.sync_api import expect

    from crm.db import db
    from crm.users import services as users

    mine, _other = operators(make_user)
    operator = users.get_by_username(mine)
    for n in range(3):
        AppealFactory(citizen=CitizenFactory(), operator=operator, description=f"Обращение {n}")
    CitizenFactory(full_name="Звонарёва Мария Ивановна", phone=PHONE)
    db.session.commit()
    db.session.remove()
    page = sign_in(new_page(viewport={"width": 1366, "height": 768}), mine)
    page.goto("/operator")
    table = page.locator("main table").filter(has=page.locator("th", has_text="Срок")).first
    expect(table).to_be_visible()
    assert pbx(ev("newCall", "br-pop-3", 20)).status_code == 202
    assert pbx(ev("answer", "br-pop-3", 10, user=mine)).status_code == 202
    db.session.remove()
    card = page.locator("#pop-card")
    expect(card).to_be_visible(timeout=15_000)
    page.wait_for_timeout(300)  # the reflow after the card is inserted
    box = card.bounding_box()
    cells = table.locator("th, td")
    assert cells.count() >= 6 * 4
    covered = []
    for i in range(cells.count()):
        cell = cells.nth(i)
        cell.scroll_into_view_if_needed()
        box = card.bounding_box()  # fixed: its box is in viewport coordinates, as the cell's
        cell_box = cell.bounding_box()
        if cell_box and _overlap(box, cell_box):
            covered.append(cell.inner_text()[:30])
    assert not covered, f"cells under the screen pop: {covered}"
    page.screenshot(path=str(Path("/tmp/calllog-pop-1366.png")))
    assert not page.crm_problems, page.crm_problems
