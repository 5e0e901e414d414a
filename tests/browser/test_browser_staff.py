"""The staff page (/admin/staff) in headless Chromium with real CSRF: an administrator creates an
account (its temporary password shown once, and it signs in with it), issues a named token with a
double click (one token), disables the account after confirming, and the account can no longer sign in."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.mark.browser
def test_admin_creates_issues_a_token_and_disables(ctx, make_user, new_page, sign_in):
    from crm.db import db
    from crm.users import services

    boss = f"boss_{secrets.token_hex(3)}"
    make_user("admin", username=boss)
    db.session.remove()  # hold no transaction while the live server works
    page = sign_in(new_page(), boss)
    page.locator("#menu-staff").click()
    page.wait_for_load_state()
    page.get_by_label("Логин").fill("new_operator")
    page.get_by_label("ФИО").fill("Новикова Ольга Петровна")
    page.locator("#create select[name=role]").select_option("operator")
    page.get_by_role("button", name="Создать").click()
    page.wait_for_load_state()
    temporary = page.locator("#secret-value").inner_text().strip()
    assert len(temporary) >= 12 and "Учётная запись new_operator создана." in page.content()
    page.get_by_role("link", name="Все сотрудники").click()
    page.get_by_role("link", name="new_operator").click()
    page.wait_for_load_state()
    assert "/admin/staff/" in page.url and temporary not in page.content()  # shown once
    assert page.locator("#secret-value").count() == 0

    page.get_by_label("Название (для чего токен: АТС, IVR …)").fill("АТС")
    page.get_by_label("Срок действия, дней (пусто — бессрочно)").fill("30")
    page.get_by_role("button", name="Выпустить").dblclick()
    page.wait_for_load_state()
    token = page.locator("#secret-value").inner_text().strip()
    assert token.startswith("crm_")

    page.once("dialog", lambda d: d.accept())
    page.locator("#disable").click()
    page.wait_for_load_state()
    assert "Учётная запись отключена" in page.content()

    db.session.remove()
    user = services.get_by_username("new_operator")
    assert not user.active
    (row,) = services.tokens_of(user)
    assert row.name == "АТС" and row.expires_at is not None
    assert services.user_for_token(token) is None  # refused: the account is disabled
    db.session.rollback()

    other = new_page()
    other.goto("/login")
    other.get_by_label("Логин").fill("new_operator")
    other.get_by_label("Пароль").fill(temporary)
    other.get_by_role("button", name="Войти").click()
    other.wait_for_load_state()
    assert "/login" in other.url
