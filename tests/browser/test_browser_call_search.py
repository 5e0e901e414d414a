"""The transcript search page in headless Chromium: a supervisor searches a phrase in another word
form (posted, so the URL holds no phrase), the hit is highlighted, and clicking it opens the call page with the player at the moment
the matched words are spoken (from the word timestamps)."""
from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from tests.factories import AppealFactory, CallFactory, CitizenFactory
from tests.wavs import tone_wav

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def test_clicking_a_hit_opens_the_call_at_the_moment(ctx, make_user, new_page, sign_in):
    from crm import jobs

    op = make_user("operator")
    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    citizen = CitizenFactory(full_name="Сидорова Анна Петровна", phone="+7 912 345-12-34", qa_consent=True)
    appeal = AppealFactory(citizen=citizen, operator=op, category="emergency", topic="hot_water",
                           description="Нет горячей воды")
    words = [{"start": 12.0 + 0.5 * i, "end": 12.5 + 0.5 * i, "word": w, "probability": 0.9}
             for i, w in enumerate(["Опять", "нет", "горячей", "воды."])]
    segments = [
        {"start": 1.0, "end": 4.0, "speaker": "operator", "channel": None, "text": "Горячая линия ЖКХ, здравствуйте."},
        {"start": 12.0, "end": 14.0, "speaker": "citizen", "channel": None, "text": "Опять нет горячей воды.",
         "words": words}]
    call = CallFactory(appeal=appeal, operator=op, audio=tone_wav(20.0), original_name="search.wav", duration_s=20.0,
                       checks=False, segments=segments)
    try:
        page = sign_in(new_page(), username)
        page.get_by_role("link", name="Поиск по звонкам").click()
        page.get_by_label("Фраза").fill("горячая вода")
        page.get_by_role("button", name="Найти").click()
        page.wait_for_selector("#search-hits")
        assert page.locator("#search-hits mark").all_inner_texts() == ["горячей воды"]
        # the form posts the phrase (with its CSRF token): it is not in the URL, so not in logs or history
        assert page.url.endswith("/calls/search") and "q=" not in page.url
        page.locator("a.search-hit").first.click()
        page.wait_for_url(re.compile(rf"/calls/{call.id}#t=13\.00$"))
        page.wait_for_function("() => Math.abs(document.getElementById('player').currentTime - 13.0) < 0.3")
        page.wait_for_function("() => document.querySelector('#transcript li.current') !== null")
        assert "горячей воды" in page.locator("#transcript li.current").inner_text()
        assert page.crm_problems == []
    finally:
        for q in jobs.QUEUES:
            jobs.queue(q).empty()
