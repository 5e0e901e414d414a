"""The transcript reveal in headless Chromium with real CSRF: a supervisor sees the citizen's
identifiers masked on the call page, must choose a purpose before they are shown, and a double
click on «Показать данные заявителя» logs one reveal, with the purpose chosen and the kinds shown."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from tests.calls.test_transcript_words import dictated_segments
from tests.factories import CallFactory, CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def _reveals(call_id: str) -> list:
    from crm.db import db
    from tests.api.test_api import log_entries

    db.session.remove()  # the live server wrote them in its own sessions
    return log_entries(call_id=call_id, action="transcript.reveal")


def test_reveal_asks_for_a_purpose_and_a_double_click_logs_once(ctx, make_user, new_page, sign_in):
    from crm.db import db

    op = make_user("operator")
    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    call_id = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), segments=dictated_segments()).id
    db.session.remove()

    page = new_page()
    sign_in(page, username)
    page.goto(f"/calls/{call_id}")
    text = page.locator("#transcript").inner_text()
    assert "[телефон]" in text and "[адрес]" in text and "Сидоров" not in text
    button = page.locator("#transcript-reveal")
    assert not button.is_visible()  # the form is folded until asked for
    page.locator("#transcript-reveal-box summary").click()
    # no purpose chosen: the browser refuses to send the form (required), nothing is revealed or logged
    button.click()
    assert page.locator("#transcript-reveal-form select:invalid").count() == 1
    assert "Сидоров" not in page.locator("#transcript").inner_text() and not _reveals(call_id)
    options = page.locator("#transcript-reveal-form select option").all_inner_texts()
    assert any("Контроль качества" in o for o in options) and any("Рассмотрение обращения" in o for o in options)
    page.select_option("#transcript-reveal-form select", "call_recording_qa")
    with page.expect_navigation():
        button.dblclick()
    page.wait_for_selector("#transcript-revealed")
    text = page.locator("#transcript").inner_text()
    assert "Пётр Сидоров" in text and "8 916 123-45-67" in text
    [entry] = _reveals(call_id)
    assert entry.purpose == "call_recording_qa" and entry.fields == "address,full_name,phone,transcript"
    assert "Сидоров" not in (entry.detail or "") and "916" not in (entry.detail or "")
    # a reload of the call page shows the transcript masked again
    page.goto(f"/calls/{call_id}")
    assert "Сидоров" not in page.locator("#transcript").inner_text()
    assert not page.crm_problems, page.crm_problems
