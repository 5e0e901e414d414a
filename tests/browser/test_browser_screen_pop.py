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
