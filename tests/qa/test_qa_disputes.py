"""The operator's side of an evaluation: seeing it, acknowledging or disputing it within
``CRM_QA_DISPUTE_DAYS``, and the supervisor's resolution (upheld, or a changed score as a new
revision with the history kept)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.qa.test_qa_world import qa_env  # noqa: F401
from tests.factories import CallFactory, CitizenFactory
from tests.mfa import sign_in


@pytest.fixture()
def scored(ctx, make_user):
    """An operator's call scored 85 (closing no) by a supervisor, with a comment and a pinned note."""
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    card = qa.ensure_default_scorecard()
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    ev = qa.evaluate(call, evaluator=sup, answers={c["code"]: "yes" for c in card.criteria} | {"closing": "no"},
                     comment="Не назвала срок", notes=[{"at_s": 26.5, "text": "Нет срока исполнения"}])
    return op, sup, call, ev


def test_the_window_comes_from_the_configuration(ctx, make_user, monkeypatch):
    from crm.qa import services as qa

    monkeypatch.setitem(ctx.config, "CRM_QA_DISPUTE_DAYS", 2)
    op, sup = make_user("operator"), make_user("supervisor")
    card = qa.ensure_default_scorecard()
    ev = qa.evaluate(CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)), evaluator=sup, answers={c["code"]: "yes" for c in card.criteria})
    assert ev.respond_by - ev.created_at == timedelta(days=2) and qa.dispute_days() == 2


def test_default_window_is_five_days(scored):
    _, _, _, ev = scored
    assert ev.respond_by - ev.created_at == timedelta(days=5)


def test_operator_sees_own_evaluations_with_comments_but_not_others(ctx, scored, make_user, login):
    op, _, _, ev = scored
    client = login(op)
    mine = client.get("/qa/my").get_data(as_text=True)
    assert f"/qa/evaluations/{ev.id}" in mine and "ответить до" in mine
    page = client.get(f"/qa/evaluations/{ev.id}").get_data(as_text=True)
    assert "Не назвала срок" in page and "Нет срока исполнения" in page and "0:26" in page
    assert "Оспорить оценку" in page and "Согласен(на) с оценкой" in page
    other = ctx.test_client()
    login_other = make_user("operator")
    sign_in(other, login_other)
    assert other.get(f"/qa/evaluations/{ev.id}").status_code == 403
    assert ev.id not in other.get("/qa/my").get_data(as_text=True)


def test_acknowledge(scored):
    from crm.qa import services as qa

    op, sup, _, ev = scored
    with pytest.raises(qa.EvaluationError) as e:
        qa.acknowledge(ev, sup)
    assert e.value.code == "forbidden"
    qa.acknowledge(ev, op)
    assert ev.operator_status == "acknowledged" and ev.acknowledged_at is not None
    with pytest.raises(qa.EvaluationError) as e:
        qa.dispute(ev, op, "передумала")
    assert e.value.code == "bad_state"


def test_too_late_to_answer(scored):
    from crm.db import db, utcnow
    from crm.qa import services as qa

    op, _, _, ev = scored
    ev.respond_by = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert qa.can_respond(ev, op) is False
    for action in (lambda: qa.acknowledge(ev, op), lambda: qa.dispute(ev, op, "не согласна")):
        with pytest.raises(qa.EvaluationError) as e:
            action()
        assert e.value.code == "too_late"
    db.session.rollback()


def test_dispute_upheld(scored, make_user):
    from crm.qa import services as qa

    op, sup, _, ev = scored
    with pytest.raises(qa.EvaluationError):
        qa.dispute(ev, op, "   ")
    qa.dispute(ev, op, "Срок я назвала в начале разговора, на 0:20")
    assert ev.operator_status == "disputed" and ev.dispute_reason.startswith("Срок я назвала")
    assert [e.id for e in qa.disputes()] == [ev.id]
    with pytest.raises(qa.EvaluationError) as e:
        qa.resolve(ev, op, outcome="upheld", comment="сама себе")
    assert e.value.code == "forbidden"
    with pytest.raises(qa.EvaluationError):
        qa.resolve(ev, sup, outcome="upheld", comment="")  # the operator is owed an explanation
    other_sup = make_user("supervisor")
    qa.resolve(ev, other_sup, outcome="upheld", comment="В начале назван не срок, а номер заявки")
    assert (ev.operator_status, ev.score, ev.revision, ev.resolved_by) == ("upheld", 85.0, 1, other_sup.id)
    assert qa.history(ev) == [] and qa.disputes() == []


