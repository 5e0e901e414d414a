"""The citizen's self-service page in headless Chromium on a phone-sized viewport (390×844): in by a
signed link or an SMS code, withdraw a consent with one button; forged, expired and reused links are
refused. No horizontal overflow on any of these pages."""
from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from tests.factories import CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser

PHONE_VIEWPORT = {"width": 390, "height": 844}
NAME, PHONE = "Мобильная Ольга Сергеевна", "+7 912 606-70-80"


def fits(page, what: str) -> None:
    """No horizontal scrolling at 390 px (not ``is_mobile``: a mobile layout viewport would widen to
    the content and hide an overflow)."""
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert inner == PHONE_VIEWPORT["width"] and width <= inner, f"{what} is {width}px wide in a {inner}px viewport"


def seed(ctx):
    from crm.consent import services as consent

    c = CitizenFactory(full_name=NAME, phone=PHONE)
    consent.record(c, "sms_notifications", channel="call")
    consent.record(c, "call_recording_qa", channel="call")
    return c


def link_for(ctx, citizen, base_url: str) -> str:
    from crm.consent import selfservice

    with ctx.test_request_context():
        url, _ = selfservice.issue_link(citizen, user=None, base_url=base_url)
    return url


@pytest.mark.browser
def test_link_withdraw_on_a_phone_and_refusals(ctx, new_page, live_server, shots_dir, monkeypatch):
    from crm.consent import selfservice
    from crm.consent import services as consent
    from crm.db import db

    citizen = seed(ctx)
    cid = citizen.id
    url = link_for(ctx, citizen, live_server)
    assert url.startswith(live_server + "/my/link/")
    real = time.time
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: real() - 4 * 86400)
    with ctx.test_request_context():
        expired, _ = selfservice.issue_link(citizen, user=None, base_url=live_server, send=False)
    monkeypatch.setattr("itsdangerous.timed.time.time", real)
    db.session.remove()  # hold no transaction (on SQLite: no write lock) while the live server works

    page = new_page(viewport=PHONE_VIEWPORT)
    resp = page.goto(url)
    assert resp.status == 200
    fits(page, "the link page")
    page.get_by_role("button", name="Продолжить").click()
    page.wait_for_url(re.compile(r"/my/consents$"))
    buttons = page.get_by_role("button", name="Отозвать согласие")
    assert buttons.count() == 2
    assert page.get_by_role("heading", name="SMS-уведомления о статусе заявки").is_visible()
    page.get_by_text("Текст согласия").first.click()  # the exact words, unfolded
    assert page.get_by_text("Срок действия согласия").first.is_visible()
    fits(page, "the consents page")
    page.screenshot(path=str(shots_dir / "selfservice-consents-phone.png"), full_page=True)

    page.locator(".purpose", has=page.get_by_role("heading", name="SMS-уведомления о статусе заявки")) \
        .get_by_role("button", name="Отозвать согласие").click()
    page.wait_for_load_state()
    assert page.locator(".flash.success").inner_text().startswith("Согласие «SMS-уведомления о статусе заявки» отозвано")
    assert page.get_by_role("button", name="Отозвать согласие").count() == 1
    assert "Отозванные и истёкшие" in page.content()
    fits(page, "the consents page after withdrawal")
    page.screenshot(path=str(shots_dir / "selfservice-withdrawn-phone.png"), full_page=True)
    assert not page.crm_problems, page.crm_problems
    db.session.remove()
    assert not consent.may_notify(cid, "sms_notifications") and consent.may_use_for_qa(cid)
    db.session.remove()

    # the same link again, in another browser: refused
    other = new_page(viewport=PHONE_VIEWPORT)
    resp = other.goto(url)
    assert resp.status == 410 and other.get_by_text("Эта ссылка уже была использована").is_visible()
    fits(other, "the refusal page")
    # a forged link
    token = urlparse(url).path.rsplit("/", 1)[1]
    resp = other.goto(f"/my/link/{token[:-4]}{'abcd' if not token.endswith('abcd') else 'efgh'}")
    assert resp.status == 400 and other.get_by_text("Ссылка недействительна").is_visible()
    # an expired link
    resp = other.goto(expired)
    assert resp.status == 410 and other.get_by_text("Срок действия ссылки истёк").is_visible()
    fits(other, "the expired-link page")
    other.screenshot(path=str(shots_dir / "selfservice-refused-phone.png"), full_page=True)
    # the refusal page offers the code instead, and no one got in
    assert other.get_by_role("button", name="Получить код").is_visible()
    assert other.goto("/my/consents").url.endswith("/my")


