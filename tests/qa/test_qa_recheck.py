"""``crm qa recheck`` (issue 18): the automatic checks recomputed from the stored transcript — after a
supervisor edits a call script, or after an upgrade changes how a check measures — and stored as the
transcription job stores them, without the audio. Calls the QA pipeline would not check are skipped the
same way: no QA consent, no transcript (not transcribed, the citizen's data erased, the recording and
transcript destroyed after a withdrawal). PostgreSQL (or SQLite) and Redis through the usual fixtures."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.db import db, utcnow
from tests.factories import GOOD_SEGMENTS, AppealFactory, CallFactory, CitizenFactory

SCRIPT = ("Начало: Здравствуйте, «горячая линия ЖКХ», оператор (имя).\n"
          "Завершение: Назовите «номер вашего обращения».\n"
          "Прощание: «Всего доброго»!")
LINE_2 = "строка 2 сценария «Нет горячей воды»: Назовите «номер вашего обращения»"


def _stored(call_id: str) -> dict[str, dict]:
    from crm.qa import services as qa

    db.session.expire_all()
    return {r["code"]: r for r in qa.check_results(call_id)}


def _rows(call_id: str) -> list[tuple]:
    """The call's stored result rows as they are in the table (id and time included: untouched means equal)."""
    from crm.qa.models import CheckResult

    db.session.expire_all()
    return [(r.id, r.code, r.passed, r.state, r.detail, r.value, r.at_s, r.created_at)
            for r in db.session.execute(sa.select(CheckResult).where(CheckResult.call_id == call_id)
                                        .order_by(CheckResult.code)).scalars()]


def _reads(call_id: str) -> list:
    from crm.security.models import AccessLogEntry

    db.session.commit()
    return list(db.session.execute(sa.select(AccessLogEntry).where(
        AccessLogEntry.action == "transcript.view", AccessLogEntry.call_id == call_id)).scalars())


def test_recheck_after_a_script_edit_stores_the_new_results_once(ctx, make_user, runner, api_token):
    from crm.kb import services as kb

    sup, op = make_user("supervisor"), make_user("operator")
    citizen = CitizenFactory(qa_consent=True)
    call = CallFactory(operator=op, appeal=AppealFactory(citizen=citizen, operator=op, topic="hot_water"))
    before = _stored(call.id)
    assert before["closing"]["passed"] is True  # no script when it was transcribed

    kb.create(sup, kind="script", topic="hot_water", title="Нет горячей воды", body=SCRIPT)
    assert _stored(call.id) == before  # the stored results keep the old wording until rechecked

    out = runner("qa", "recheck", "--call", call.id)
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "rechecked 1 (changed 1), skipped 0 (no transcript 0, no QA consent 0)"
    after = _stored(call.id)
    assert after["closing"]["state"] == "failed" and after["closing"]["detail"].startswith(
        f"по сценарию не сказана {LINE_2}. Найдено: "), after["closing"]["detail"]
    assert {c: r for c, r in after.items() if c != "closing"} == {c: r for c, r in before.items() if c != "closing"}
    # the API shows what was stored
    api = ctx.test_client().get(f"/api/v1/calls/{call.id}", headers=api_token(sup)).get_json()
    assert {c["code"]: c["detail"] for c in api["qa_checks"]}["closing"] == after["closing"]["detail"]

    # the transcript's read is logged, as quality control by the recheck
    reads = [e for e in _reads(call.id) if e.actor == "job:qa_recheck"]
    assert len(reads) == 1 and reads[0].purpose == "call_recording_qa" and reads[0].actor_role == "system"
    assert reads[0].citizen_id == citizen.id and reads[0].fields == "transcript"

    # idempotent: nothing changes the second time
    out = runner("qa", "recheck", "--call", call.id)
    assert out.exit_code == 0 and "rechecked 1 (changed 0)" in out.output, out.output
    assert _stored(call.id) == after


def test_a_transcribed_call_rechecked_gives_what_the_job_stored(ctx, make_user):
    """Straight after transcription a recheck changes nothing: the same checks, from the stored transcript."""
    from crm.qa import services as qa

    op = make_user("operator")
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    before = _stored(call.id)
    assert qa.recheck(call.id) == "unchanged"
    assert _stored(call.id) == before