def test_dispute_changed_is_a_new_revision_with_history(scored):
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import Evaluation, EvaluationRevision
    from crm.reports import services as reports

    op, sup, call, ev = scored
    qa.dispute(ev, op, "Я попрощалась: «всего доброго» на 0:26")
    card = qa.get_scorecard(ev.scorecard_id)
    with pytest.raises(qa.EvaluationError):  # the same answers are no change
        qa.resolve(ev, sup, outcome="changed", answers=dict(ev.answers))
    before_created = ev.created_at
    qa.resolve(ev, sup, outcome="changed", comment="Да, прощание было",
               answers={c["code"]: "yes" for c in card.criteria})
    db.session.expire_all()
    ev = qa.get(ev.id)
    assert (ev.operator_status, ev.score, ev.revision) == ("changed", 100.0, 2)
    assert ev.scorecard_id == card.id and ev.created_at == before_created and ev.revised_at is not None
    hist = qa.history(ev)
    assert [(h["revision"], h["score"], h["answers"]["closing"]) for h in hist] == [(1, 85.0, "no")]
    assert db.session.execute(sa.select(sa.func.count()).select_from(EvaluationRevision)).scalar_one() == 1
    # one evaluation, at its current score: the KPI is not double-counted
    assert db.session.execute(sa.select(sa.func.count()).select_from(Evaluation)).scalar_one() == 1
    assert qa.as_dict(ev)["revision"] == 2
    figures = reports.kpi(reports.period(None, None))
    assert figures["evaluations_total"] == 1 and figures["qa_score_avg"] == 100.0


def test_dispute_and_resolution_through_the_pages_are_logged(ctx, scored, login, make_user):
    from crm.db import db
    from crm.security.models import AccessLogEntry

    op, sup, call, ev = scored
    op_client = login(op)
    resp = op_client.post(f"/qa/evaluations/{ev.id}/dispute", data={"reason": "Прощание было"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert ev.operator_status == "disputed"
    sup_client = ctx.test_client()
    sign_in(sup_client, sup)
    page = sup_client.get(f"/qa/evaluations/{ev.id}").get_data(as_text=True)
    assert "Прощание было" in page and 'id="resolve-form"' in page
    assert f"/qa/evaluations/{ev.id}" in sup_client.get("/qa/disputes").get_data(as_text=True)
    answers = {f"c_{code}": "yes" for code in ev.answers}
    resp = sup_client.post(f"/qa/evaluations/{ev.id}/resolve", data={"outcome": "changed", "comment": "Согласен",
                                                                       **answers})
    assert resp.status_code == 302
    db.session.expire_all()
    assert ev.operator_status == "changed" and ev.score == 100.0
    actions = [(e.action, e.citizen_id) for e in db.session.execute(sa.select(AccessLogEntry)).scalars()]
    for action in ("evaluation.dispute", "evaluation.resolve", "evaluation.view"):
        assert (action, call.citizen_id) in actions, action
    # the operator sees the outcome and can no longer answer
    page = op_client.get(f"/qa/evaluations/{ev.id}").get_data(as_text=True)
    assert "изменена после спора" in page and "Оспорить оценку" not in page and "Редакция 1" in page


def test_operator_pages_are_closed_to_other_roles_and_vice_versa(ctx, scored, make_user, login):
    op, sup, _, ev = scored
    assert login(sup).get("/qa/my").status_code == 403
    assert login(op).get("/qa/disputes").status_code == 403
    assert login(op).post(f"/qa/evaluations/{ev.id}/resolve", data={"outcome": "upheld"}).status_code == 403
