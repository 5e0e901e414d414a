"""What is left of a call after its citizen refused QA and its recording was destroyed (re-audit 13.2a, b):

- the evaluations' free texts (comment, pinned notes: they quote what was said) follow the same
  QA-consent gate as the transcript on every page that shows them (the call page, the evaluation
  page): withheld and not decrypted without the consent, the score kept;
- destroying the recording (``call.erased``) clears those texts for good, keeping the scores as
  statistics, and clears the upload's original file name (``calls.original_name_enc``) too."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import CallFactory, CitizenFactory, yes_to_all

COMMENT = "Оператор повторил адрес Канареечная 7 вслух"
NOTE = "Заявительница назвала девичью фамилию Канарейкина"
FILE_NAME = "Звонок Канарейкиной 12-05.wav"


@pytest.fixture()
def no_transcription(monkeypatch):
    from crm.calls import services as calls

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call, **kw: None)


@pytest.fixture()
def world(ctx, make_user, recordings, no_transcription):
    from crm.consent import services as consent
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    citizen = CitizenFactory(qa_consent=True)
    call = CallFactory(operator=op, citizen=citizen, original_name=FILE_NAME)
    other = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), original_name=FILE_NAME)
    evs = [qa.evaluate(c, evaluator=sup, answers=yes_to_all(qa.ensure_default_scorecard()), comment=COMMENT, notes=[{"at_s": 1.0, "text": NOTE}])
           for c in (call, other)]
    return SimpleNamespace(op=op, sup=sup, citizen=citizen, call=call, other=other, ev=evs[0], other_ev=evs[1],
                           refuse=lambda: consent.record(citizen, "call_recording_qa", channel="call", given=False,
                                                         operator_id=op.id))


def _views(call_id: str) -> int:
    from crm.security.models import AccessLogEntry

    db.session.commit()
    return db.session.execute(sa.select(sa.func.count()).select_from(AccessLogEntry).where(
        AccessLogEntry.action == "evaluation.view", AccessLogEntry.call_id == call_id)).scalar_one()


def test_evaluation_texts_follow_the_qa_consent_gate(ctx, world):
    from crm.qa import services as qa

    sup = SharedContextClient(ctx, world.sup)
    before = sup.get(f"/qa/evaluations/{world.ev.id}").get_data(as_text=True)
    assert COMMENT in before and NOTE in before  # with the consent: shown (and logged)

    world.refuse()
    seen = _views(world.call.id)
    for url in (f"/qa/evaluations/{world.ev.id}", f"/calls/{world.call.id}"):
        resp = sup.get(url)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200, url
        assert COMMENT not in html and NOTE not in html, url
        assert f"{world.ev.score:g}" in html, url  # the score stays
    assert 'id="texts-withheld"' in sup.get(f"/qa/evaluations/{world.ev.id}").get_data(as_text=True)
    assert "комментарий скрыт" in sup.get(f"/calls/{world.call.id}").get_data(as_text=True)
    # the operator's own evaluation page too
    own = SharedContextClient(ctx, world.op).get(f"/qa/evaluations/{world.ev.id}").get_data(as_text=True)
    assert COMMENT not in own and NOTE not in own
    lines = qa.for_call(world.call.id)
    assert [(x.comment, x.notes, x.withheld) for x in lines] == [(None, [], True)]
    data = qa.view(qa.get(world.ev.id))
    assert data["comment"] is None and data["notes"] == [] and data["withheld"] is True
    assert _views(world.call.id) == seen, "nothing was decrypted, so no read is logged"
    # another citizen's call, still consented: unchanged
    assert qa.for_call(world.other.id)[0].comment == COMMENT


def test_destroying_the_recording_clears_the_evaluation_texts_and_the_file_name(ctx, world):
    from crm.calls import services as calls
    from crm.calls.models import Call
    from crm.qa.models import Evaluation

    assert world.call.original_name == FILE_NAME
    score = world.ev.score
    world.refuse()
    record = calls.destroy_qa_recordings(world.citizen.id)
    assert record is not None
    db.session.expire_all()
    ev = db.session.get(Evaluation, world.ev.id)
    assert (ev.comment_enc, ev.notes_enc, ev.dispute_reason_enc, ev.resolution_enc) == (None, None, None, None)
    assert ev.score == score and ev.answers, "the score stays as statistics"
    call = db.session.get(Call, world.call.id)
    assert call.recording_destroyed_at is not None
    assert call.original_name_enc is None, "the upload's file name goes with the recording"
    # the other citizen's call keeps all of it
    other_ev = db.session.get(Evaluation, world.other_ev.id)
    assert other_ev.comment == COMMENT and other_ev.notes[0]["text"] == NOTE
    assert db.session.get(Call, world.other.id).original_name == FILE_NAME