@pytest.mark.browser
def test_code_by_sms_on_a_phone(ctx, new_page, shots_dir, sms_inbox, run_worker):
    from crm.consent import services as consent
    from crm.consent import sms
    from crm.db import db

    citizen = seed(ctx)
    cid = citizen.id
    db.session.remove()
    page = new_page(viewport=PHONE_VIEWPORT)
    page.goto("/my")
    fits(page, "the start page")
    page.screenshot(path=str(shots_dir / "selfservice-start-phone.png"), full_page=True)
    page.get_by_label("Номер телефона").fill("8 912 606-70-80")
    page.get_by_role("button", name="Получить код").click()
    page.wait_for_url(re.compile(r"/my/code$"))
    fits(page, "the code page")
    run_worker()  # the code is sent by a background job
    assert [m for m in sms.outbox(citizen_id=cid) if m.kind == "code"]
    body = [m.body for m in sms_inbox if "Код" in m.body][0]  # the outbox keeps the code masked
    db.session.remove()
    code = re.search(r"\b(\d{6})\b", body).group(1)
    page.get_by_label("Код из SMS").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Войти").click()
    page.wait_for_load_state()
    assert page.get_by_text("Неверный код. Осталось попыток: 4.").is_visible()
    page.get_by_label("Код из SMS").fill(code)
    page.get_by_role("button", name="Войти").click()
    page.wait_for_url(re.compile(r"/my/consents$"))
    page.get_by_role("button", name="Отозвать согласие").first.click()
    page.wait_for_load_state()
    assert page.get_by_role("button", name="Отозвать согласие").count() == 1
    fits(page, "the consents page")
    page.get_by_role("button", name="Выйти").click()
    page.wait_for_url(re.compile(r"/my$"))
    # the wrong code was answered 400 (Chromium reports every 4xx page load on the console): nothing else
    problems = [p for p in page.crm_problems if "status of 400" not in p]
    assert len(page.crm_problems) - len(problems) == 1 and not problems, page.crm_problems
    active = [e.purpose_code for e in consent.for_citizen(cid) if e.status == "active"]
    db.session.remove()
    assert len(active) == 1


@pytest.mark.browser
def test_dpo_sees_the_history_and_answers_an_access_request(ctx, make_user, new_page, sign_in, shots_dir):
    """The DPO's side in a real browser: the one-page consent history, an access request with its
    deadline, the printable export."""
    import secrets

    from crm.db import db

    citizen = seed(ctx)
    cid = citizen.id
    username = f"dpo_{secrets.token_hex(3)}"
    make_user("dpo", username=username)
    db.session.remove()
    page = sign_in(new_page(viewport={"width": 1280, "height": 900}), username)
    page.goto(f"/dpo/citizens/{cid}/consents")
    assert page.get_by_role("heading", name="История согласий заявителя").is_visible()
    assert page.locator(".event").count() == 2 and page.get_by_text("текст совпадает").count() == 2
    page.screenshot(path=str(shots_dir / "dpo-consent-history.png"), full_page=True)
    page.get_by_role("link", name="зарегистрировать запрос").click()
    page.get_by_label("Вид запроса").select_option("access")
    page.get_by_label("Что просит заявитель (без персональных данных)").fill("сведения об обработке данных")
    page.get_by_role("button", name="Зарегистрировать").click()
    page.wait_for_url(re.compile(r"/dpo/requests/[^/]+$"))
    assert "срок ответа" in page.locator(".flash").inner_text()
    assert page.locator("[data-export-summary]").get_by_text("согласия: 2").is_visible()
    # before any export: the DPO records the identity document seen, a second DPO approves
    page.get_by_label("Как установлена личность").select_option("document")
    page.get_by_label("Предъявленный документ").select_option("passport_rf")
    page.get_by_role("button", name="Записать").click()
    assert "второй ответственный" in page.locator(".flash").inner_text()
    assert page.get_by_role("link", name="Документ для печати").count() == 0
    second = f"dpo_{secrets.token_hex(3)}"
    make_user("dpo", username=second)
    db.session.remove()
    other = sign_in(new_page(viewport={"width": 1280, "height": 900}), second)
    other.goto(page.url)
    other.get_by_role("button", name="Утвердить выгрузку").click()
    assert "Выгрузка утверждена" in other.locator(".flash").inner_text()
    page.reload()
    with page.expect_popup() as popup:
        page.get_by_role("link", name="Документ для печати").click()
    doc = popup.value
    doc.wait_for_load_state()
    assert doc.get_by_text(NAME).first.is_visible() and "SMS-уведомления о статусе заявки" in doc.content()
    doc.screenshot(path=str(shots_dir / "dpo-access-export.png"), full_page=True)
    assert not page.crm_problems, page.crm_problems
