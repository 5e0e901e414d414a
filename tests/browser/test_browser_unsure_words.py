"""The call page in headless Chromium: a doubtful word (underlined, focusable) seeks the recording to the
word itself whether it is clicked or activated with Enter; Enter on the line seeks to the line's start.

A new user found Enter on «воды» (12.77 s) seeking to its line's start (9.34 s) while a click sought to the
word: the line's own keydown handler ran for the word's Enter too. The recording is dev_call_01; its second
line is stored with the words Whisper base gave it (``crm transcribe --words``), «воды» heard at 0.173."""
from __future__ import annotations

import secrets

import pytest

from tests.browser.test_qa_review import call_files, player_time
from tests.factories import CallFactory, CitizenFactory

pytestmark = pytest.mark.browser

WORDS = [(9.336, 10.352, "Здравствуйте,", 0.954), (10.872, 10.952, "у", 0.999), (10.952, 11.092, "нас", 0.999),
         (11.092, 11.452, "с", 0.882), (11.452, 11.772, "утра", 0.949), (11.772, 12.032, "нет", 0.94),
         (12.032, 12.772, "горячей", 0.859), (12.772, 13.072, "воды", 0.173), (13.072, 13.272, "во", 0.875),
         (13.272, 13.532, "всем", 0.949), (13.532, 14.132, "подъезде.", 0.768)]


def test_enter_on_a_doubtful_word_seeks_to_the_word_as_a_click_does(ctx, make_user, new_page, sign_in):
    from crm.db import db

    wav, ref = call_files()
    username = f"op_{secrets.token_hex(3)}"
    operator = make_user("operator", username=username)
    segments = [
        {"start": 0.664, "end": 8.344, "speaker": "operator", "channel": 0,
         "text": "Горячая линия жилищно-коммунального хозяйства, оператор Анна, здравствуйте."},
        {"start": 9.336, "end": 14.132, "speaker": "citizen", "channel": 1,
         "text": "Здравствуйте, у нас с утра нет горячей воды во всем подъезде.",
         "words": [{"start": a, "end": b, "word": w, "probability": p} for a, b, w, p in WORDS]},
        {"start": 15.293, "end": 18.485, "speaker": "operator", "channel": 0, "text": "Назовите, пожалуйста, ваш адрес."},
    ]
    call = CallFactory(operator=operator, citizen=CitizenFactory(qa_consent=True), audio=wav,
                       original_name="dev_call_01_hot_water.wav", segments=segments, duration_s=ref["duration_s"])
    call_id = call.id
    db.session.remove()

    page = new_page()
    sign_in(page, username)
    page.goto(f"/calls/{call_id}")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    word = page.locator("#transcript .word-unsure")
    assert word.count() == 1 and word.inner_text() == "воды"
    assert word.get_attribute("data-seek") == "12.772"

    def settled_at(seconds):
        # read at once (the seek is synchronous): the playback it starts would otherwise carry a seek to
        # the line's start (9.34 s) past the word within a few seconds
        at = player_time(page)
        page.evaluate("document.getElementById('player').pause()")
        return at

    word.click()
    assert settled_at(12.772) == pytest.approx(12.772, abs=0.3)

    page.evaluate("document.getElementById('player').currentTime = 30")
    word.focus()
    page.keyboard.press("Enter")
    assert settled_at(12.772) == pytest.approx(12.772, abs=0.3)  # was the line's start, 9.34

    # Enter on the line itself still seeks to the line's start
    page.evaluate("document.getElementById('player').currentTime = 30")
    page.locator("#transcript li[data-start]").nth(1).focus()
    page.keyboard.press("Enter")
    assert settled_at(9.336) == pytest.approx(9.336, abs=0.3)
    assert page.crm_problems == []