#: A mono call as Whisper writes it, numbers in words: stored as «дом 5, квартира 17», «ответ в течение 10
#: рабочих дней», so the speech rate counts fewer words in the stored text than in Whisper's.
SAID_IN_WORDS = [
    {"start": 0.3, "end": 4.0, "speaker": "unknown", "channel": None,
     "text": "Горячая линия ЖКХ, оператор Анна, здравствуйте!"},
    {"start": 4.5, "end": 9.0, "speaker": "unknown", "channel": None,
     "text": "Улица Садовая, дом пять, квартира семнадцать, нет горячей воды."},
    {"start": 9.5, "end": 20.0, "speaker": "unknown", "channel": None,
     "text": "Записала, ответ в течение десяти рабочих дней, телефон восемь девятьсот двенадцать триста сорок пять "
             "шестьдесят семь восемьдесят девять."},
    {"start": 20.5, "end": 23.0, "speaker": "unknown", "channel": None, "text": "Спасибо за обращение, всего доброго."},
]


def test_the_job_hands_the_checks_the_segments_as_stored(ctx, make_user):
    """The transcription job's save path (:func:`crm.calls.services.save_transcript`) returns the segments
    as stored, numbers in digits, equal to what ``crm qa recheck`` reads back; checks stored from them (the
    job's ``call.transcribed`` hook) are what a recheck computes: ``unchanged``. From Whisper's raw text
    they were not (the speech rate counted the numbers' words)."""
    from types import SimpleNamespace

    from crm import hooks
    from crm.calls import services as calls
    from crm.qa import checks
    from crm.qa import services as qa
    from crm.security import audit

    op = make_user("operator")
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), transcribed=False)
    raw = [dict(s) for s in SAID_IN_WORDS]
    stored = calls.save_transcript(call, SimpleNamespace(status="done", language="ru", rtf=0.1, duration_s=23.0,
                                                         segments=[dict(s) for s in raw]))
    assert stored[1]["text"] == "Улица Садовая, дом 5, квартира 17, нет горячей воды."
    db.session.expire_all()
    assert stored == calls.stored_segments(calls.get(call.id), actor=audit.system_actor("test"))
    rate = {r["code"]: r for r in checks.run(stored)}["speech_rate"]
    assert rate["value"] != {r["code"]: r for r in checks.run(raw)}["speech_rate"]["value"]  # the difference is real

    hooks.fire("call.transcribed", call_id=call.id, segments=stored)  # as the job does
    before = _stored(call.id)
    assert before["speech_rate"]["value"] == pytest.approx(rate["value"], abs=1e-3)
    assert qa.recheck(call.id) == "unchanged"
    assert _stored(call.id) == before


def _mono_with_a_pause() -> list[dict]:
    """A mono call in one merged segment with Whisper's words: the operator puts the citizen on hold at
    3.0 s and comes back 12 s later, inside the segment."""
    words = [(0.0, 0.6, "Горячая"), (0.7, 1.2, "линия"), (1.3, 1.7, "ЖКХ,"), (1.8, 2.3, "оператор"),
             (2.4, 2.8, "Анна,"), (2.9, 3.0, "здравствуйте."), (15.0, 15.5, "Спасибо"), (15.6, 15.8, "за"),
             (15.9, 16.5, "ожидание,"), (16.6, 17.0, "всего"), (17.1, 17.6, "доброго.")]
    return [{"start": 0.0, "end": 17.6, "speaker": "unknown", "channel": None,
             "text": " ".join(w for _, _, w in words),
             "words": [{"start": a, "end": b, "word": w, "probability": 0.93} for a, b, w in words]}]


def test_recheck_recomputes_from_the_stored_words_without_audio(ctx, make_user, runner, recordings):
    """A call transcribed before the timing checks read word times (its results are stored as they were
    then): the recheck measures the pause between the stored words, no audio needed."""
    op = make_user("operator")
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), segments=_mono_with_a_pause(),
                       checks=False)
    for path in recordings.rglob("*"):  # no audio needed: the recording is gone from disk
        if path.is_file():
            path.unlink()
    assert _stored(call.id) == {}

    out = runner("qa", "recheck", "--all")
    assert out.exit_code == 0, out.output
    assert "rechecked 1 (changed 1)" in out.output
    silence = _stored(call.id)["silence"]
    assert silence["state"] == "failed" and silence["at_s"] == pytest.approx(3.0)
    assert silence["detail"] == "пауза 12,0 с на 3,0 с (допустимо до 10 с)"
    assert _stored(call.id)["greeting"]["state"] == "passed"


