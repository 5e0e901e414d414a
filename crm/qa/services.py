"""Scorecards and evaluations: score arithmetic, saving an evaluation, listings."""
from __future__ import annotations

from crm.calls.models import Call
from crm.db import db
from crm.qa.models import Evaluation, Scorecard
from crm.security import audit

DEFAULT_CRITERIA = [
    {"code": "greeting", "label": "Приветствие: линия и имя оператора", "weight": 10, "critical": False},
    {"code": "problem_identified", "label": "Суть проблемы и адрес выяснены", "weight": 25, "critical": False},
    {"code": "correct_information", "label": "Информация верна, заявка оформлена правильно", "weight": 30,
     "critical": True},
    {"code": "politeness", "label": "Вежливость, без недопустимых фраз", "weight": 20, "critical": False},
    {"code": "closing", "label": "Завершение: срок, номер заявки, прощание", "weight": 15, "critical": False},
]
ANSWERS = ("yes", "no", "na")
ANSWERS_RU = {"yes": "да", "no": "нет", "na": "н/п"}


class EvaluationError(ValueError):
    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


def ensure_default_scorecard() -> Scorecard:
    """The active scorecard, creating the built-in one when none exists."""
    card = active_scorecard()
    if card is None:
        card = Scorecard(name="Базовая форма оценки звонка", version=1, criteria=DEFAULT_CRITERIA, active=True)
        db.session.add(card)
        db.session.commit()
    return card


def active_scorecard() -> Scorecard | None:
    return db.session.execute(db.select(Scorecard).where(Scorecard.active.is_(True))
                              .order_by(Scorecard.id.desc()).limit(1)).scalar_one_or_none()


def compute_score(criteria: list[dict], answers: dict[str, str]) -> float:
    """Score 0–100: sum of weights answered ``yes`` over the weights not ``na``; any critical
    criterion answered ``no`` makes it 0. All ``na`` scores 100. Raises :class:`EvaluationError`
    for a missing or invalid answer."""
    total = got = 0.0
    for c in criteria:
        a = answers.get(c["code"])
        if a not in ANSWERS:
            raise EvaluationError(f"нет ответа по критерию «{c['label']}»", c["code"])
        if a == "na":
            continue
        if a == "no" and c.get("critical"):
            return 0.0
        total += c["weight"]
        got += c["weight"] if a == "yes" else 0
    return round(100.0 * got / total, 1) if total else 100.0


def evaluate(call: Call, *, evaluator, answers: dict[str, str], comment: str | None = None,
             scorecard: Scorecard | None = None) -> Evaluation:
    """Save an evaluation of ``call`` by ``evaluator`` (a supervisor). Raises :class:`EvaluationError`
    when the call has no transcript yet or an answer is missing."""
    if call.status not in ("done", "no_speech"):
        raise EvaluationError("звонок ещё не расшифрован", "call_id", "not_transcribed")
    card = scorecard or ensure_default_scorecard()
    score = compute_score(card.criteria, answers)
    ev = Evaluation(call_id=call.id, scorecard_id=card.id, evaluator_id=evaluator.id, operator_id=call.operator_id,
                    owner_id=call.crypto_owner_id, answers={c["code"]: answers[c["code"]] for c in card.criteria},
                    score=score)
    if comment and comment.strip():
        ev.comment = comment.strip()[:5000]
    db.session.add(ev)
    audit.record("evaluation.create", citizen_id=call.citizen_id, call_id=call.id, purpose="call_recording_qa",
                 detail=f"score={score}")
    db.session.commit()
    return ev


def for_call(call_id: str) -> list[Evaluation]:
    """The call's evaluations, oldest first. Their comments are encrypted personal data (they may
    quote the call): when there are any, the read is logged (``evaluation.view``) and committed."""
    evs = list(db.session.execute(db.select(Evaluation).where(Evaluation.call_id == call_id)
                                  .order_by(Evaluation.created_at)).scalars())
    if any(ev.comment_enc for ev in evs):
        call = db.session.get(Call, call_id)
        audit.record("evaluation.view", citizen_id=call.citizen_id if call else None, call_id=call_id,
                     appeal_id=call.appeal_id if call else None, fields=["comment"], purpose="call_recording_qa")
        db.session.commit()
    return evs


def by_operator() -> list[dict]:
    """``[{operator_id, count, avg_score}]`` over all evaluations."""
    rows = db.session.execute(db.select(Evaluation.operator_id, db.func.count(), db.func.avg(Evaluation.score))
                              .group_by(Evaluation.operator_id)).all()
    return [{"operator_id": r[0], "count": r[1], "avg_score": round(float(r[2]), 1)} for r in rows]


def recent(limit: int = 100, operator_id: int | None = None) -> list[Evaluation]:
    q = db.select(Evaluation).order_by(Evaluation.created_at.desc()).limit(limit)
    if operator_id is not None:
        q = q.where(Evaluation.operator_id == operator_id)
    return list(db.session.execute(q).scalars())


def as_dict(ev: Evaluation) -> dict:
    return {"id": ev.id, "call_id": ev.call_id, "scorecard_id": ev.scorecard_id, "evaluator_id": ev.evaluator_id,
            "operator_id": ev.operator_id, "answers": ev.answers, "score": ev.score,
            "created_at": ev.created_at.isoformat()}
