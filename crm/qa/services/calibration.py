"""Calibration sessions: several supervisors score one call blind, then the spread of their scores
and answers against the reference evaluator is reported."""
from __future__ import annotations

import statistics

from crm.calls import services as calls
from crm.db import atomic, db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.qa.models import CalibrationScore, CalibrationSession, Scorecard
from crm.qa.services.common import TRANSCRIBED, EvaluationError, require_qa_consent
from crm.qa.services.scorecards import criteria_of, ensure_default_scorecard
from crm.qa.services.scoring import _parse_answers, answer_value, compute_score
from crm.security import audit
from crm.users import services as users


# --- calibration -----------------------------------------------------------------------------------

@atomic
def create_session(call: calls.Call, *, creator, participant_ids: list[int], reference_id: int,
                   title: str = "") -> CalibrationSession:
    """Open a calibration session on ``call`` with the active scorecard. Needs a transcribed call
    whose citizen consents to QA, at least two participants (supervisors or admins), the reference
    evaluator among them. Raises :class:`EvaluationError`."""
    require_qa_consent(call)
    if call.status not in TRANSCRIBED:
        raise EvaluationError(_l("звонок ещё не расшифрован"), "call_id", "not_transcribed")
    ids = sorted({int(i) for i in participant_ids})
    staff = users.by_ids(ids)
    if len(ids) < 2 or len(staff) != len(ids) or any(u.role not in ("supervisor", "admin") for u in staff):
        raise EvaluationError(_l("выберите не меньше двух супервизоров"), "participants")
    if reference_id not in ids:
        raise EvaluationError(_l("эталонный оценщик должен быть среди участников"), "reference_id")
    card = ensure_default_scorecard()
    session = CalibrationSession(call_id=call.id, scorecard_id=card.id, title=(title or "").strip()[:200],
                                 created_by=creator.id, reference_id=reference_id, participant_ids=ids, status="open")
    db.session.add(session)
    db.session.commit()
    return session


def get_session(session_id: int) -> CalibrationSession | None:
    return db.session.get(CalibrationSession, session_id)


def sessions(limit: int = 100) -> list[CalibrationSession]:
    return list(db.session.execute(db.select(CalibrationSession).order_by(CalibrationSession.created_at.desc())
                                   .limit(limit)).scalars())


def session_scores(session: CalibrationSession) -> list[CalibrationScore]:
    return list(db.session.execute(db.select(CalibrationScore).where(CalibrationScore.session_id == session.id)
                                   .order_by(CalibrationScore.evaluator_id)).scalars())


def own_score(session: CalibrationSession, user_id: int) -> CalibrationScore | None:
    return db.session.execute(db.select(CalibrationScore).where(
        CalibrationScore.session_id == session.id, CalibrationScore.evaluator_id == user_id)).scalar_one_or_none()


@atomic
def submit_calibration(session: CalibrationSession, user, answers: dict) -> CalibrationScore:
    """``user``'s blind answers in an open session (resubmitting replaces them until the session
    is closed) while the call passes the QA-consent gate. Raises :class:`EvaluationError`."""
    if user.id not in (session.participant_ids or []):
        raise EvaluationError(_l("вы не участник этой калибровки"), None, "forbidden")
    if session.status != "open":
        raise EvaluationError(_l("калибровка завершена"), None, "bad_state")
    call = calls.get(session.call_id)
    require_qa_consent(call)  # withdrawn since the session was opened: no more scoring
    card = db.session.get(Scorecard, session.scorecard_id)
    criteria = criteria_of(card)
    parsed = _parse_answers(criteria, answers)
    score = compute_score(criteria, parsed)
    row = own_score(session, user.id)
    if row is None:
        row = CalibrationScore(session_id=session.id, evaluator_id=user.id, answers=parsed, score=score)
        db.session.add(row)
    else:
        row.answers, row.score, row.created_at = parsed, score, utcnow()
    audit.record("evaluation.create", citizen_id=call.citizen_id if call else None, call_id=session.call_id,
                 purpose="call_recording_qa", detail=f"calibration session={session.id} score={score}")
    db.session.commit()
    return row


