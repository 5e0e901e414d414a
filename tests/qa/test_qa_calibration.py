"""Calibration: several supervisors score one call blind; the report shows their spread per
criterion against the reference evaluator."""
from __future__ import annotations

import re

import pytest

from tests.qa.test_qa_world import qa_env  # noqa: F401
from tests.factories import CallFactory, CitizenFactory
from tests.mfa import sign_in

CRITERIA = [
    {"code": "greeting", "label": "Приветствие", "weight": 20, "section": "s"},
    {"code": "tone", "label": "Тон", "weight": 40, "section": "s", "kind": "scale", "scale_max": 4},
    {"code": "info", "label": "Информация", "weight": 40, "critical": True, "section": "s"},
]


@pytest.fixture()
def session(ctx, make_user):
    """Supervisors ref, b, c (ref is the reference) on a consented call, scored on CRITERIA."""
    from crm.qa import services as qa

    op = make_user("operator")
    ref, b, c = make_user("supervisor"), make_user("supervisor"), make_user("supervisor")
    qa.ensure_default_scorecard()
    qa.save_scorecard(name="Калибровочная", sections=[{"code": "s", "title": "Всё"}], criteria=CRITERIA, user=ref)
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    s = qa.create_session(call, creator=ref, participant_ids=[ref.id, b.id, c.id], reference_id=ref.id,
                          title="Март")
    return s, ref, b, c, call


def test_report_spread_per_criterion_against_the_reference(session):
    from crm.qa import services as qa

    s, ref, b, c, _ = session
    qa.submit_calibration(s, ref, {"greeting": "yes", "tone": 4, "info": "yes"})   # 100
    qa.submit_calibration(s, b, {"greeting": "yes", "tone": 2, "info": "yes"})     # 80
    qa.submit_calibration(s, c, {"greeting": "no", "tone": "na", "info": "yes"})   # 40 / 60 → 66.7
    qa.close_session(s, ref)
    rep = qa.calibration_report(s)
    scores = {r["evaluator_id"]: (r["score"], r["delta"]) for r in rep["scores"]}
    assert scores == {ref.id: (100.0, 0.0), b.id: (80.0, -20.0), c.id: (66.7, -33.3)}
    assert rep["score_spread"]["range"] == 33.3 and rep["score_spread"]["mean_abs_delta"] == 26.6  # (20 + 33.3) / 2
    by = {r["code"]: r for r in rep["criteria"]}
    assert by["greeting"]["agreement"] == 0.5 and by["greeting"]["mean_abs_diff"] == 50.0
    assert by["tone"]["agreement"] == 0.0
    assert by["tone"]["mean_abs_diff"] == 50.0  # b: |2/4 − 4/4|; c's n/a is left out of the difference
    assert by["tone"]["stdev"] == 25.0  # population sd of 100 and 50
    assert by["info"]["agreement"] == 1.0 and by["info"]["mean_abs_diff"] == 0.0 and by["info"]["stdev"] == 0.0
    assert by["tone"]["answers"] == {ref.id: 4, b.id: 2, c.id: "na"}
    assert rep["missing"] == []


def test_answers_stay_hidden_until_the_session_is_closed(ctx, session, login):
    from crm.qa import services as qa

    s, ref, b, c, call = session
    qa.submit_calibration(s, ref, {"greeting": "no", "tone": 1, "info": "yes"})
    client = login(b)
    page = client.get(f"/qa/calibration/{s.id}").get_data(as_text=True)
    assert "оценил(а)" in page and 'id="calibration-report"' not in page
    review = client.get(f"/qa/review/{call.id}?session={s.id}").get_data(as_text=True)
    assert 'action="/qa/calibration/%d/score"' % s.id in review
    checked = re.findall(r'<input checked[^>]*name="c_[a-z_]+"', review)
    assert checked == []  # nothing preselected (not the reference's answers, nor a top mark)
    # nor shown as the call's evaluations (there are none: calibration answers are no evaluations)
    assert "Оценки звонка" not in review
    resp = client.post(f"/qa/calibration/{s.id}/score", data={"c_greeting": "yes", "c_tone": "3", "c_info": "yes"})
    assert resp.status_code == 302
    assert client.post(f"/qa/calibration/{s.id}/close").status_code == 302
    assert s.status == "open"  # only its creator (or an admin) closes it
    ref_client = ctx.test_client()
    sign_in(ref_client, ref)
    ref_client.post(f"/qa/calibration/{s.id}/close")
    page = client.get(f"/qa/calibration/{s.id}").get_data(as_text=True)
    assert 'id="calibration-report"' in page and "Не оценили" in page  # c did not score
    assert client.post(f"/qa/calibration/{s.id}/score",
                       data={"c_greeting": "no", "c_tone": "3", "c_info": "yes"}).status_code == 302
    assert qa.own_score(s, b.id).answers["greeting"] == "yes"  # closed: no more changes


def test_calibration_answers_are_not_evaluations(session):
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import Evaluation

    s, ref, b, _, _ = session
    qa.submit_calibration(s, ref, {"greeting": "yes", "tone": 4, "info": "yes"})
    qa.submit_calibration(s, ref, {"greeting": "yes", "tone": 3, "info": "yes"})  # resubmitting replaces
    assert qa.own_score(s, ref.id).answers["tone"] == 3 and len(qa.session_scores(s)) == 1
    assert db.session.execute(db.select(db.func.count()).select_from(Evaluation)).scalar_one() == 0


def test_who_may_take_part(ctx, session, make_user):
    from crm.qa import services as qa

    s, ref, b, c, call = session
    outsider = make_user("supervisor")
    with pytest.raises(qa.EvaluationError) as e:
        qa.submit_calibration(s, outsider, {"greeting": "yes", "tone": 4, "info": "yes"})
    assert e.value.code == "forbidden"
    with pytest.raises(qa.EvaluationError):
        qa.create_session(call, creator=ref, participant_ids=[ref.id], reference_id=ref.id)  # one is no calibration
    with pytest.raises(qa.EvaluationError):
        qa.create_session(call, creator=ref, participant_ids=[ref.id, b.id], reference_id=c.id)
    op = make_user("operator")
    with pytest.raises(qa.EvaluationError):
        qa.create_session(call, creator=ref, participant_ids=[ref.id, op.id], reference_id=ref.id)


def test_no_calibration_on_a_call_without_qa_consent(ctx, make_user):
    from crm.qa import services as qa

    a, b = make_user("supervisor"), make_user("supervisor")
    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory())
    with pytest.raises(qa.EvaluationError) as e:
        qa.create_session(call, creator=a, participant_ids=[a.id, b.id], reference_id=a.id)
    assert e.value.code == "no_consent"


def test_create_through_the_page(ctx, make_user, login):
    from crm.qa import services as qa

    a, b = make_user("supervisor"), make_user("supervisor")
    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=True))
    client = login(a)
    form = client.get(f"/qa/calibration?call_id={call.id}").get_data(as_text=True)
    assert 'id="calibration-form"' in form and b.display_name in form
    resp = client.post("/qa/calibration", data={"call_id": call.id, "title": "Апрель",
                                                "participants": [str(a.id), str(b.id)], "reference_id": str(a.id)})
    assert resp.status_code == 302
    (s,) = qa.sessions()
    assert resp.headers["Location"].endswith(f"/qa/calibration/{s.id}")
    assert s.participant_ids == sorted([a.id, b.id]) and s.reference_id == a.id and s.title == "Апрель"
