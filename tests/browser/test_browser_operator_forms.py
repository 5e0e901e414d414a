"""Operator and DPO forms in headless Chromium with real CSRF: searches by phone are POSTs whose URLs
never carry the number; the new-appeal form has no preselected category or topic; the one-click
consent is recorded once and its button goes; withdrawing a consent asks for confirmation."""
from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

import pytest
from tests.factories import CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser

NAME, PHONE = "Проверкина Анна Львовна", "+7 912 818-27-36"
DIGITS = "9128182736"


def leaked(requests) -> list:
    """Requests whose URL path or query holds the phone's digits (scheme, host and port left out)."""
    return [(m, u) for m, u in requests if DIGITS in re.sub(r"\D", "", u.split("://", 1)[1].split("/", 1)[1])]


def logged_with_number(caplog) -> list[str]:
    """Request lines the live server's werkzeug logged (``"POST /operator HTTP/1.1"``) that hold the
    phone's digits; asserts the search requests were logged at all (so the check is not vacuous)."""
    lines = [m.group(1) for r in caplog.records if r.name == "werkzeug"
             for m in [re.search(r'"(?:\x1b\[[0-9;]*m)?([A-Z]+ \S+ HTTP/[0-9.]+)', r.getMessage())] if m]
    assert any(re.match(r"POST /(operator|dpo/citizens) ", line) for line in lines), lines[-10:]
    return [line for line in lines if DIGITS in re.sub(r"\D", "", line.split(" ")[1])]


def flashes(page) -> list[str]:
    return [t.strip() for t in page.locator(".flash").all_inner_texts()]


@pytest.mark.browser
def test_operator_search_appeal_form_consent_and_withdraw(ctx, make_user, new_page, sign_in, caplog):
    from crm.consent.models import ConsentEvent
    from crm.db import db

    caplog.set_level(logging.INFO, logger="werkzeug")  # the live server's request lines

    username = f"op_{secrets.token_hex(3)}"
    make_user("operator", username=username)
    citizen = CitizenFactory(full_name=NAME, phone=PHONE, address="ул. Садовая, д. 5")
    cid = citizen.id
    db.session.remove()  # hold no transaction while the live server works

    op = sign_in(new_page(), username)
    requests = []
    op.on("request", lambda r: requests.append((r.method, r.url)))
    op.get_by_label("Телефон заявителя").fill("8 912 818 27 36")
    op.get_by_role("button", name="Найти").click()
    op.wait_for_load_state()
    assert op.url.endswith("/operator")
    assert op.get_by_text(NAME).is_visible()
    assert not leaked(requests), leaked(requests)

    op.get_by_role("link", name="Новое обращение").click()
    op.wait_for_url(re.compile(rf"/citizens/{cid}/appeals/new$"))
    assert op.get_by_label("Категория").input_value() == ""
    assert op.get_by_label("Тематика").input_value() == ""
    op.get_by_label("Суть обращения").fill("Не работает домофон в первом подъезде.")
    op.get_by_role("button", name="Зарегистрировать обращение").click()
    op.wait_for_load_state()
    assert op.get_by_text("Выберите категорию обращения").is_visible()
    assert op.get_by_text("Выберите тематику обращения").is_visible()
    op.get_by_label("Категория").select_option("routine")
    op.get_by_label("Тематика").select_option("intercom")
    op.get_by_role("button", name="Зарегистрировать обращение").click()
    op.wait_for_url(re.compile(r"/appeals/[^/]+$"))
    appeal_url = op.url

    # one-click consent: recorded once, then the button is gone
    op.get_by_role("button", name="Согласие: SMS о статусе").click()
    op.wait_for_url(appeal_url)
    assert "Согласие записано." in flashes(op)
    assert op.get_by_role("button", name="Согласие: SMS о статусе").count() == 0
    assert op.locator("[data-consent-given=sms_notifications]").is_visible()
    # a re-sent form (a second tab, the back button) is answered «уже получено», nothing new stored
    with op.expect_navigation():
        op.evaluate("""() => { const f = document.createElement('form'); f.method = 'post';
            f.action = location.pathname + '/consents';
            for (const [k, v] of [['purpose', 'sms_notifications'], ['given', 'yes'],
                                  ['csrf_token', document.querySelector('input[name=csrf_token]').value]]) {
                const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
                f.appendChild(i); }
            document.body.appendChild(f); f.submit(); }""")
    op.wait_for_load_state()
    assert "Согласие уже получено." in flashes(op)

    # withdrawing asks first: dismissed, nothing happens; accepted, the consent is withdrawn
    dialogs = []
    op.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    op.get_by_role("button", name="отозвать").click()
    op.wait_for_timeout(300)
    assert dialogs and dialogs[0].startswith("Отозвать согласие «SMS-уведомления о статусе заявки»?")
    assert op.url == appeal_url and "Согласие отозвано." not in flashes(op)
    op.once("dialog", lambda d: d.accept())
    with op.expect_navigation():
        op.get_by_role("button", name="отозвать").click()
    op.wait_for_load_state()
    assert "Согласие отозвано." in flashes(op)
    consents = op.locator("section", has=op.get_by_role("heading", name="Согласия")).inner_text()
    assert "отозвано (" in consents and "было дано" in consents, consents
    assert op.get_by_role("button", name="Согласие: SMS о статусе").is_visible()  # may be asked again
    assert not leaked(requests), leaked(requests)
    assert not logged_with_number(caplog)
    # the only error response is the refused appeal form without category and topic
    assert not [p for p in op.crm_problems if "422" not in p], op.crm_problems

    db.session.remove()
    events = db.session.execute(db.select(ConsentEvent).where(ConsentEvent.citizen_id == cid)).scalars().all()
    assert [(e.purpose_code, e.status) for e in events] == [("sms_notifications", "withdrawn")]
    db.session.remove()


@pytest.mark.browser
def test_dpo_lookup_by_phone_keeps_the_number_out_of_urls(ctx, make_user, new_page, sign_in, caplog):
    from crm.db import db

    caplog.set_level(logging.INFO, logger="werkzeug")  # the live server's request lines

    username = f"dpo_{secrets.token_hex(3)}"
    make_user("dpo", username=username)
    cid = CitizenFactory(full_name=NAME, phone=PHONE).id
    db.session.remove()

    page = sign_in(new_page(), username)
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.goto("/dpo/citizens")
    page.get_by_label("Телефон заявителя").fill(PHONE)
    page.get_by_role("button", name="Найти").click()
    page.wait_for_load_state()
    assert page.url.endswith("/dpo/citizens") and page.get_by_text(NAME).is_visible()
    page.get_by_role("link", name="Отчёт", exact=True).click()
    page.wait_for_url(re.compile(rf"/dpo/citizens/{cid}/access-report$"))
    page.goto("/dpo/citizens")
    page.get_by_label("или id заявителя").fill("no-such-id")
    page.get_by_role("button", name="Открыть отчёт").click()
    page.wait_for_load_state()
    assert page.get_by_text("Заявитель с id «no-such-id» не найден").is_visible()
    assert page.get_by_role("link", name="Скачать CSV").count() == 0
    assert not leaked(requests), leaked(requests)
    assert not logged_with_number(caplog)
    assert not [p for p in page.crm_problems if "404" not in p], page.crm_problems