@atomic
def close_session(session: CalibrationSession, user) -> CalibrationSession:
    """Close the session (its creator or an admin); then the report is shown to the participants."""
    if user.id != session.created_by and user.role != "admin":
        raise EvaluationError(_l("завершить калибровку может тот, кто её начал, или администратор"), None, "forbidden")
    if session.status == "open":
        session.status, session.closed_at = "closed", utcnow()
        db.session.commit()
    return session


def _pstdev(values: list[float]) -> float | None:
    return round(statistics.pstdev(values), 3) if len(values) >= 2 else (0.0 if values else None)


def calibration_report(session: CalibrationSession) -> dict:
    """The spread of a calibration session against its reference evaluator.

    Returns ``{reference_id, evaluator_ids, scores: [{evaluator_id, score, delta}], score_spread:
    {min, max, range, stdev, mean_abs_delta}, criteria: [{code, label, kind, reference, answers:
    {evaluator_id: answer}, agreement, mean_abs_diff, stdev}], missing: [ids]}``. Per criterion,
    answers are compared as fractions of the criterion (yes 1, no 0, scale value/max; n/a counts
    as a value of its own for agreement and is left out of the differences): ``agreement`` is the
    share of the other evaluators who gave the reference answer, ``mean_abs_diff`` the mean
    |answer − reference| in percent of the criterion, ``stdev`` the population standard deviation
    of all evaluators' answers in percent. ``delta`` is score − reference score (points)."""
    card = db.session.get(Scorecard, session.scorecard_id)
    criteria = criteria_of(card)
    rows = {s.evaluator_id: s for s in session_scores(session)}
    ref = rows.get(session.reference_id)
    others = [uid for uid in sorted(rows) if uid != session.reference_id]
    scores = [{"evaluator_id": uid, "score": rows[uid].score,
               "delta": round(rows[uid].score - ref.score, 1) if ref else None,
               "reference": uid == session.reference_id} for uid in sorted(rows)]
    all_scores = [r.score for r in rows.values()]
    deltas = [abs(s["delta"]) for s in scores if s["delta"] is not None and not s["reference"]]
    spread = {"min": min(all_scores) if all_scores else None, "max": max(all_scores) if all_scores else None,
              "range": round(max(all_scores) - min(all_scores), 1) if all_scores else None,
              "stdev": _pstdev(all_scores), "mean_abs_delta": round(sum(deltas) / len(deltas), 1) if deltas else None}
    out_criteria = []
    for c in criteria:
        answers = {uid: rows[uid].answers.get(c["code"]) for uid in sorted(rows)}
        ref_answer = answers.get(session.reference_id) if ref else None
        agree = [answers[uid] == ref_answer for uid in others] if ref else []
        ref_v = answer_value(c, ref_answer) if ref else None
        diffs = [abs(answer_value(c, answers[uid]) - ref_v) * 100 for uid in others
                 if ref_v is not None and answer_value(c, answers[uid]) is not None]
        values = [answer_value(c, a) * 100 for a in answers.values() if answer_value(c, a) is not None]
        out_criteria.append({"code": c["code"], "label": c["label"], "kind": c["kind"],
                             "scale_max": c.get("scale_max"), "reference": ref_answer, "answers": answers,
                             "agreement": round(sum(agree) / len(agree), 3) if agree else None,
                             "mean_abs_diff": round(sum(diffs) / len(diffs), 1) if diffs else None,
                             "stdev": _pstdev(values)})
    return {"reference_id": session.reference_id, "evaluator_ids": sorted(rows), "scores": scores,
            "score_spread": spread, "criteria": out_criteria,
            "missing": [uid for uid in session.participant_ids or [] if uid not in rows]}
