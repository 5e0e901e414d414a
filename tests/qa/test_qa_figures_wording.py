"""QA pages write figures as the rest of the UI does: the Russian decimal comma (the ``number``
filter), and the dashboard's «Чаще всего не выполняются» names only criteria that did fail."""
from __future__ import annotations

import re

from tests.factories import CallFactory, CitizenFactory


def _evaluate(sup, op, answers):
    from crm.qa import services as qa

    return qa.evaluate(CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)), evaluator=sup,
                       answers=answers)


def test_evaluations_page_writes_the_average_score_with_a_decimal_comma(ctx, make_user, login):
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    yes = {c["code"]: "yes" for c in qa.ensure_default_scorecard().criteria}
    _evaluate(sup, op, yes)
    _evaluate(sup, op, yes | {"closing": "no"})  # 100 and 85: 92.5 on average
    html = login(sup).get("/qa/evaluations").get_data(as_text=True)
    row = html[html.index(f'?operator_id={op.id}"'):]
    row = row[:row.index("</tr>")]
    assert "<td>92,5</td>" in row and "92.5" not in html, row


def test_most_failed_lists_only_criteria_that_failed(ctx, make_user, login):
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    yes = {c["code"]: "yes" for c in qa.ensure_default_scorecard().criteria}
    _evaluate(sup, op, yes)
    client = login(sup)
    html = client.get("/qa/dashboard").get_data(as_text=True)
    assert "0 % (0 из 1)" not in html and 'id="most-failed"' not in html
    assert "Все критерии выполнены во всех оценках за период." in html
    _evaluate(sup, op, yes | {"closing": "no"})
    html = client.get("/qa/dashboard").get_data(as_text=True)
    block = html[html.index('id="most-failed"'):]
    block = block[:block.index("</ol>")]
    assert block.count("<li>") == 1 and "Завершение: срок, номер заявки, прощание — 50 % (1 из 2)" in block


def test_a_short_clip_has_the_same_duration_in_the_call_lists_and_on_the_call_page(ctx, make_user, login):
    from crm.qa import services as qa

    sup = make_user("supervisor")
    segment = {"start": 0.0, "end": 0.5, "speaker": "operator", "text": "Алло"}
    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=True), segments=[segment])
    client = login(sup)
    page = client.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "Длительность: 0,5 с" in page
    listed = client.get("/qa/calls").get_data(as_text=True)
    row = re.search(rf'<tr data-call-id="{call.id}">.*?</tr>', listed, re.S).group(0)
    assert "<td>0,5 с</td>" in row, row
    qa.run_sampling()
    queue = client.get("/qa/queue").get_data(as_text=True)
    assert "0,5 с" in queue and "<td>0 с</td>" not in queue
