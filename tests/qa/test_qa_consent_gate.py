"""One QA-consent gate (issue 13, point 6): a citizen who consented to ``call_recording_qa`` and
then refused it (the latest answer wins) has calls QA may no longer use. Each use refuses or
excludes the call: sampling, the review queue, the review page, evaluation (form and API),
calibration, the transcript search, and the transcript and recording shown for quality control.
The operator who handled the call still reads it for the appeal."""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import CallFactory, CitizenFactory, yes_to_all

PHRASE = "горячая вода"  # in GOOD_SEGMENTS: «нет горячей воды»


def _count(model) -> int:
    db.session.commit()
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def _log(action: str, call_id: str) -> list:
    from crm.security.models import AccessLogEntry

    db.session.commit()
    return list(db.session.execute(sa.select(AccessLogEntry).where(
        AccessLogEntry.action == action, AccessLogEntry.call_id == call_id)).scalars())


@pytest.fixture()
def world(ctx, make_user):
    """Two citizens who consented; ``refused`` refuses afterwards (on a later call, by the operator)."""
    from crm.consent import services as consent

    op, sup, sup2 = make_user("operator"), make_user("supervisor"), make_user("supervisor")
    kept_citizen = CitizenFactory(qa_consent=True)
    refused_citizen = CitizenFactory(qa_consent=True)
    kept = CallFactory(operator=op, citizen=kept_citizen)
    refused = CallFactory(operator=op, citizen=refused_citizen)
    return SimpleNamespace(op=op, sup=sup, sup2=sup2, kept=kept, call=refused, citizen=refused_citizen,
                           refuse=lambda: consent.record(refused_citizen, "call_recording_qa", channel="call",
                                                         given=False, operator_id=op.id))


def test_the_gate_answers_by_the_latest_answer(world):
    from crm.qa import services as qa

    assert qa.qa_permitted(world.call) and qa.qa_permitted(world.kept)
    world.refuse()
    assert not qa.qa_permitted(world.call) and qa.qa_permitted(world.kept)
    with pytest.raises(qa.EvaluationError) as err:
        qa.require_qa_consent(world.call)
    assert err.value.code == "no_consent" and err.value.status == 403
    assert qa.permitted_calls([world.call, world.kept]) == [world.kept]
    assert not qa.qa_permitted(None) and not qa.qa_permitted(CallFactory())  # no citizen: nobody's consent


def test_sampling_excludes_the_call(world):
    from crm.qa import services as qa
    from crm.timeutil import local_tz

    world.refuse()
    added = qa.run_sampling(datetime.now(local_tz()).date(), seed=1)
    queued = {it.call_id for it in qa.queue_for(world.sup, include_all=True)}
    assert world.kept.id in queued and world.call.id not in queued, (added, queued)


def test_the_review_queue_drops_the_call_queued_before_the_refusal(world):
    from crm.qa import services as qa
    from crm.timeutil import local_tz

    qa.run_sampling(datetime.now(local_tz()).date(), seed=1)
    assert world.call.id in {it.call_id for it in qa.queue_for(world.sup, include_all=True)}
    world.refuse()
    assert world.call.id not in {it.call_id for it in qa.queue_for(world.sup, include_all=True)}
    assert qa.queue_item_for_call(world.call.id).status == "excluded"


