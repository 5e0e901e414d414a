"""The supervisors' call list (/qa/calls) for triage: appeal number, automatic checks' summary,
evaluated or not with the score, filters and paging; a fixed number of queries whatever the page
holds, and no personal data on the page."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from tests.factories import CallFactory, CitizenFactory, EvaluationFactory

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)


def _set_checks(call_id: str, states: dict[str, str]) -> None:
    """Replace the call's automatic check results by ``{code: passed|failed|unsure}``."""
    from crm.db import db
    from crm.qa.models import CheckResult

    db.session.execute(sa.delete(CheckResult).where(CheckResult.call_id == call_id))
    for code, state in states.items():
        db.session.add(CheckResult(call_id=call_id, code=code, passed=state == "passed", state=state, detail=""))
    db.session.commit()


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-call-id="([^"]+)"', html)


def _row(html: str, call_id: str) -> str:
    return re.search(rf'<tr data-call-id="{call_id}">.*?</tr>', html, re.S).group(0)


def test_list_shows_appeal_checks_and_evaluation_and_filters(ctx, client, login, make_user):
    from crm.appeals import services as appeals

    sup = make_user("supervisor")
    op_a, op_b = make_user("operator"), make_user("operator")
    citizen = CitizenFactory(qa_consent=True, full_name="Сидоров Пётр Ильич", phone="+7 916 123-45-67")
    plain = CallFactory(operator=op_a, citizen=citizen, created_at=T0)
    flagged = CallFactory(operator=op_a, citizen=CitizenFactory(qa_consent=True), created_at=T0 + timedelta(hours=1))
    doubtful = CallFactory(operator=op_b, citizen=CitizenFactory(qa_consent=True), created_at=T0 + timedelta(days=2))
    scored = EvaluationFactory(operator=op_b).call_id
    _set_checks(plain.id, {"greeting": "passed", "closing": "passed"})
    _set_checks(flagged.id, {"greeting": "failed", "closing": "passed", "forbidden_phrases": "failed"})
    _set_checks(doubtful.id, {"greeting": "unsure", "closing": "passed"})

    login(sup)
    html = client.get("/qa/calls").get_data(as_text=True)
    assert _row_ids(html)[:1] == [scored]  # newest first
    row = _row(html, flagged.id)
    number = appeals.get(flagged.appeal_id).number
    assert f'href="/appeals/{flagged.appeal_id}">{number}</a>' in row
    assert "✓ 1" in row and "✗ 2" in row and "? 0" in row
    assert "Приветствие с названием линии и именем" in row and "Недопустимые фразы" in row
    assert "не оценён" in row and f'href="/calls/{flagged.id}"' in row
    assert "оценён: 100" in _row(html, scored)
    assert "не уверено:" in _row(html, doubtful.id)
    assert "Сидоров" not in html and "123-45-67" not in html and "+7 916" not in html  # no personal data

    def ids(**q):
        return set(_row_ids(client.get("/qa/calls", query_string=q).get_data(as_text=True)))

    assert ids(operator_id=op_a.id) == {plain.id, flagged.id}
    assert ids(failed="1") == {flagged.id}
    assert ids(unsure="1") == {doubtful.id}
    assert ids(evaluated="yes") == {scored}
    assert ids(evaluated="no") == {plain.id, flagged.id, doubtful.id}
    # days in Moscow time, both included
    assert ids(**{"from": "2026-03-03", "to": "2026-03-03"}) == {plain.id, flagged.id}
    assert ids(**{"from": "2026-03-05"}) >= {doubtful.id, scored} and plain.id not in ids(**{"from": "2026-03-05"})
    bad = client.get("/qa/calls", query_string={"from": "вчера"})
    assert bad.status_code == 200 and "не распознана" in bad.get_data(as_text=True)


def test_paging_is_stable_and_queries_do_not_grow_with_the_rows(ctx, client, login, make_user, monkeypatch):
    from crm.db import db
    from crm.qa.services import calllist

    sup = make_user("supervisor")
    op = make_user("operator")
    made = [CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), created_at=T0 + timedelta(minutes=i)).id
            for i in range(5)]
    for call_id in made[:3]:
        _set_checks(call_id, {"greeting": "failed", "closing": "passed"})
    login(sup)
    monkeypatch.setattr(calllist, "PAGE_SIZE", 2)
    seen = []
    for page in (1, 2, 3):
        html = client.get("/qa/calls", query_string={"page": page, "operator_id": op.id}).get_data(as_text=True)
        seen += _row_ids(html)
        assert ('id="page-next"' in html) == (page < 3)
    assert seen == list(reversed(made))  # every call once, newest first

    statements = []

    def count(conn, cursor, statement, *a):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    def selects(n_rows: int) -> int:
        statements.clear()
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            rows = calllist.call_page(page_size=n_rows)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        assert len(rows.rows) == n_rows
        return len(statements)

    assert selects(1) == selects(5)  # the page, checks, evaluations, appeal numbers: no query per row


def test_a_call_without_speech_is_unsure_not_failed_in_the_list(ctx, client, login, make_user):
    """A recording with no speech (silence, hold music: ``no_speech``) has its greeting and closing
    «не уверено»: the list does not put it under «есть непройденные проверки», and the unsure filter
    finds it (a newcomer's report: it counted against the operator)."""
    sup = make_user("supervisor")
    op = make_user("operator")
    silent = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), segments=[], created_at=T0)
    assert silent.status == "no_speech"
    login(sup)

    def ids(**q):
        return set(_row_ids(client.get("/qa/calls", query_string=q).get_data(as_text=True)))

    assert silent.id not in ids(failed="1")
    assert silent.id in ids(unsure="1")
    row = _row(client.get("/qa/calls").get_data(as_text=True), silent.id)
    assert "✓ 0" in row and "✗ 0" in row and "? 2" in row
    assert "Приветствие с названием линии и именем" in row  # named under «не уверено:»
