"""Evaluations of calls: saving one, reading it (logged), the operator's acknowledgement or dispute
and the supervisor's resolution, lists for pages and the API."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app

from crm.calls import services as calls
from crm.db import atomic, db, utcnow
from crm.errors import Forbidden, NotFound
from crm.i18n import lazy_gettext as _l
from crm.qa.models import Evaluation, EvaluationRevision, QueueItem, Scorecard
from crm.qa.services.common import (OPERATOR_STATUS_RU, TRANSCRIBED, EvaluationError, qa_permitted,
                                    require_qa_consent)
from crm.qa.services.scorecards import criteria_of, ensure_default_scorecard, sections_of
from crm.qa.services.scoring import _parse_answers, _parse_notes, compute_score
from crm.security import audit


# --- evaluations -----------------------------------------------------------------------------------

@atomic
def evaluate(call: calls.Call, *, evaluator, answers: dict, comment: str | None = None,
             scorecard: Scorecard | None = None, notes: list[dict] | None = None) -> Evaluation:
    """Save an evaluation of ``call`` by ``evaluator`` (a supervisor) on ``scorecard`` (default: the
    active version). ``notes``: comments pinned to moments, ``[{at_s, text}]``. The operator may
    answer until ``CRM_QA_DISPUTE_DAYS`` days from now. The call's pending review-queue item is
    marked done. The free texts are encrypted under the call's own data key
    (:attr:`crm.calls.models.Call.speech_owner_id`), the recording's, so destroying the recording
    makes them unreadable in every copy. Raises :class:`EvaluationError` when the call's data were
    erased (``erased``, 410) or its recording destroyed (``recording_destroyed``, 410), the call
    does not pass the QA-consent gate (``no_consent``, 403), has no transcript yet or an answer is
    missing or invalid (then nothing is saved)."""
    if calls.is_erased(call):
        raise EvaluationError(_l("данные звонка уничтожены по запросу заявителя, оценить его нельзя"), "call_id",
                              "erased")
    _refuse_destroyed(call, _l("запись и расшифровка звонка уничтожены (заявитель отозвал согласие на запись "
                               "для контроля качества), оценить его нельзя"))
    require_qa_consent(call)
    if call.status not in TRANSCRIBED:
        raise EvaluationError(_l("звонок ещё не расшифрован"), "call_id", "not_transcribed")
    card = scorecard or ensure_default_scorecard()
    criteria = criteria_of(card)
    parsed = _parse_answers(criteria, answers)
    pinned = _parse_notes(notes, call.duration_s)
    score = compute_score(criteria, parsed)
    now = utcnow()
    ev = Evaluation(call_id=call.id, scorecard_id=card.id, evaluator_id=evaluator.id, operator_id=call.operator_id,
                    owner_id=call.speech_owner_id, answers=parsed, score=score, created_at=now, revision=1,
                    operator_status="new", respond_by=now + timedelta(days=dispute_days()))
    if comment and comment.strip():
        ev.comment = comment.strip()[:5000]
    if pinned:
        ev.notes = [{**n, "author_id": evaluator.id} for n in pinned]
    db.session.add(ev)
    db.session.flush()
    item = db.session.execute(db.select(QueueItem).where(QueueItem.call_id == call.id,
                                                         QueueItem.status == "pending")).scalar_one_or_none()
    if item is not None:
        item.status, item.done_at, item.evaluation_id = "done", now, ev.id
    audit.record("evaluation.create", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                 fields=["comment"] if (ev.comment_enc or ev.notes_enc) else [], purpose="call_recording_qa",
                 detail=f"score={score} scorecard={card.family}/v{card.version}")
    db.session.commit()
    return ev


def dispute_days() -> int:
    """Days the operator has to acknowledge or dispute an evaluation (``CRM_QA_DISPUTE_DAYS``, 5)."""
    return int(current_app.config["CRM_QA_DISPUTE_DAYS"])


def get(evaluation_id: str) -> Evaluation | None:
    return db.session.get(Evaluation, evaluation_id)


def get_for(user, evaluation_id: str) -> Evaluation:
    """The evaluation as ``user`` may see it: an operator only evaluations of their own calls.
    Raises :class:`crm.errors.NotFound` for an unknown id, :class:`crm.errors.Forbidden` otherwise."""
    ev = get(evaluation_id) if evaluation_id else None
    if ev is None:
        raise NotFound(_l("оценка не найдена"))
    if getattr(user, "role", None) == "operator" and ev.operator_id != user.id:
        raise Forbidden(_l("оператор видит только оценки своих звонков"))
    return ev


def _call_of(ev: Evaluation) -> calls.Call | None:
    return calls.get(ev.call_id)


def _log_read(ev: Evaluation, purpose: str = "call_recording_qa") -> None:
    call = _call_of(ev)
    audit.record("evaluation.view", citizen_id=call.citizen_id if call else None, call_id=ev.call_id,
                 appeal_id=call.appeal_id if call else None, fields=["comment"], purpose=purpose)


def _has_text(ev: Evaluation) -> bool:
    return bool(ev.comment_enc or ev.notes_enc or ev.dispute_reason_enc or ev.resolution_enc)


def _refuse_destroyed(call, message) -> None:
    """Raise :class:`EvaluationError` (``recording_destroyed``, 410) with ``message`` when the
    recording of ``call`` was destroyed: its data key, under which evaluation texts are encrypted,
    is gone, so no text about the call can be written any more."""
    if call is not None and calls.recording_destroyed(call):
        raise EvaluationError(message, "call_id", "recording_destroyed")


def texts_removed(call) -> bool:
    """Are the free texts of ``call``'s evaluations gone for good: the citizen's data erased, or the
    recording destroyed (with the call's data key, which encrypted them)? Nothing is decrypted then."""
    return call is None or calls.is_erased(call) or calls.recording_destroyed(call)


def texts_shown(call) -> bool:
    """May the free texts of ``call``'s evaluations (comment, pinned notes, dispute, resolution: they
    quote what was said) be shown? Only for a call that passes the QA-consent gate, the same gate
    as its transcript (:func:`crm.qa.services.common.qa_permitted`), and whose texts were not
    removed with its data or its recording (:func:`texts_removed`)."""
    return call is not None and not texts_removed(call) and qa_permitted(call)


def view(ev: Evaluation) -> dict:
    """The evaluation with its decrypted comment, pinned notes, dispute and resolution, its
    scorecard version, answers per section and revision history. The read is logged
    (``evaluation.view``) and committed when there is any text.

    For a call that fails the QA-consent gate (:func:`texts_shown`) the texts are withheld: nothing
    is decrypted or logged, ``comment``, ``dispute_reason`` and ``resolution`` are None, ``notes``
    ``[]`` and ``withheld`` True; the score and answers stay (statistics). Once the recording was
    destroyed (or the citizen erased) the texts are gone (:func:`texts_removed`): the same Nones and
    ``removed`` True, nothing decrypted."""
    card = db.session.get(Scorecard, ev.scorecard_id)
    call = _call_of(ev)
    removed = texts_removed(call)
    shown = not removed and texts_shown(call)
    if shown and _has_text(ev):
        _log_read(ev)
    data = as_dict(ev)
    data.update({"comment": ev.comment if shown else None, "notes": (ev.notes or []) if shown else [],
                 "dispute_reason": ev.dispute_reason if shown else None,
                 "resolution": ev.resolution if shown else None, "removed": removed,
                 "withheld": not shown and not removed and _has_text(ev),
                 "scorecard": card, "sections": sections_of(card), "history": history(ev)})
    db.session.commit()
    return data


@dataclass(frozen=True)
class EvaluationLine:
    """One evaluation as a call's pages list it (:func:`for_call`): the texts are None / ``[]`` when
    withheld (``withheld`` True), removed with the recording or the citizen's data (``removed``
    True) or when there are none."""

    id: str
    call_id: str
    created_at: datetime
    score: float
    evaluator_id: int | None
    operator_status: str
    comment: str | None = None
    notes: list = field(default_factory=list)
    withheld: bool = False
    removed: bool = False


def for_call(call_id: str, *, for_subject: bool = False) -> list[EvaluationLine]:
    """The call's evaluations, oldest first (:class:`EvaluationLine`). Their comments and notes are
    encrypted personal data (they may quote the call): they are decrypted only for a call that passes
    the QA-consent gate (:func:`texts_shown`), and then the read is logged (``evaluation.view``) and
    committed. ``for_subject``: for the citizen's own access export (152-ФЗ ст. 14), which is not
    quality control: the texts are given unless they were removed (the citizen's data erased or the
    recording destroyed, :func:`texts_removed`; then ``removed`` is True and nothing is decrypted)."""
    evs = list(db.session.execute(db.select(Evaluation).where(Evaluation.call_id == call_id)
                                  .order_by(Evaluation.created_at)).scalars())
    call = calls.get(call_id)
    removed = texts_removed(call)
    shown = not removed and (True if for_subject else texts_shown(call))
    if shown and any(_has_text(ev) for ev in evs):
        audit.record("evaluation.view", citizen_id=call.citizen_id if call else None, call_id=call_id,
                     appeal_id=call.appeal_id if call else None, fields=["comment"],
                     purpose=audit.REPORT_PURPOSE if for_subject else "call_recording_qa")
        db.session.commit()
    return [EvaluationLine(id=ev.id, call_id=ev.call_id, created_at=ev.created_at, score=ev.score,
                           evaluator_id=ev.evaluator_id, operator_status=ev.operator_status,
                           comment=ev.comment if shown else None, notes=(ev.notes or []) if shown else [],
                           withheld=not shown and not removed and _has_text(ev), removed=removed) for ev in evs]


def forget_texts(call_id: str, *, commit: bool = True) -> int:
    """Clear the free texts of the call's evaluations (comment, pinned notes, dispute reason,
    resolution: they can quote what was said), after the call's recording and transcript were
    destroyed; the scores, answers and states stay as statistics. Returns how many evaluations held
    a text. Commits unless ``commit`` is False."""
    result = db.session.execute(
        db.update(Evaluation).where(Evaluation.call_id == call_id, db.or_(
            Evaluation.comment_enc.isnot(None), Evaluation.notes_enc.isnot(None),
            Evaluation.dispute_reason_enc.isnot(None), Evaluation.resolution_enc.isnot(None)))
        .values(comment_enc=None, notes_enc=None, dispute_reason_enc=None, resolution_enc=None))
    if commit:
        db.session.commit()
    return result.rowcount or 0


def history(ev: Evaluation) -> list[dict]:
    """Earlier revisions of ``ev``, oldest first: ``[{revision, score, answers, evaluator_id,
    made_at, replaced_at, replaced_by}]``."""
    rows = db.session.execute(db.select(EvaluationRevision).where(EvaluationRevision.evaluation_id == ev.id)
                              .order_by(EvaluationRevision.revision)).scalars()
    return [{"revision": r.revision, "score": r.score, "answers": r.answers, "evaluator_id": r.evaluator_id,
             "scorecard_id": r.scorecard_id, "made_at": r.made_at, "replaced_at": r.replaced_at,
             "replaced_by": r.replaced_by} for r in rows]


def can_respond(ev: Evaluation, user, now: datetime | None = None) -> bool:
    """Whether ``user`` (the evaluated operator) may still acknowledge or dispute ``ev``: it is
    theirs, unanswered, and ``respond_by`` has not passed (evaluations made before 0006_qa have
    none and cannot be answered)."""
    now = now or utcnow()
    return (user is not None and ev.operator_id == getattr(user, "id", None) and ev.operator_status == "new"
            and ev.respond_by is not None and now <= ev.respond_by)


def _check_respond(ev: Evaluation, user) -> None:
    if ev.operator_id is None or ev.operator_id != getattr(user, "id", None):
        raise EvaluationError(_l("ответить на оценку может только оценённый оператор"), None, "forbidden")
    if ev.operator_status != "new":
        raise EvaluationError(_l("оценка уже %(status)s",
                                 status=_l(OPERATOR_STATUS_RU.get(ev.operator_status, ev.operator_status))),
                              None, "bad_state")
    if ev.respond_by is None or utcnow() > ev.respond_by:  # None: made before disputes existed
        raise EvaluationError(_l("срок ответа на оценку истёк"), None, "too_late")


@atomic
def acknowledge(ev: Evaluation, user) -> Evaluation:
    """The operator accepts the evaluation (within the dispute window). Raises :class:`EvaluationError`."""
    _check_respond(ev, user)
    ev.operator_status, ev.acknowledged_at = "acknowledged", utcnow()
    call = _call_of(ev)
    audit.record("evaluation.acknowledge", citizen_id=call.citizen_id if call else None, call_id=ev.call_id,
                 purpose="call_recording_qa")
    db.session.commit()
    return ev


@atomic
def dispute(ev: Evaluation, user, reason: str) -> Evaluation:
    """The operator disputes the evaluation with ``reason`` (required, up to 2000 characters),
    within the dispute window. Raises :class:`EvaluationError`, ``recording_destroyed`` (410) once
    the call's recording was destroyed (the reason would be encrypted under its deleted key; the
    operator may still acknowledge)."""
    _check_respond(ev, user)
    _refuse_destroyed(_call_of(ev), _l("запись звонка уничтожена (заявитель отозвал согласие на запись для "
                                       "контроля качества): оспорить оценку с текстом нельзя"))
    reason = (reason or "").strip()
    if not reason:
        raise EvaluationError(_l("объясните, с чем вы не согласны"), "reason")
    ev.operator_status, ev.disputed_at = "disputed", utcnow()
    ev.dispute_reason = reason[:2000]
    call = _call_of(ev)
    audit.record("evaluation.dispute", citizen_id=call.citizen_id if call else None, call_id=ev.call_id,
                 fields=["comment"], purpose="call_recording_qa")
    db.session.commit()
    return ev


@atomic
def resolve(ev: Evaluation, user, *, outcome: str, comment: str | None = None, answers: dict | None = None) -> Evaluation:
    """A supervisor resolves a dispute. ``outcome`` ``upheld``: the score stands (``comment``
    required, except once the call's recording was destroyed: no text can be kept then); ``changed``: ``answers`` on the evaluation's own scorecard version make a new
    revision (the replaced one goes to the history, ``revision`` + 1, the resolver becomes the
    evaluator). Raises :class:`EvaluationError`; ``recording_destroyed`` (410) for a ``comment`` once
    the call's recording was destroyed (its data key is gone)."""
    if getattr(user, "role", None) not in ("supervisor", "admin"):
        raise EvaluationError(_l("спор разрешает супервизор"), None, "forbidden")
    if ev.operator_status != "disputed":
        raise EvaluationError(_l("оценка не оспорена"), None, "bad_state")
    comment = (comment or "").strip()
    now = utcnow()
    call = _call_of(ev)
    if comment:
        _refuse_destroyed(call, _l("запись звонка уничтожена (заявитель отозвал согласие на запись для контроля "
                                   "качества): комментарий к решению сохранить нельзя"))
    if outcome == "upheld":
        if not comment and not calls.recording_destroyed(call):  # (after destruction no text can be kept)
            raise EvaluationError(_l("объясните оператору, почему оценка остаётся"), "comment")
        detail = "upheld"
    elif outcome == "changed":
        card = db.session.get(Scorecard, ev.scorecard_id)
        criteria = criteria_of(card)
        parsed = _parse_answers(criteria, answers)
        if parsed == ev.answers:
            raise EvaluationError(_l("ответы не изменились: выберите «оставить оценку»"), "answers")
        db.session.add(EvaluationRevision(evaluation_id=ev.id, revision=ev.revision, scorecard_id=ev.scorecard_id,
                                          evaluator_id=ev.evaluator_id, answers=ev.answers, score=ev.score,
                                          made_at=ev.revised_at or ev.created_at, replaced_at=now,
                                          replaced_by=user.id))
        old = ev.score
        ev.answers, ev.score = parsed, compute_score(criteria, parsed)
        ev.revision, ev.revised_at, ev.evaluator_id = ev.revision + 1, now, user.id
        detail = f"changed {old}->{ev.score} revision={ev.revision}"
    else:
        raise EvaluationError(_l("решение: оставить оценку или изменить её"), "outcome")
    ev.operator_status, ev.resolved_at, ev.resolved_by = outcome, now, user.id
    if comment:
        ev.resolution = comment[:2000]
    audit.record("evaluation.resolve", citizen_id=call.citizen_id if call else None, call_id=ev.call_id,
                 fields=["comment"] if comment else [], purpose="call_recording_qa", detail=detail)
    db.session.commit()
    return ev


def recent(limit: int = 100, operator_id: int | None = None) -> list[Evaluation]:
    q = db.select(Evaluation).order_by(Evaluation.created_at.desc()).limit(limit)
    if operator_id is not None:
        q = q.where(Evaluation.operator_id == operator_id)
    return list(db.session.execute(q).scalars())


def disputes(status: str = "disputed", limit: int = 200) -> list[Evaluation]:
    """Evaluations whose operator status is ``status`` (open disputes by default), oldest first."""
    return list(db.session.execute(db.select(Evaluation).where(Evaluation.operator_status == status)
                                   .order_by(Evaluation.disputed_at, Evaluation.created_at).limit(limit)).scalars())


def by_operator() -> list[dict]:
    """``[{operator_id, count, avg_score}]`` over all evaluations."""
    rows = db.session.execute(db.select(Evaluation.operator_id, db.func.count(), db.func.avg(Evaluation.score))
                              .group_by(Evaluation.operator_id)).all()
    return [{"operator_id": r[0], "count": r[1], "avg_score": round(float(r[2]), 1)} for r in rows]


def as_dict(ev: Evaluation) -> dict:
    """The API shape of an evaluation (no free text)."""
    card = db.session.get(Scorecard, ev.scorecard_id)
    return {"id": ev.id, "call_id": ev.call_id, "scorecard_id": ev.scorecard_id,
            "scorecard_version": card.version if card else None, "evaluator_id": ev.evaluator_id,
            "operator_id": ev.operator_id, "answers": ev.answers, "score": ev.score, "revision": ev.revision,
            "operator_status": ev.operator_status,
            "respond_by": ev.respond_by.isoformat() if ev.respond_by else None,
            "created_at": ev.created_at.isoformat()}
