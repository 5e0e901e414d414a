"""The supervisors' call list (/qa/calls) in headless Chromium: the filters narrow the list (operator,
failed checks, not evaluated), the appeal number and the date open their pages."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.factories import CallFactory, CitizenFactory, EvaluationFactory
from tests.qa.test_qa_call_list import _set_checks

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def test_filters_narrow_the_list_and_rows_link_to_call_and_appeal(ctx, make_user, new_page, sign_in):
    from crm.appeals import services as appeals
    from crm.db import db

    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    op_a, op_b = make_user("operator"), make_user("operator")
    t0 = datetime.now(timezone.utc) - timedelta(hours=3)
    flagged = CallFactory(operator=op_a, citizen=CitizenFactory(qa_consent=True), created_at=t0)
    clean = CallFactory(operator=op_a, citizen=CitizenFactory(qa_consent=True), created_at=t0 + timedelta(minutes=5))
    other = CallFactory(operator=op_b, citizen=CitizenFactory(qa_consent=True), created_at=t0 + timedelta(minutes=9))
    scored = EvaluationFactory(operator=op_a).call_id
    _set_checks(flagged.id, {"greeting": "failed", "closing": "passed"})
    _set_checks(clean.id, {"greeting": "passed", "closing": "passed"})
    _set_checks(other.id, {"greeting": "failed", "closing": "failed"})
    number = appeals.get(flagged.appeal_id).number
    flagged_id, flagged_appeal, other_id, clean_id = flagged.id, flagged.appeal_id, other.id, clean.id
    op_a_id = op_a.id
    db.session.remove()

    page = new_page()
    sign_in(page, username)
    page.goto("/qa/calls")
    rows = page.locator("#qa-calls tbody tr")
    assert {rows.nth(i).get_attribute("data-call-id") for i in range(rows.count())} >= {flagged_id, clean_id, other_id, scored}
    page.select_option("#call-filters select[name=operator_id]", str(op_a_id))
    page.check("#call-filters input[name=failed]")
    page.select_option("#call-filters select[name=evaluated]", "no")
    page.get_by_role("button", name="Показать").click()
    page.wait_for_load_state()
    assert "failed=1" in page.url and "evaluated=no" in page.url
    ids = [rows.nth(i).get_attribute("data-call-id") for i in range(rows.count())]
    assert ids == [flagged_id]
    row = rows.first
    assert "✗ 1" in row.inner_text() and "Приветствие" in row.inner_text() and "не оценён" in row.inner_text()
    # the filters stay chosen on the filtered page
    assert page.locator("#call-filters input[name=failed]").is_checked()
    row.get_by_role("link", name=number).click()
    page.wait_for_url(f"**/appeals/{flagged_appeal}")
    page.go_back()
    page.locator(f'#qa-calls tr[data-call-id="{flagged_id}"] td').first.get_by_role("link").click()
    page.wait_for_url(f"**/calls/{flagged_id}")
    assert not page.crm_problems, page.crm_problems
