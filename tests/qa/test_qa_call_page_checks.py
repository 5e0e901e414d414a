"""The call page shows every stored automatic check, as the review page does: the QA call list
(/qa/calls?failed=1) flags a call by any check (e.g. «Доля речи оператора»), and links to the call
page, so the flagged check must be visible there, not only the five tied to the scorecard."""
from __future__ import annotations

import re

from tests.factories import CallFactory, CitizenFactory
from tests.qa.test_qa_world import qa_env  # noqa: F401


def _checks(html: str) -> dict[str, str]:
    """``{code: state}`` of the items of the ``#qa-checks`` list of a page."""
    start = html.index('id="qa-checks"')
    block = html[start:html.index("</ul>", start)]
    return dict(re.findall(r'data-code="([a-z_]+)" data-state="([a-z]+)"', block))


def test_the_call_page_lists_every_stored_check_as_the_review_page_does(ctx, make_user, login):
    from crm.qa import services as qa

    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=True))
    stored = {r["code"]: r["state"] for r in qa.check_results(call.id)}
    assert {"talk_ratio", "silence", "overtalk", "speech_rate"} <= set(stored)  # not tied to a criterion
    client = login(make_user("supervisor"))
    page = client.get(f"/calls/{call.id}").get_data(as_text=True)
    review = client.get(f"/qa/review/{call.id}").get_data(as_text=True)
    assert _checks(page) == stored == _checks(review)
    assert "Доля речи оператора" in page and page.count('id="qa-legend"') == 1


def test_the_checks_stay_visible_when_the_new_evaluation_form_is_folded(ctx, make_user, login):
    from crm.qa import services as qa

    sup = make_user("supervisor")
    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=True))
    card = qa.ensure_default_scorecard()
    qa.evaluate(call, evaluator=sup, answers={c["code"]: "yes" for c in qa.criteria_of(card)}, comment="")
    page = login(sup).get(f"/calls/{call.id}").get_data(as_text=True)
    assert page.index('id="qa-checks"') < page.index('class="qa-new-evaluation"')  # outside the <details>
