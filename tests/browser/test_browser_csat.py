"""The satisfaction survey in headless Chromium on a phone-sized viewport (390×844), with real CSRF: the
citizen opens the SMS link, answers «не решено», 2 of 5, «не впервые» and a comment; the appeal is
re-opened; the link used again, and a forged one, get a clear Russian page. No horizontal overflow."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.factories import CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser

PHONE_VIEWPORT = {"width": 390, "height": 844}


def fits(page, what: str) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert inner == PHONE_VIEWPORT["width"] and width <= inner, f"{what} is {width}px wide in a {inner}px viewport"


@pytest.mark.browser
def test_a_citizen_answers_the_survey_on_a_phone(ctx, new_page, live_server, make_user, sms_inbox, shots_dir):
    from crm import jobs
    from crm.appeals import services as appeals
    from crm.consent import services as consent
    from crm.csat import services as csat
    from crm.csat.models import CsatSurvey
    from crm.db import db

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Телефонова Мария", phone="8 916 700-01-01")
    consent.record(citizen, "csat_survey", channel="call")
    appeal = appeals.create(citizen, category="routine", topic="hot_water", description="Нет горячей воды",
                            channel="phone", operator_id=op.id)
    for status in ("escalated", "resolved", "closed"):
        appeals.transition(appeal, status, user_id=op.id)
    for q in jobs.QUEUES:  # the hook's job had no public address; send it here with the live server's
        jobs.queue(q).empty()
    appeal_id = appeal.id
    assert csat.send_survey(appeal_id, 0, live_server) == "sent"
    (body,) = [m.body for m in sms_inbox if "/csat/" in m.body]
    url = re.search(re.escape(live_server) + r"/csat/[A-Za-z0-9_-]+", body).group(0)
    db.session.remove()  # hold no transaction (on SQLite: no write lock) while the live server works

    page = new_page(viewport=PHONE_VIEWPORT)
    assert page.goto(url).status == 200
    assert page.get_by_role("heading", name="Как решён ваш вопрос?").is_visible()
    fits(page, "the survey page")
    page.locator("#q-solved").get_by_label("Нет").check()
    page.locator("#q-score").get_by_label("2").check()
    page.locator("#q-first_time").get_by_label("Нет").check()
    page.get_by_label("Комментарий (необязательно)").fill("Вода так и не появилась")
    # the tap targets are finger-sized
    box = page.locator("#q-score label").first.bounding_box()
    assert box["height"] >= 40 and box["width"] >= 40
    page.screenshot(path=str(shots_dir / "csat-survey-phone.png"), full_page=True)
    page.get_by_role("button", name="Отправить ответ").click()
    page.wait_for_url(re.compile(r"/csat/thanks"))
    assert page.get_by_role("heading", name="Спасибо за ответ!").is_visible()
    assert page.get_by_text("заявка снова передана в работу").is_visible()
    fits(page, "the thanks page")
    assert not page.crm_problems, page.crm_problems

    # the link again: used (the browser reports the 410 and 400 answers in its console, as it should)
    resp = page.goto(url)
    assert resp.status == 410 and page.get_by_text("ссылка одноразовая").first.is_visible()
    fits(page, "the refusal page")
    # a forged one
    resp = page.goto(live_server + "/csat/" + "A" * 24)
    assert resp.status == 400 and page.get_by_text("Ссылка недействительна").is_visible()
    assert not [p for p in page.crm_problems if "status of 410" not in p and "status of 400" not in p]

    db.session.expire_all()
    (s,) = db.session.execute(sa.select(CsatSurvey)).scalars().all()
    assert (s.solved, s.score, s.first_time, s.reopened, s.comment) == (False, 2, False, True,
                                                                        "Вода так и не появилась")
    a = appeals.get(appeal_id)
    assert (a.status, a.reopen_count) == ("in_progress", 1)
    for q in jobs.QUEUES:  # the status SMS the re-opening queued
        jobs.queue(q).empty()
