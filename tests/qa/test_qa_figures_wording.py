"""QA pages write figures as the rest of the UI does: the Russian decimal comma (the ``number``
filter), and the dashboard's «Чаще всего не выполняются» names only criteria that did fail."""
from __future__ import annotations

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