def test_the_review_page_refuses_and_decrypts_nothing(ctx, world):
    world.refuse()
    client = SharedContextClient(ctx, world.sup)
    resp = client.get(f"/qa/review/{world.call.id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "согласия на контроль качества" in html
    assert "горячей воды" not in html and _log("transcript.view", world.call.id) == []
    assert client.get(f"/qa/review/{world.kept.id}").status_code == 200


def test_evaluation_is_refused_by_form_and_api(ctx, world, api_token):
    from crm.qa import services as qa
    from crm.qa.models import Evaluation

    world.refuse()
    answers = yes_to_all(qa.ensure_default_scorecard())
    with pytest.raises(qa.EvaluationError) as err:
        qa.evaluate(world.call, evaluator=world.sup, answers=answers)
    assert err.value.code == "no_consent"
    client = SharedContextClient(ctx, world.sup)
    form = {f"c_{code}": value for code, value in answers.items()}
    assert client.post(f"/calls/{world.call.id}/evaluations", data=form).status_code == 403
    assert client.post(f"/calls/{world.call.id}/evaluations", data={**form, "next": "review"}).status_code == 403
    resp = ctx.test_client().post(f"/api/v1/calls/{world.call.id}/evaluations", json={"answers": answers},
                                  headers=api_token(world.sup))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "no_consent"
    assert _count(Evaluation) == 0
    # the other citizen's call is scored as before
    assert qa.evaluate(world.kept, evaluator=world.sup, answers=answers).score == 100.0


def test_calibration_is_refused_and_an_open_session_stops_taking_scores(world):
    from crm.qa import services as qa

    session = qa.create_session(world.call, creator=world.sup, participant_ids=[world.sup.id, world.sup2.id],
                                reference_id=world.sup.id)
    world.refuse()
    answers = yes_to_all(qa.ensure_default_scorecard())
    with pytest.raises(qa.EvaluationError) as err:
        qa.submit_calibration(session, world.sup2, answers)
    assert err.value.code == "no_consent" and qa.session_scores(session) == []
    with pytest.raises(qa.EvaluationError) as err:
        qa.create_session(world.call, creator=world.sup, participant_ids=[world.sup.id, world.sup2.id],
                          reference_id=world.sup.id)
    assert err.value.code == "no_consent"


def test_search_skips_the_call(world):
    from crm.calls import search

    before = search.search_transcripts(PHRASE, user=world.sup)
    assert {h.call_id for h in before.hits} == {world.kept.id, world.call.id}
    world.refuse()
    after = search.search_transcripts(PHRASE, user=world.sup)
    assert {h.call_id for h in after.hits} == {world.kept.id} and after.calls_skipped_no_consent == 1


def test_the_transcript_and_recording_are_not_shown_for_qa(ctx, world, api_token):
    world.refuse()
    sup = SharedContextClient(ctx, world.sup)
    page = sup.get(f"/calls/{world.call.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "горячей воды" not in html and "согласия на контроль качества" in html
    assert 'id="score-form"' not in html  # no scorecard to fill in
    assert sup.get(f"/calls/{world.call.id}/audio").status_code == 403
    data = ctx.test_client().get(f"/api/v1/calls/{world.call.id}", headers=api_token(world.sup)).get_json()
    assert data["transcript"] == {"segments": [], "withheld": "no_consent"}
    assert _log("transcript.view", world.call.id) == [] and _log("call.listen", world.call.id) == []
    # the operator who took the call still reads it for the appeal (another legal basis)
    op = SharedContextClient(ctx, world.op)
    assert "горячей воды" in op.get(f"/calls/{world.call.id}").get_data(as_text=True)
    assert op.get(f"/calls/{world.call.id}/audio").status_code == 200
    own = ctx.test_client().get(f"/api/v1/calls/{world.call.id}", headers=api_token(world.op)).get_json()
    assert len(own["transcript"]["segments"]) == 6 and "withheld" not in own["transcript"]
    # a consenting citizen's call is shown to QA as before
    assert "горячей воды" in sup.get(f"/calls/{world.kept.id}").get_data(as_text=True)


def test_the_automatic_checks_are_not_served_without_consent(ctx, world, api_token):
    """The automatic checks' details quote what was said: ``qa_checks`` of ``GET /api/v1/calls/{id}``
    is empty for a call that fails the gate (re-audit 6A), and filled for a consenting citizen's."""
    kept = ctx.test_client().get(f"/api/v1/calls/{world.kept.id}", headers=api_token(world.sup)).get_json()
    assert kept["qa_checks"] and {c["code"] for c in kept["qa_checks"]} >= {"greeting", "closing"}
    world.refuse()
    data = ctx.test_client().get(f"/api/v1/calls/{world.call.id}", headers=api_token(world.sup)).get_json()
    assert data["qa_checks"] == []


def test_destroying_the_recordings_empties_the_check_details(ctx, world, api_token):
    """A recording destroyed after the withdrawal takes the automatic checks' details with it (they
    quote what was said); pass/fail stays as a statistic (re-audit 6A)."""
    from crm.calls import services as calls
    from crm.qa.models import CheckResult

    ctx.test_client().get(f"/api/v1/calls/{world.call.id}", headers=api_token(world.sup))  # checks stored
    rows = lambda: db.session.execute(sa.select(CheckResult).where(CheckResult.call_id == world.call.id)).scalars().all()  # noqa: E731
    assert any(r.detail for r in rows())
    world.refuse()
    assert calls.destroy_qa_recordings(world.citizen.id) is not None
    db.session.expire_all()
    assert rows() and not any(r.detail for r in rows())
