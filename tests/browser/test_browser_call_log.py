"""«Журнал звонков» in headless Chromium: calls the PBX reported through the webhook (built by a real RQ
worker) appear in the supervisor's caller log, reached from the menu, and its GET filter form works."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.telephony.test_events import answered_sequence, ev, fixed_now, pbx  # noqa: F401  (fixtures)

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def test_the_log_shows_calls_built_from_webhook_events(ctx, make_user, new_page, sign_in, pbx):
    from playwright.sync_api import expect

    from crm.db import db

    tag = secrets.token_hex(3)
    operator, supervisor = f"op_{tag}", f"sup_{tag}"
    make_user("operator", username=operator).full_name = "Звонова Ольга Петровна"
    make_user("supervisor", username=supervisor)
    db.session.commit()
    db.session.remove()
    talked, lost = f"br-log-{tag}-1", f"br-log-{tag}-2"
    for event in answered_sequence(talked, operator):  # offered 200 s ago, 12 s wait, 100 s talk
        assert pbx(event).status_code == 202
    assert pbx(ev("newCall", lost, 60, queue="emergency")).status_code == 202
    assert pbx(ev("hangup", lost, 25, cause="cancel", queue="emergency")).status_code == 202
    db.session.remove()
    page = sign_in(new_page(), supervisor)
    page.goto("/")
    page.click("#menu-call-log")
    expect(page.locator("h1")).to_have_text("Журнал звонков")
    rows = page.locator("#call-log tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).get_attribute("data-call") == lost and rows.nth(1).get_attribute("data-call") == talked
    row = page.locator(f'tr[data-call="{talked}"]')
    for text in ("входящий", "hotline", "завершён", "12 с", "100 с", "Звонова Ольга Петровна"):
        expect(row).to_contain_text(text)
    expect(page.locator(f'tr[data-call="{lost}"]')).to_contain_text("ждёт, до ")
    assert "123-45-67" not in page.content() and "9161234567" not in page.content()
    page.select_option('select[name="state"]', "abandoned")
    page.click('#call-log-filters button[type="submit"]')
    page.wait_for_url("**/telephony/calls?*state=abandoned*")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("потерян")
    expect(page.locator("#call-log-range")).to_have_text("1–1 из 1")
    assert not page.crm_problems, page.crm_problems
