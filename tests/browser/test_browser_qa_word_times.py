"""A new user's QA report, in headless Chromium (Debian's chromium through Playwright):

1. on a mono call the address hint said «на 8.0 с» (the start of a long merged segment) and its click
   sought the player there, while the word is said at 18 s: the hint now seeks to the word itself;
2. a failed detail says what is missing first, then «Найдено: …»;
3. the dashboard's checks table is headed with the legend's words, not «Отмечено»;
4. a call linked to no citizen says so, and offers neither «Расшифровать заново» nor the review mode."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.factories import CallFactory, CitizenFactory
from tests.qa.test_qa_check_word_times import mono_call
from tests.wavs import tone_wav

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def _player_time(page) -> float:
    at = page.evaluate("document.getElementById('player').currentTime")
    page.evaluate("document.getElementById('player').pause()")
    return at


def test_check_hint_seeks_to_the_word_and_the_dashboard_uses_the_legend_words(ctx, make_user, new_page, sign_in,
                                                                                 shots_dir):
    from crm.db import db

    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    op = make_user("operator")
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), segments=mono_call(),
                       audio=tone_wav(60.0))
    call_id = call.id
    db.session.remove()  # hold no transaction while the live server works

    page = new_page()
    sign_in(page, username)
    page.goto(f"/calls/{call_id}")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    hint = page.locator(".qa-hint[data-code=address]")
    assert hint.is_visible() and hint.get_attribute("data-seek") == "18.0"
    assert "на 18,0 с" in hint.inner_text() and "8,0 с" not in hint.inner_text().replace("18,0 с", "")
    hint.click()
    assert _player_time(page) == pytest.approx(18.0, abs=0.3)
    closing = page.locator(".qa-hint[data-code=closing]")
    closing.click()
    assert _player_time(page) == pytest.approx(48.5, abs=0.3)  # «всего доброго», not the segment's 48.0
    page.screenshot(path=str(shots_dir / "qa-word-times-call.png"), full_page=True)

    page.goto("/qa/dashboard")
    heads = page.locator("#checks thead th").all_inner_texts()
    assert heads == ["Проверка", "Звонков", "✓ выполнено", "✗ не выполнено", "? не уверено"], heads
    assert "Отмечено" not in page.content()
    assert page.locator("#qa-legend").is_visible()
    page.screenshot(path=str(shots_dir / "qa-dashboard-checks.png"), full_page=True)
    assert not page.crm_problems, page.crm_problems


def test_a_call_without_a_citizen_says_so_and_offers_no_refused_action(ctx, make_user, new_page, sign_in, shots_dir):
    from crm.db import db

    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    call = CallFactory(operator=make_user("operator"))  # uploaded with no appeal and no citizen
    call_id = call.id
    db.session.remove()

    page = new_page()
    sign_in(page, username)
    page.goto(f"/calls/{call_id}")
    note = page.locator("#transcript-withheld")
    assert note.is_visible() and note.inner_text().startswith("Звонок не привязан к заявителю")
    assert "не давал согласия" not in page.content()
    assert page.get_by_role("button", name="Расшифровать заново").count() == 0
    assert page.get_by_role("link", name="режим проверки").count() == 0
    assert page.locator("#qa-no-citizen").is_visible()
    assert page.locator("#player").count() == 0
    page.screenshot(path=str(shots_dir / "call-without-citizen.png"), full_page=True)
    assert not page.crm_problems, page.crm_problems
