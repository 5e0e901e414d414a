"""The transcript search page in headless Chromium: a supervisor searches a phrase in another word
form, the hit is highlighted, and clicking it opens the call page with the player at the moment
the matched words are spoken (from the word timestamps)."""
from __future__ import annotations

import io
import re
import secrets
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.wavs import tone_wav

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser




def test_clicking_a_hit_opens_the_call_at_the_moment(ctx, make_user, new_page, sign_in):
    from crm import jobs
    from crm.appeals import services as appeals
    from crm.calls import services as calls
    from crm.citizens import services as citizens
    from crm.consent import services as consent

    op = make_user("operator")
    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    citizen = citizens.register(citizens.CitizenData("Сидорова Анна Петровна", "+7 912 345-12-34"))
    consent.record(citizen, "call_recording_qa", channel="call")
    appeal = appeals.create(citizen, category="emergency", topic="hot_water", description="Нет горячей воды",
                            channel="phone", operator_id=op.id)
    call = calls.store_recording(io.BytesIO(tone_wav(20.0)), "search.wav", appeal=appeal, operator_id=op.id)
    words = [{"start": 12.0 + 0.5 * i, "end": 12.5 + 0.5 * i, "word": w, "probability": 0.9}
             for i, w in enumerate(["Опять", "нет", "горячей", "воды."])]
    calls.save_transcript(call, SimpleNamespace(status="done", language="ru", rtf=0.1, duration_s=20.0, segments=[
        {"start": 1.0, "end": 4.0, "speaker": "operator", "channel": None, "text": "Горячая линия ЖКХ, здравствуйте."},
        {"start": 12.0, "end": 14.0, "speaker": "citizen", "channel": None, "text": "Опять нет горячей воды.",
         "words": words}]))
    try:
        page = sign_in(new_page(), username)
        page.get_by_role("link", name="Поиск по звонкам").click()
        page.get_by_label("Фраза").fill("горячая вода")
        page.get_by_role("button", name="Найти").click()
        page.wait_for_selector("#search-hits")
        assert page.locator("#search-hits mark").all_inner_texts() == ["горячей воды"]
        page.locator("a.search-hit").first.click()
        page.wait_for_url(re.compile(rf"/calls/{call.id}#t=13\.00$"))
        page.wait_for_function("() => Math.abs(document.getElementById('player').currentTime - 13.0) < 0.3")
        page.wait_for_function("() => document.querySelector('#transcript li.current') !== null")
        assert "горячей воды" in page.locator("#transcript li.current").inner_text()
        assert page.crm_problems == []
    finally:
        for q in jobs.QUEUES:
            jobs.queue(q).empty()
