"""The supervisors' queue board in headless Chromium: its script polls GET /api/v1/telephony/queue with
the signed-in session and shows a call that starts waiting after the page was loaded."""
from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def test_the_board_refreshes_itself(ctx, make_user, new_page, sign_in):
    from crm.db import db, utcnow
    from crm.telephony import services

    username = f"sup_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    db.session.commit()
    db.session.remove()
    page = sign_in(new_page(), username)
    page.goto("/telephony/queue")
    waiting = page.locator('[data-figure="waiting"]')
    assert waiting.inner_text() == "0"
    services.ingest(services.Event(event_id=f"b-{uuid.uuid4().hex}", type="newCall", call_id="board-1",
                                   at=utcnow() - timedelta(seconds=40), from_="+79165550199", to="+74951112233"))
    db.session.remove()
    from playwright.sync_api import expect

    expect(waiting).to_have_text("1", timeout=15_000)  # the page's CSP forbids wait_for_function's eval
    longest = int(page.locator('[data-figure="longest_wait_s"]').inner_text())
    assert 40 <= longest < 120
    assert page.locator("#board-updated").inner_text() != ""
    assert not page.crm_problems, page.crm_problems
