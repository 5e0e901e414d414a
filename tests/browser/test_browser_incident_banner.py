"""The intake's incident banner in headless Chromium (issue 15, point 1): picking the caller's house
shows its active incident and the text to read before anything is typed; a neighbouring house shows
none; «Добавить звонок к инциденту» counts the call on the incident without opening an appeal."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.factories import CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser

TEXT = "Авария на теплотрассе: горячей воды нет до 20:00, бригада работает"


def _pick(page, words: str, option: str) -> None:
    box = page.get_by_label("Дом (из реестра домов)")
    box.fill("")
    box.press_sequentially(words, delay=30)
    page.locator("#building-suggestions [role=option]", has_text=option).first.wait_for()
    page.locator("#building-suggestions [role=option]", has_text=option).first.dispatch_event("mousedown")


def test_the_banner_shows_the_houses_incident_and_attaches_the_call(ctx, make_user, new_page, sign_in):
    from crm.appeals import services as appeals
    from crm.buildings.services import import_csv
    from crm.db import db
    from crm.incidents import services as incidents

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 7\"\n".encode())
    incident = incidents.create(make_user("supervisor"), addresses=["Ленина 5"], topic="hot_water", text=TEXT,
                                starts_at=datetime.now(timezone.utc) - timedelta(hours=2))
    username = f"op_{secrets.token_hex(3)}"
    make_user("operator", username=username)
    cid = CitizenFactory().id
    incident_id = incident.id
    db.session.commit()
    db.session.remove()

    page = sign_in(new_page(), username)
    page.goto(f"/citizens/{cid}/appeals/new")
    banner = page.locator("#incident-banner")
    assert banner.is_hidden()
    _pick(page, "ленина 7", "д. 7")
    page.wait_for_timeout(400)
    assert banner.is_hidden()  # the neighbour's house: no incident
    _pick(page, "ленина 5", "д. 5")
    banner.wait_for(state="visible")
    assert TEXT in banner.inner_text()
    assert page.get_by_label("Суть обращения").input_value() == ""  # shown before the operator types
    _pick(page, "ленина 7", "д. 7")
    banner.wait_for(state="hidden")
    _pick(page, "ленина 5", "д. 5")
    banner.wait_for(state="visible")
    page.get_by_role("button", name="Добавить звонок к инциденту").click()
    page.wait_for_url(f"**/citizens/{cid}")
    assert "Звонок добавлен к инциденту" in page.content()
    assert not page.crm_problems
    db.session.expire_all()
    assert incidents.counts(incident_id) == {"appeals_count": 0, "calls_count": 1}
    assert appeals.for_citizen(cid) == []