def test_calls_the_qa_pipeline_skips_are_skipped_untouched(ctx, make_user, runner):
    from crm.calls import services as calls
    from crm.consent import services as consent
    from crm.qa import services as qa
    from crm.security import audit
    from crm.security.shredding import erase_citizen

    op = make_user("operator")
    kept = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    refused_citizen = CitizenFactory(qa_consent=True)
    refused = CallFactory(operator=op, citizen=refused_citizen)
    destroyed_citizen = CitizenFactory(qa_consent=True)
    destroyed = CallFactory(operator=op, citizen=destroyed_citizen)
    erased_citizen = CitizenFactory(qa_consent=True)
    erased = CallFactory(operator=op, citizen=erased_citizen)
    nobodys = CallFactory(operator=op)  # tied to no citizen: nobody's consent
    queued = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), transcribed=False)

    # the citizen withdraws the QA consent (the latest answer wins)
    consent.record(refused_citizen, "call_recording_qa", channel="call", given=False, operator_id=op.id)
    # another withdraws it, the recording and transcript are destroyed, then consents again
    consent.record(destroyed_citizen, "call_recording_qa", channel="call", given=False, operator_id=op.id)
    assert calls.destroy_qa_recordings(destroyed_citizen.id) is not None
    consent.record(destroyed_citizen, "call_recording_qa", channel="call", given=True, operator_id=op.id)
    assert qa.qa_permitted(calls.get(destroyed.id))  # the gate lets it through: the transcript is gone
    # a third citizen's data are erased
    erase_citizen(erased_citizen.id, "требование заявителя (тест)", actor=audit.system_actor("test"))

    skipped = (refused, destroyed, erased, nobodys, queued)
    rows = {c.id: _rows(c.id) for c in skipped}
    assert rows[refused.id] and rows[erased.id] and not rows[queued.id]
    assert rows[destroyed.id] and not any(r[4] for r in rows[destroyed.id])  # details emptied with it

    kept_before = _stored(kept.id)
    out = runner("qa", "recheck", "--all")
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "rechecked 1 (changed 0), skipped 5 (no transcript 3, no QA consent 2)"
    assert _stored(kept.id) == kept_before
    for c in skipped:
        assert _rows(c.id) == rows[c.id], c  # not recomputed, not re-stored, no detail brought back
        assert [e for e in _reads(c.id) if e.actor == "job:qa_recheck"] == []  # nothing decrypted
    assert {c.id: qa.recheck(c.id) for c in skipped} == {
        refused.id: "no_consent", nobodys.id: "no_consent",
        destroyed.id: "no_transcript", erased.id: "no_transcript", queued.id: "no_transcript"}


def test_since_takes_the_calls_of_that_day_on(ctx, make_user, runner):
    from crm.qa.models import CheckResult
    from crm.timeutil import local_date

    op = make_user("operator")
    old = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), created_at=utcnow() - timedelta(days=10))
    new = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    db.session.execute(sa.delete(CheckResult))  # as if stored by a version without them
    db.session.commit()
    since = (local_date(utcnow()) - timedelta(days=1)).isoformat()

    out = runner("qa", "recheck", "--since", since)
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "rechecked 1 (changed 1), skipped 0 (no transcript 0, no QA consent 0)"
    assert _stored(new.id) and _stored(old.id) == {}


def test_recheck_needs_exactly_one_choice(ctx, runner):
    for args in ((), ("--all", "--call", "x"), ("--since", "2026-01-01", "--all")):
        out = runner("qa", "recheck", *args)
        assert out.exit_code == 2 and "exactly one of" in out.output, (args, out.output)
    out = runner("qa", "recheck", "--since", "01.12.2026")
    assert out.exit_code == 2 and "--since" in out.output, out.output
    for unknown in ("00000000-0000-0000-0000-000000000000", "42"):
        out = runner("qa", "recheck", "--call", unknown)
        assert out.exit_code == 1 and f"no call {unknown}" in out.output, out.output


def test_a_call_whose_checks_fail_is_counted_and_left_as_it_was(ctx, make_user, runner, monkeypatch):
    from crm.qa import checks

    op = make_user("operator")
    calls_ = [CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)) for _ in range(2)]
    rows = {c.id: _rows(c.id) for c in calls_}

    def broken(*args, **kwargs):
        raise RuntimeError("a check broke")

    monkeypatch.setattr(checks, "run", broken)
    out = runner("qa", "recheck", "--all")
    assert out.exit_code == 1, out.output
    assert "rechecked 0 (changed 0), skipped 0 (no transcript 0, no QA consent 0), failed 2" in out.output
    assert {c.id: _rows(c.id) for c in calls_} == rows
