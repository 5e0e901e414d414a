"""The staff second factor in headless Chromium with real CSRF (issue 17): the first sign-in shows the
QR code and the key, a wrong code is refused, the right one (made with pyotp from the key the page
shows, as an authenticator app would) enrols and shows ten recovery codes once; the next sign-in asks
for a code, refuses a replayed one and accepts a fresh one, then a recovery code."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
import pytest

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-1"


def _password(page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Логин").fill(username)
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.wait_for_load_state()


@pytest.mark.browser
def test_a_new_operator_enrols_and_signs_in_with_codes(ctx, new_page, make_user, shots_dir):
    from crm.db import db

    user = make_user("operator")
    username = user.username
    db.session.remove()  # hold no transaction while the live server works

    page = new_page()
    _password(page, username)
    assert page.url.endswith("/login/enrol")
    assert page.get_by_role("heading", name="Настройка второго фактора").is_visible()
    qr = page.locator("#totp-qr")
    assert qr.is_visible() and qr.get_attribute("src").startswith("data:image/svg+xml")
    assert page.evaluate("document.getElementById('totp-qr').naturalWidth") > 0  # the QR code renders
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")  # as a person would type it
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.screenshot(path=str(shots_dir / "mfa-enrol.png"), full_page=True)
    # a wrong code: still on the enrolment page, not signed in
    totp = pyotp.TOTP(secret)
    page.get_by_label("Код").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Подтвердить").click()
    page.wait_for_load_state()
    assert page.url.endswith("/login/enrol") and page.get_by_text("Код не подошёл").is_visible()
    # the right code
    step = int(time.time()) // 30
    page.get_by_label("Код").fill(totp.generate_otp(step))
    page.get_by_role("button", name="Подтвердить").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Коды восстановления").is_visible()
    codes = [c.strip() for c in page.locator(".recovery-codes code").all_inner_texts()]
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    page.screenshot(path=str(shots_dir / "mfa-recovery-codes.png"), full_page=True)
    page.locator("#mfa-continue").click()
    page.wait_for_load_state()
    assert page.url.endswith("/operator")
    page.get_by_role("button", name="Выйти").click()
    page.wait_for_load_state()

    # the next sign-in: the code used at enrolment is refused (replay), a fresh one is accepted
    _password(page, username)
    assert page.url.endswith("/login/code")
    page.get_by_label("Код").fill(totp.generate_otp(step))
    page.get_by_role("button", name="Войти").click()
    page.wait_for_load_state()
    assert page.url.endswith("/login/code") and page.get_by_text("Неверный или уже использованный код").is_visible()
    page.get_by_label("Код").fill(totp.generate_otp(step + 1))
    page.get_by_role("button", name="Войти").click()
    page.wait_for_load_state()
    assert page.url.endswith("/operator")
    page.get_by_role("button", name="Выйти").click()
    page.wait_for_load_state()

    # a recovery code, once
    _password(page, username)
    page.get_by_label("Код").fill(codes[0])
    page.get_by_role("button", name="Войти").click()
    page.wait_for_load_state()
    assert page.url.endswith("/operator") and page.get_by_text("Осталось кодов: 9").is_visible()
    assert not page.crm_problems, page.crm_problems
