"""The automatic checks' three states in headless Chromium (a newcomer's report: «⚠ Телефон для связи
уточнён: оператор не уточнил…» read as a pass and a failure at once): the call page and the review page
show neutral titles with the state as an icon (✓ ✗ ?) and a legend of the states, with one line on what
«не уверено» means; a check left unsure because the speakers are not separated renders as such.

The call is a mono recording's transcript (every segment ``unknown``), as the transcription job stores
it: the greeting passes, a 12 s pause fails ``silence``, the missing farewell is unsure."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.factories import CallFactory, CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser

MONO = [
    {"start": 0.4, "end": 4.0, "speaker": "unknown", "channel": None,
     "text": "Горячая линия жилищно-коммунального хозяйства, оператор Анна, здравствуйте."},
    {"start": 4.5, "end": 8.0, "speaker": "unknown", "channel": None, "text": "У нас нет горячей воды."},
    {"start": 20.0, "end": 24.0, "speaker": "unknown", "channel": None, "text": "Заявка принята, ожидайте."},
]


def _check_the_legend(page) -> None:
    legend = page.locator("#qa-legend")
    assert legend.is_visible()
    text = legend.inner_text()
    for word in ("✓ выполнено", "✗ не выполнено", "? не уверено"):
        assert word in text, text
    assert "распознаны неуверенно" in text and "говорящие в записи не разделены" in text


@pytest.mark.browser
def test_legend_and_an_unsure_check_on_the_call_and_review_pages(ctx, make_user, new_page, sign_in, shots_dir):
    from crm.db import db

    op = make_user("operator")
    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), segments=[dict(s) for s in MONO])
    call_id = call.id
    db.session.remove()  # hold no transaction while the live server works

    page = new_page()
    sign_in(page, username)

    page.goto(f"/qa/review/{call_id}")
    _check_the_legend(page)
    closing = page.locator("#qa-checks li[data-code=closing]")
    assert closing.get_attribute("data-state") == "unsure"
    assert closing.locator(".qa-state").inner_text() == "?"
    assert "не уверено" in closing.inner_text() and "не разделены" in closing.inner_text()
    assert page.locator("#qa-checks li[data-code=greeting] .qa-state").inner_text() == "✓"
    silence = page.locator("#qa-checks li[data-code=silence]")
    assert silence.get_attribute("data-state") == "failed" and silence.locator(".qa-state").inner_text() == "✗"
    # neutral titles: no title claims what the check found
    titles = page.locator("#qa-checks li strong").all_inner_texts()
    assert "Адрес" in titles and "Телефон для связи" in titles, titles
    assert not [t for t in titles if "уточнён" in t], titles
    assert "⚠" not in page.locator("#qa-checks").inner_text()
    page.screenshot(path=str(shots_dir / "qa-check-states-review.png"), full_page=True)

    page.goto(f"/calls/{call_id}")
    _check_the_legend(page)
    hint = page.locator(".qa-hint[data-code=closing]")
    assert hint.get_attribute("data-state") == "unsure" and hint.is_visible()
    assert hint.inner_text().startswith("? ") and "(не уверено)" in hint.inner_text()
    callback = page.locator(".qa-hint[data-code=callback_number]")
    assert callback.inner_text().startswith("? Телефон для связи (не уверено): телефон для связи не уточнён")
    page.screenshot(path=str(shots_dir / "qa-check-states-call.png"), full_page=True)
    assert not page.crm_problems, page.crm_problems
