"""Quality assurance: versioned scorecards and score arithmetic, evaluations with comments pinned to
moments of the call, the operator's acknowledgement or dispute and its resolution, automatic check
results, sampling into per-supervisor review queues, calibration sessions and dashboards.

Services own the transaction: they check who may act, change the data, write the access-log entry
and commit. Errors are :class:`EvaluationError` (a Russian message, a ``code`` for the API).
"""
from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy.exc import IntegrityError

from crm.calls.models import Call
from crm.db import db, utcnow
from crm.i18n import N_
from crm.timeutil import local_tz
from crm.qa import checks
from crm.qa.models import (CalibrationScore, CalibrationSession, CheckResult, Evaluation, EvaluationRevision,
                           QueueItem, SamplingRule, Scorecard)
from crm.security import audit

DEFAULT_FAMILY = "default"
DEFAULT_SECTIONS = [{"code": "opening", "title": "Начало разговора"},
                    {"code": "handling", "title": "Работа с обращением"},
                    {"code": "closing", "title": "Завершение"}]
DEFAULT_CRITERIA = [
    {"code": "greeting", "label": "Приветствие: линия и имя оператора", "weight": 10, "critical": False,
     "section": "opening", "kind": "binary"},
    {"code": "problem_identified", "label": "Суть проблемы и адрес выяснены", "weight": 25, "critical": False,
     "section": "handling", "kind": "binary"},
    {"code": "correct_information", "label": "Информация верна, заявка оформлена правильно", "weight": 30,
     "critical": True, "section": "handling", "kind": "binary"},
    {"code": "politeness", "label": "Вежливость, без недопустимых фраз", "weight": 20, "critical": False,
     "section": "handling", "kind": "binary"},
    {"code": "closing", "label": "Завершение: срок, номер заявки, прощание", "weight": 15, "critical": False,
     "section": "closing", "kind": "binary"},
]
ANSWERS = ("yes", "no", "na")
ANSWERS_RU = {"yes": N_("да"), "no": N_("нет"), "na": N_("н/п")}
KINDS = {"binary": N_("да / нет / н/п"), "scale": N_("шкала")}
MAX_SCALE = 10
MAX_NOTES = 50
OPERATOR_STATUS_RU = {"new": N_("ожидает ответа"), "acknowledged": N_("принята"), "disputed": N_("оспорена"),
                      "upheld": N_("оставлена без изменений"), "changed": N_("изменена после спора")}
RULE_KINDS = {"random_per_operator": N_("Случайные звонки на оператора"), "complaint": N_("Звонки по жалобам"),
              "breached_appeal": N_("Звонки по обращениям с нарушенным сроком"),
              "checks_failed": N_("Звонки, отмеченные автоматическими проверками")}
PERIODS = {"day": N_("день"), "week": N_("неделя"), "month": N_("месяц")}
DEFAULT_RULES = [
    ("complaint", "Все звонки по жалобам", "week", {}),
    ("breached_appeal", "Все звонки по обращениям с нарушенным сроком", "week", {}),
    ("checks_failed", "Звонки без приветствия, прощания или с недопустимыми фразами", "week",
     {"codes": ["greeting", "closing", "forbidden_phrases"]}),
    ("random_per_operator", "Случайные звонки: 2 на оператора в неделю", "week", {"n": 2}),
]
TRANSCRIBED = ("done", "no_speech")


class EvaluationError(ValueError):
    """A QA action refused: Russian ``message``; ``field`` the form field at fault; ``code`` for
    the API (``invalid``, ``not_transcribed``, ``forbidden``, ``too_late``, ``bad_state``,
    ``no_consent``)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


# --- scorecards ------------------------------------------------------------------------------------

def criteria_of(card: Scorecard) -> list[dict]:
    """The criteria of ``card`` normalised: ``{code, label, weight (float > 0), critical (bool),
    section, kind ("binary"|"scale"), scale_max (int, scale only), pass_min (int, scale only:
    the lowest passing answer)}``. Rows made before sections existed read as binary criteria of
    section ``main``."""
    out = []
    for c in card.criteria or []:
        kind = c.get("kind") or "binary"
        item = {"code": c["code"], "label": c["label"], "weight": float(c.get("weight") or 0),
                "critical": bool(c.get("critical")), "section": c.get("section") or "main", "kind": kind}
        if kind == "scale":
            item["scale_max"] = int(c.get("scale_max") or 5)
            item["pass_min"] = int(c["pass_min"]) if c.get("pass_min") is not None else math.ceil(item["scale_max"] / 2)
        out.append(item)
    return out


def sections_of(card: Scorecard) -> list[dict]:
    """``[{code, title, criteria: [...]}]`` in display order; criteria of an undeclared section
    are shown under a section of their own."""
    crits = criteria_of(card)
    declared = list(card.sections or [])
    known = {s["code"] for s in declared}
    for c in crits:
        if c["section"] not in known:
            declared.append({"code": c["section"], "title": "Критерии" if c["section"] == "main" else c["section"]})
            known.add(c["section"])
    return [{**s, "criteria": [c for c in crits if c["section"] == s["code"]]} for s in declared
            if any(c["section"] == s["code"] for c in crits)]


def ensure_default_scorecard() -> Scorecard:
    """The active scorecard, creating the built-in one when none exists."""
    card = active_scorecard()
    if card is None:
        card = Scorecard(family=DEFAULT_FAMILY, name="Базовая форма оценки звонка", version=1,
                         sections=DEFAULT_SECTIONS, criteria=DEFAULT_CRITERIA, active=True)
        db.session.add(card)
        db.session.commit()
    return card


def active_scorecard(family: str | None = None) -> Scorecard | None:
    """The newest active scorecard version (of ``family`` when given)."""
    q = db.select(Scorecard).where(Scorecard.active.is_(True))
    if family:
        q = q.where(Scorecard.family == family)
    return db.session.execute(q.order_by(Scorecard.id.desc()).limit(1)).scalar_one_or_none()


def get_scorecard(scorecard_id: int) -> Scorecard | None:
    return db.session.get(Scorecard, scorecard_id)


def versions(family: str = DEFAULT_FAMILY) -> list[Scorecard]:
    """Every version of ``family``, newest first."""
    return list(db.session.execute(db.select(Scorecard).where(Scorecard.family == family)
                                   .order_by(Scorecard.version.desc())).scalars())


def validate_scorecard(name: str, sections: list[dict], criteria: list[dict]) -> tuple[list[dict], list[dict]]:
    """Check and normalise a scorecard definition; returns ``(sections, criteria)``.

    ``sections``: ``[{code, title}]``; ``criteria``: ``[{code, label, weight, critical, section,
    kind, scale_max?, pass_min?}]``. Codes are latin letters, digits and ``_``; weights > 0;
    a scale runs 0..``scale_max`` (1–10) with ``pass_min`` ≤ ``scale_max``. Raises
    :class:`EvaluationError` naming the first problem."""
    import re

    if not (name or "").strip():
        raise EvaluationError("укажите название формы", "name")
    if not criteria:
        raise EvaluationError("в форме должен быть хотя бы один критерий", "criteria")
    codes = set()
    out_sections = []
    for s in sections:
        title = (s.get("title") or "").strip()
        code = s.get("code") or ""
        if not title:
            raise EvaluationError("у раздела нет названия", "sections")
        out_sections.append({"code": code, "title": title[:120]})
    section_codes = {s["code"] for s in out_sections}
    out = []
    for c in criteria:
        code = (c.get("code") or "").strip()
        label = (c.get("label") or "").strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", code):
            raise EvaluationError(f"код критерия «{code}»: латинские строчные буквы, цифры и _, до 40 знаков", "code")
        if code in codes:
            raise EvaluationError(f"код критерия «{code}» повторяется", "code")
        codes.add(code)
        if not label:
            raise EvaluationError(f"у критерия «{code}» нет формулировки", "label")
        try:
            weight = float(c.get("weight"))
        except (TypeError, ValueError):
            raise EvaluationError(f"вес критерия «{label}» должен быть числом", "weight") from None
        if not (0 < weight <= 1000):
            raise EvaluationError(f"вес критерия «{label}» должен быть больше 0 и не больше 1000", "weight")
        kind = c.get("kind") or "binary"
        if kind not in KINDS:
            raise EvaluationError(f"неизвестный тип критерия «{kind}»", "kind")
        section = c.get("section") or (out_sections[0]["code"] if out_sections else "main")
        if out_sections and section not in section_codes:
            raise EvaluationError(f"критерий «{label}»: неизвестный раздел", "section")
        item = {"code": code, "label": label[:300], "weight": int(weight) if weight.is_integer() else weight,
                "critical": bool(c.get("critical")), "section": section, "kind": kind}
        if kind == "scale":
            try:
                top = int(c.get("scale_max") or 5)
                pass_min = int(c["pass_min"]) if c.get("pass_min") not in (None, "") else math.ceil(top / 2)
            except (TypeError, ValueError):
                raise EvaluationError(f"шкала критерия «{label}» должна быть целым числом", "scale_max") from None
            if not (1 <= top <= MAX_SCALE):
                raise EvaluationError(f"шкала критерия «{label}»: от 0 до 1…{MAX_SCALE}", "scale_max")
            if not (0 <= pass_min <= top):
                raise EvaluationError(f"проходной балл критерия «{label}» должен быть от 0 до {top}", "pass_min")
            item["scale_max"], item["pass_min"] = top, pass_min
        out.append(item)
    if out_sections:
        used = {c["section"] for c in out}
        out_sections = [s for s in out_sections if s["code"] in used]
    return out_sections, out


def save_scorecard(*, name: str, sections: list[dict], criteria: list[dict], user=None,
                   family: str = DEFAULT_FAMILY) -> tuple[Scorecard, bool]:
    """Save an edited scorecard as a new version of ``family`` and make it the active one; older
    versions stay for the evaluations made on them. Returns ``(card, created)``: an unchanged
    definition creates nothing and returns the active version. Raises :class:`EvaluationError`."""
    sections, criteria = validate_scorecard(name, sections, criteria)
    current = active_scorecard(family)
    if current is not None and current.name == name.strip() and criteria_of(current) == criteria_of(
            Scorecard(criteria=criteria)) and (current.sections or []) == sections:
        return current, False
    last = db.session.execute(db.select(db.func.max(Scorecard.version)).where(Scorecard.family == family)).scalar()
    for old in db.session.execute(db.select(Scorecard).where(Scorecard.family == family,
                                                             Scorecard.active.is_(True))).scalars():
        old.active = False
    card = Scorecard(family=family, name=name.strip()[:120], version=(last or 0) + 1, sections=sections,
                     criteria=criteria, active=True, created_by=getattr(user, "id", None))
    db.session.add(card)
    db.session.commit()
    return card, True


# --- score arithmetic ------------------------------------------------------------------------------

def parse_answer(criterion: dict, raw) -> str | int:
    """One answer checked against its criterion: ``"yes"``/``"no"``/``"na"`` for a binary
    criterion; an integer 0..scale_max (given as int or digits) or ``"na"`` for a scale. Raises
    :class:`EvaluationError`."""
    c = criterion
    if raw is None or raw == "":
        raise EvaluationError(f"нет ответа по критерию «{c['label']}»", c["code"])
    if isinstance(raw, str):
        raw = raw.strip().lower()
    if raw == "na":
        return "na"
    if (c.get("kind") or "binary") == "scale":
        top = int(c.get("scale_max") or 5)
        value = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        if isinstance(raw, str) and raw.isdigit():
            value = int(raw)
        if value is None or not 0 <= value <= top:
            raise EvaluationError(f"по критерию «{c['label']}» ответ — число от 0 до {top} или «н/п»", c["code"])
        return value
    if raw not in ("yes", "no"):
        raise EvaluationError(f"по критерию «{c['label']}» ответ — да, нет или н/п", c["code"])
    return raw


def answer_value(criterion: dict, answer) -> float | None:
    """An answer as a fraction 0–1 of the criterion's weight (yes 1, no 0, scale value/max);
    None for n/a."""
    if answer == "na" or answer is None:
        return None
    if (criterion.get("kind") or "binary") == "scale":
        return int(answer) / int(criterion.get("scale_max") or 5)
    return 1.0 if answer == "yes" else 0.0


def answer_failed(criterion: dict, answer) -> bool | None:
    """True when the answer fails the criterion (binary: no; scale: below ``pass_min``); None for n/a."""
    if answer == "na" or answer is None:
        return None
    if (criterion.get("kind") or "binary") == "scale":
        top = int(criterion.get("scale_max") or 5)
        pass_min = criterion.get("pass_min")
        return int(answer) < (int(pass_min) if pass_min is not None else math.ceil(top / 2))
    return answer == "no"


def compute_score(criteria: list[dict], answers: dict) -> float:
    """Score 0–100, one decimal: Σ weight × value over the criteria not answered n/a, divided by
    Σ weight of those criteria (n/a leaves the denominator); value is 1 for yes, 0 for no and
    answer / scale_max on a scale. A failed critical criterion (no, or a scale answer below its
    ``pass_min``) makes the whole score 0. All n/a scores 100.

    Raises :class:`EvaluationError` for a missing or invalid answer."""
    total = got = 0.0
    critical_failed = False
    for c in criteria:
        a = parse_answer(c, answers.get(c["code"]))
        value = answer_value(c, a)
        if value is None:
            continue
        if c.get("critical") and answer_failed(c, a):
            critical_failed = True
        w = float(c["weight"])
        total += w
        got += w * value
    if critical_failed:
        return 0.0
    return round(100.0 * got / total, 1) if total else 100.0


def _parse_answers(criteria: list[dict], answers) -> dict:
    if not isinstance(answers, dict):
        raise EvaluationError("ответы — объект «код критерия → ответ»", "answers")
    return {c["code"]: parse_answer(c, answers.get(c["code"])) for c in criteria}


def _parse_notes(notes, duration_s: float | None) -> list[dict]:
    """``[{at_s, text}]`` → checked, sorted by time. Times are seconds from the start of the call."""
    out = []
    for n in notes or []:
        text = (n.get("text") or "").strip()
        if not text:
            continue
        try:
            at = float(n.get("at_s"))
        except (TypeError, ValueError):
            raise EvaluationError("время комментария — секунды от начала звонка", "notes") from None
        if at < 0 or (duration_s and at > duration_s + 1) or math.isnan(at):
            raise EvaluationError("время комментария за пределами записи", "notes")
        out.append({"at_s": round(at, 1), "text": text[:1000]})
    if len(out) > MAX_NOTES:
        raise EvaluationError(f"не больше {MAX_NOTES} комментариев к одной оценке", "notes")
    return sorted(out, key=lambda n: n["at_s"])


def parse_time(value: str) -> float:
    """``"1:05"``, ``"65"`` or ``"65.5"`` → seconds. Raises :class:`EvaluationError`."""
    value = (value or "").strip().replace(",", ".")
    try:
        if ":" in value:
            m, s = value.split(":", 1)
            return int(m) * 60 + float(s)
        return float(value)
    except ValueError:
        raise EvaluationError(f"время «{value[:20]}»: минуты:секунды, например 1:05", "notes") from None


# --- evaluations -----------------------------------------------------------------------------------

def evaluate(call: Call, *, evaluator, answers: dict, comment: str | None = None,
             scorecard: Scorecard | None = None, notes: list[dict] | None = None) -> Evaluation:
    """Save an evaluation of ``call`` by ``evaluator`` (a supervisor) on ``scorecard`` (default: the
    active version). ``notes``: comments pinned to moments, ``[{at_s, text}]``. The operator may
    answer until ``CRM_QA_DISPUTE_DAYS`` days from now. The call's pending review-queue item is
    marked done. Raises :class:`EvaluationError` when the call has no transcript yet or an answer
    is missing or invalid (then nothing is saved)."""
    if call.status not in TRANSCRIBED:
        raise EvaluationError("звонок ещё не расшифрован", "call_id", "not_transcribed")
    card = scorecard or ensure_default_scorecard()
    criteria = criteria_of(card)
    parsed = _parse_answers(criteria, answers)
    pinned = _parse_notes(notes, call.duration_s)
    score = compute_score(criteria, parsed)
    now = utcnow()
    ev = Evaluation(call_id=call.id, scorecard_id=card.id, evaluator_id=evaluator.id, operator_id=call.operator_id,
                    owner_id=call.crypto_owner_id, answers=parsed, score=score, created_at=now, revision=1,
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


def _call_of(ev: Evaluation) -> Call | None:
    return db.session.get(Call, ev.call_id)


def _log_read(ev: Evaluation, purpose: str = "call_recording_qa") -> None:
    call = _call_of(ev)
    audit.record("evaluation.view", citizen_id=call.citizen_id if call else None, call_id=ev.call_id,
                 appeal_id=call.appeal_id if call else None, fields=["comment"], purpose=purpose)


def _has_text(ev: Evaluation) -> bool:
    return bool(ev.comment_enc or ev.notes_enc or ev.dispute_reason_enc or ev.resolution_enc)


def view(ev: Evaluation) -> dict:
    """The evaluation with its decrypted comment, pinned notes, dispute and resolution, its
    scorecard version, answers per section and revision history. The read is logged
    (``evaluation.view``) and committed when there is any text."""
    card = db.session.get(Scorecard, ev.scorecard_id)
    if _has_text(ev):
        _log_read(ev)
    data = as_dict(ev)
    data.update({"comment": ev.comment, "notes": ev.notes or [], "dispute_reason": ev.dispute_reason,
                 "resolution": ev.resolution, "scorecard": card, "sections": sections_of(card),
                 "history": history(ev)})
    db.session.commit()
    return data


def for_call(call_id: str) -> list[Evaluation]:
    """The call's evaluations, oldest first. Their comments are encrypted personal data (they may
    quote the call): when there are any, the read is logged (``evaluation.view``) and committed."""
    evs = list(db.session.execute(db.select(Evaluation).where(Evaluation.call_id == call_id)
                                  .order_by(Evaluation.created_at)).scalars())
    if any(_has_text(ev) for ev in evs):
        call = db.session.get(Call, call_id)
        audit.record("evaluation.view", citizen_id=call.citizen_id if call else None, call_id=call_id,
                     appeal_id=call.appeal_id if call else None, fields=["comment"], purpose="call_recording_qa")
        db.session.commit()
    return evs


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
        raise EvaluationError("ответить на оценку может только оценённый оператор", None, "forbidden")
    if ev.operator_status != "new":
        raise EvaluationError(f"оценка уже {OPERATOR_STATUS_RU.get(ev.operator_status, ev.operator_status)}",
                              None, "bad_state")
    if ev.respond_by is None or utcnow() > ev.respond_by:  # None: made before disputes existed
        raise EvaluationError("срок ответа на оценку истёк", None, "too_late")


def acknowledge(ev: Evaluation, user) -> Evaluation:
    """The operator accepts the evaluation (within the dispute window). Raises :class:`EvaluationError`."""
    _check_respond(ev, user)
    ev.operator_status, ev.acknowledged_at = "acknowledged", utcnow()
    call = _call_of(ev)
    audit.record("evaluation.acknowledge", citizen_id=call.citizen_id if call else None, call_id=ev.call_id,
                 purpose="call_recording_qa")
    db.session.commit()
    return ev


def dispute(ev: Evaluation, user, reason: str) -> Evaluation:
    """The operator disputes the evaluation with ``reason`` (required, up to 2000 characters),
    within the dispute window. Raises :class:`EvaluationError`."""
    _check_respond(ev, user)
    reason = (reason or "").strip()
    if not reason:
        raise EvaluationError("объясните, с чем вы не согласны", "reason")
    ev.operator_status, ev.disputed_at = "disputed", utcnow()
    ev.dispute_reason = reason[:2000]
    call = _call_of(ev)
    audit.record("evaluation.dispute", citizen_id=call.citizen_id if call else None, call_id=ev.call_id,
                 fields=["comment"], purpose="call_recording_qa")
    db.session.commit()
    return ev


def resolve(ev: Evaluation, user, *, outcome: str, comment: str | None = None, answers: dict | None = None) -> Evaluation:
    """A supervisor resolves a dispute. ``outcome`` ``upheld``: the score stands (``comment``
    required); ``changed``: ``answers`` on the evaluation's own scorecard version make a new
    revision (the replaced one goes to the history, ``revision`` + 1, the resolver becomes the
    evaluator). Raises :class:`EvaluationError`."""
    if getattr(user, "role", None) not in ("supervisor", "admin"):
        raise EvaluationError("спор разрешает супервизор", None, "forbidden")
    if ev.operator_status != "disputed":
        raise EvaluationError("оценка не оспорена", None, "bad_state")
    comment = (comment or "").strip()
    now = utcnow()
    call = _call_of(ev)
    if outcome == "upheld":
        if not comment:
            raise EvaluationError("объясните оператору, почему оценка остаётся", "comment")
        detail = "upheld"
    elif outcome == "changed":
        card = db.session.get(Scorecard, ev.scorecard_id)
        criteria = criteria_of(card)
        parsed = _parse_answers(criteria, answers)
        if parsed == ev.answers:
            raise EvaluationError("ответы не изменились: выберите «оставить оценку»", "answers")
        db.session.add(EvaluationRevision(evaluation_id=ev.id, revision=ev.revision, scorecard_id=ev.scorecard_id,
                                          evaluator_id=ev.evaluator_id, answers=ev.answers, score=ev.score,
                                          made_at=ev.revised_at or ev.created_at, replaced_at=now,
                                          replaced_by=user.id))
        old = ev.score
        ev.answers, ev.score = parsed, compute_score(criteria, parsed)
        ev.revision, ev.revised_at, ev.evaluator_id = ev.revision + 1, now, user.id
        detail = f"changed {old}->{ev.score} revision={ev.revision}"
    else:
        raise EvaluationError("решение: оставить оценку или изменить её", "outcome")
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


# --- automatic checks ------------------------------------------------------------------------------

def _check_overrides() -> dict:
    return current_app.config["CRM_QA_CHECKS"]


def store_checks(call_id: str, segments: list[dict]) -> list[dict]:
    """Run the automatic checks over ``segments`` (``{start, end, speaker, text}``) and replace the
    call's stored results; returns them (``[{code, passed, detail, value, at_s}]``). Commits."""
    results = checks.run(segments, _check_overrides())
    db.session.execute(db.delete(CheckResult).where(CheckResult.call_id == call_id))
    for r in results:
        db.session.add(CheckResult(call_id=call_id, code=r["code"], passed=r["passed"], detail=r["detail"],
                                   value=r["value"], at_s=r["at_s"]))
    db.session.commit()
    return results


def after_transcript(call_id: str, segments: list[dict]) -> None:
    """Hook for the transcription job once the transcript is saved: store the automatic checks.
    ``segments`` are the transcriber's (plaintext in the job's memory; nothing is decrypted again).
    A failure is logged and leaves the call as it is (the API computes the checks on first read)."""
    try:
        store_checks(call_id, [dict(s) for s in segments])
    except Exception:  # the transcript is saved; the checks are a hint
        db.session.rollback()
        current_app.logger.exception("automatic QA checks failed for call %s", call_id)


def check_results(call_id: str) -> list[dict]:
    """Stored results of the call, in :data:`crm.qa.checks.CODES` order."""
    rows = db.session.execute(db.select(CheckResult).where(CheckResult.call_id == call_id)).scalars().all()
    order = {c: i for i, c in enumerate(checks.CODES)}
    return [{"code": r.code, "passed": r.passed, "detail": r.detail, "value": r.value, "at_s": r.at_s,
             "label": checks.LABELS.get(r.code, r.code), "criterion": checks.HINT_CRITERIA.get(r.code)}
            for r in sorted(rows, key=lambda r: order.get(r.code, 99))]


def checks_for_call(call: Call, segments: list[dict]) -> list[dict]:
    """``qa_checks`` of ``GET /api/v1/calls/{id}``: ``[{code, passed, detail}]`` once the call is
    transcribed (``[]`` before), codes ``greeting`` and ``closing`` among them. Stored results
    are used; a call transcribed before they existed gets them computed from ``segments`` (already
    decrypted and logged by the caller) and stored."""
    if call.status not in TRANSCRIBED:
        return []
    stored = check_results(call.id)
    if not stored:
        try:
            stored = store_checks(call.id, segments)
        except IntegrityError:  # a concurrent reader stored them first
            db.session.rollback()
            stored = check_results(call.id)
    return [{"code": r["code"], "passed": r["passed"], "detail": r["detail"]} for r in stored]


# --- consent ---------------------------------------------------------------------------------------

def qa_allowed(citizen_id: str | None) -> bool:
    """May the call of ``citizen_id`` be used for quality control? Only with the citizen's
    consent to ``call_recording_qa`` (152-ФЗ ст. 9; withdrawal stops it at once): a call tied to
    no citizen, or to one who never consented or withdrew, is not used. Uses
    ``crm.consent.services.may_use_for_qa`` when present, else ``has_consent``."""
    if not citizen_id:
        return False
    from crm.consent import services as consent

    may = getattr(consent, "may_use_for_qa", None)
    if may is not None:
        return bool(may(citizen_id))
    return consent.has_consent(citizen_id, "call_recording_qa")


# --- sampling and the review queue -----------------------------------------------------------------

def ensure_rules() -> list[SamplingRule]:
    """The sampling rules, creating :data:`DEFAULT_RULES` when there are none."""
    rules = list(db.session.execute(db.select(SamplingRule).order_by(SamplingRule.id)).scalars())
    if not rules:
        for kind, name, period, params in DEFAULT_RULES:
            db.session.add(SamplingRule(kind=kind, name=name, period=period, params=dict(params), active=True))
        db.session.commit()
        rules = list(db.session.execute(db.select(SamplingRule).order_by(SamplingRule.id)).scalars())
    return rules


def update_rule(rule_id: int, *, active: bool, period: str, n: int | None = None,
                codes: list[str] | None = None) -> SamplingRule:
    """Change a sampling rule. Raises :class:`EvaluationError` for an unknown rule, period, count
    (0–100) or check code."""
    rule = db.session.get(SamplingRule, rule_id)
    if rule is None:
        raise EvaluationError("правило не найдено", "rule_id")
    if period not in PERIODS:
        raise EvaluationError("период: день, неделя или месяц", "period")
    params = dict(rule.params or {})
    if rule.kind == "random_per_operator":
        if n is None or not 0 <= int(n) <= 100:
            raise EvaluationError("число звонков на оператора: от 0 до 100", "n")
        params["n"] = int(n)
    if rule.kind == "checks_failed":
        unknown = [c for c in codes or [] if c not in checks.CODES]
        if unknown or not codes:
            raise EvaluationError("выберите автоматические проверки", "codes")
        params["codes"] = list(codes)
    rule.active, rule.period, rule.params = bool(active), period, params
    db.session.commit()
    return rule


def period_of(kind: str, day: date) -> tuple[str, datetime, datetime]:
    """``(key, start, end)`` of the ``day``/``week``/``month`` containing ``day`` in
    ``CRM_TIMEZONE``: key ``2026-03-02``, ``2026-W10`` (ISO week) or ``2026-03``; start and end
    in UTC, end exclusive."""
    tz = local_tz()
    if kind == "day":
        first, last, key = day, day + timedelta(days=1), day.isoformat()
    elif kind == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
        y, w, _ = day.isocalendar()
        key = f"{y}-W{w:02d}"
    elif kind == "month":
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
        key = f"{day.year}-{day.month:02d}"
    else:
        raise EvaluationError(f"неизвестный период «{kind}»", "period")
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last, time(0), tz)
    return key, start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


_RULE_ORDER = {"complaint": 0, "breached_appeal": 1, "checks_failed": 2, "random_per_operator": 9}


def _appeal_flags(appeal_ids: set[str]) -> dict[str, tuple[bool, bool]]:
    """``appeal_id → (is_complaint, sla_breached)`` through the appeals service."""
    from crm.appeals import services as appeals

    out = {}
    for aid in appeal_ids:
        a = appeals.get(aid)
        if a is not None:
            out[aid] = (a.category == "complaint", bool(appeals.sla_state(a)["breached"]))
    return out


def _supervisors() -> list[int]:
    from crm.users.models import User

    return list(db.session.execute(db.select(User.id).where(User.role == "supervisor", User.active.is_(True))
                                   .order_by(User.id)).scalars())


def run_sampling(day: date | None = None, *, seed: int | str | None = None) -> dict[str, int]:
    """Put calls into the review queue by the active rules, each for its period containing ``day``
    (default today in ``CRM_TIMEZONE``). Returns ``{rule kind: calls added}``.

    Candidates are transcribed calls (status ``done``) made in the period whose citizen consents to
    ``call_recording_qa`` (:func:`qa_allowed`) and that are not queued yet. The rules for
    complaints, breached appeals and failed automatic checks take every such call; then the random
    rule tops each operator up to ``n`` calls picked by that rule in the period. The random pick
    is deterministic: candidates sorted by id are shuffled by ``random.Random`` seeded with
    ``seed`` (default ``CRM_QA_SAMPLING_SEED``), the rule and period key, and the operator. A call
    is queued at most once, so running again for the same period adds nothing. New items go to
    the supervisor with the fewest pending items (lowest id on a tie)."""
    day = day or datetime.now(local_tz()).date()
    seed = seed if seed is not None else current_app.config["CRM_QA_SAMPLING_SEED"]
    rules = sorted((r for r in ensure_rules() if r.active), key=lambda r: (_RULE_ORDER.get(r.kind, 5), r.id))
    load = {sid: 0 for sid in _supervisors()}
    for sid, n in db.session.execute(db.select(QueueItem.assignee_id, db.func.count()).where(
            QueueItem.status == "pending", QueueItem.assignee_id.is_not(None)).group_by(QueueItem.assignee_id)):
        if sid in load:
            load[sid] = n
    added: dict[str, int] = defaultdict(int)
    consent_cache: dict[str | None, bool] = {}

    def allowed(citizen_id):
        if citizen_id not in consent_cache:
            consent_cache[citizen_id] = qa_allowed(citizen_id)
        return consent_cache[citizen_id]

    def enqueue(call: Call, rule: SamplingRule, key: str) -> None:
        assignee = min(load, key=lambda sid: (load[sid], sid)) if load else None
        if assignee is not None:
            load[assignee] += 1
        db.session.add(QueueItem(call_id=call.id, operator_id=call.operator_id, assignee_id=assignee, rule_id=rule.id,
                                 reasons=[rule.kind], period_key=key, status="pending"))
        added[rule.kind] += 1

    for rule in rules:
        key, start, end = period_of(rule.period, day)
        queued = set(db.session.execute(db.select(QueueItem.call_id).join(Call, Call.id == QueueItem.call_id).where(
            Call.created_at >= start, Call.created_at < end)).scalars())
        calls = [c for c in db.session.execute(db.select(Call).where(
            Call.status == "done", Call.created_at >= start, Call.created_at < end).order_by(Call.id)).scalars()
            if c.id not in queued and allowed(c.citizen_id)]
        if rule.kind in ("complaint", "breached_appeal"):
            flags = _appeal_flags({c.appeal_id for c in calls if c.appeal_id})
            idx = 0 if rule.kind == "complaint" else 1
            for c in calls:
                if c.appeal_id and flags.get(c.appeal_id, (False, False))[idx]:
                    enqueue(c, rule, key)
        elif rule.kind == "checks_failed":
            codes = list((rule.params or {}).get("codes") or ())
            flagged = set(db.session.execute(db.select(CheckResult.call_id).where(
                CheckResult.call_id.in_([c.id for c in calls]), CheckResult.code.in_(codes),
                CheckResult.passed.is_(False))).scalars()) if calls and codes else set()
            for c in calls:
                if c.id in flagged:
                    enqueue(c, rule, key)
        elif rule.kind == "random_per_operator":
            n = int((rule.params or {}).get("n") or 0)
            by_op: dict[int, list[Call]] = defaultdict(list)
            for c in calls:
                if c.operator_id is not None:
                    by_op[c.operator_id].append(c)
            for op_id in sorted(by_op):
                have = db.session.execute(db.select(db.func.count()).select_from(QueueItem).where(
                    QueueItem.rule_id == rule.id, QueueItem.period_key == key,
                    QueueItem.operator_id == op_id)).scalar_one()
                need = n - have
                if need <= 0:
                    continue
                pool = list(by_op[op_id])
                random.Random(f"{seed}|{rule.kind}|{rule.id}|{key}|{op_id}").shuffle(pool)
                for c in pool[:need]:
                    enqueue(c, rule, key)
        db.session.flush()
    db.session.commit()
    return dict(added)


def queue_for(user, include_all: bool = False) -> list[QueueItem]:
    """Pending items of ``user``'s review queue and unassigned ones (an admin, or ``include_all``:
    every pending item), oldest first. Items whose citizen has withdrawn the QA consent since they were queued are
    marked ``excluded`` and left out (the withdrawal takes the call out of the sample at once)."""
    q = db.select(QueueItem).where(QueueItem.status == "pending")
    if not include_all and getattr(user, "role", None) != "admin":
        q = q.where(db.or_(QueueItem.assignee_id == user.id, QueueItem.assignee_id.is_(None)))
    items = list(db.session.execute(q.order_by(QueueItem.created_at, QueueItem.id)).scalars())
    keep, changed = [], False
    for it in items:
        call = db.session.get(Call, it.call_id)
        if call is None or not qa_allowed(call.citizen_id):
            it.status, it.done_at, changed = "excluded", utcnow(), True
        else:
            keep.append(it)
    if changed:
        db.session.commit()
    return keep


def next_in_queue(user, after_call_id: str | None = None) -> str | None:
    """The call id of the next pending item in ``user``'s queue after ``after_call_id`` (or the
    first one); None when the queue is empty."""
    return next_after([it.call_id for it in queue_for(user)], after_call_id)


def next_after(ids: list[str], call_id: str | None) -> str | None:
    """The id after ``call_id`` in ``ids``, wrapping round (the first when ``call_id`` is not in it)."""
    if call_id in ids:
        i = ids.index(call_id)
        rest = ids[i + 1:] + ids[:i]
        return rest[0] if rest else None
    return ids[0] if ids else None


def queue_item_for_call(call_id: str) -> QueueItem | None:
    return db.session.execute(db.select(QueueItem).where(QueueItem.call_id == call_id)).scalar_one_or_none()


# --- calibration -----------------------------------------------------------------------------------

def create_session(call: Call, *, creator, participant_ids: list[int], reference_id: int,
                   title: str = "") -> CalibrationSession:
    """Open a calibration session on ``call`` with the active scorecard. Needs a transcribed call
    whose citizen consents to QA, at least two participants (supervisors or admins), the reference
    evaluator among them. Raises :class:`EvaluationError`."""
    from crm.users.models import User

    if call.status not in TRANSCRIBED:
        raise EvaluationError("звонок ещё не расшифрован", "call_id", "not_transcribed")
    if not qa_allowed(call.citizen_id):
        raise EvaluationError("заявитель не давал согласия на контроль качества по записи (или отозвал его)",
                              "call_id", "no_consent")
    ids = sorted({int(i) for i in participant_ids})
    users = db.session.execute(db.select(User).where(User.id.in_(ids))).scalars().all()
    if len(ids) < 2 or len(users) != len(ids) or any(u.role not in ("supervisor", "admin") for u in users):
        raise EvaluationError("выберите не меньше двух супервизоров", "participants")
    if reference_id not in ids:
        raise EvaluationError("эталонный оценщик должен быть среди участников", "reference_id")
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


def submit_calibration(session: CalibrationSession, user, answers: dict) -> CalibrationScore:
    """``user``'s blind answers in an open session (resubmitting replaces them until the session
    is closed). Raises :class:`EvaluationError`."""
    if user.id not in (session.participant_ids or []):
        raise EvaluationError("вы не участник этой калибровки", None, "forbidden")
    if session.status != "open":
        raise EvaluationError("калибровка завершена", None, "bad_state")
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
    call = db.session.get(Call, session.call_id)
    audit.record("evaluation.create", citizen_id=call.citizen_id if call else None, call_id=session.call_id,
                 purpose="call_recording_qa", detail=f"calibration session={session.id} score={score}")
    db.session.commit()
    return row


def close_session(session: CalibrationSession, user) -> CalibrationSession:
    """Close the session (its creator or an admin); then the report is shown to the participants."""
    if user.id != session.created_by and user.role != "admin":
        raise EvaluationError("завершить калибровку может тот, кто её начал, или администратор", None, "forbidden")
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


# --- dashboards ------------------------------------------------------------------------------------

def _week_key(dt: datetime, tz: ZoneInfo) -> str:
    y, w, _ = dt.astimezone(tz).isocalendar()
    return f"{y}-W{w:02d}"


def dashboard(start: datetime, end: datetime, operator_id: int | None = None) -> dict:
    """QA figures for evaluations made in ``[start, end)`` (UTC), optionally one operator's:

    - ``total``, ``avg``;
    - ``by_operator``: ``[{operator_id, count, avg, min, max, trend: [{week, avg}]}]``;
    - ``by_criterion``: ``[{code, label, answered, avg_pct, failed, fail_rate}]`` (criteria matched
      by code across scorecard versions; ``failed``: no, or a scale answer below its pass mark);
    - ``trend``: ``[{week, count, avg}]`` per ISO week in ``CRM_TIMEZONE``;
    - ``distribution``: ``[{lo, hi, count}]``, ten buckets of ten points (100 in the last);
    - ``most_failed``: the five criteria with the highest fail rate (answered at least once);
    - ``checks``: ``[{code, label, total, failed, fail_rate}]`` of automatic checks on the calls
      made in the period."""
    tz = local_tz()
    q = db.select(Evaluation).where(Evaluation.created_at >= start, Evaluation.created_at < end)
    if operator_id is not None:
        q = q.where(Evaluation.operator_id == operator_id)
    evs = list(db.session.execute(q.order_by(Evaluation.created_at)).scalars())
    cards = {c.id: c for c in db.session.execute(db.select(Scorecard).where(
        Scorecard.id.in_({e.scorecard_id for e in evs}))).scalars()} if evs else {}
    crit_defs = {cid: {c["code"]: c for c in criteria_of(card)} for cid, card in cards.items()}

    ops: dict[int | None, list[Evaluation]] = defaultdict(list)
    weeks: dict[str, list[float]] = defaultdict(list)
    crit: dict[str, dict] = {}
    buckets = [0] * 10
    for e in evs:
        ops[e.operator_id].append(e)
        weeks[_week_key(e.created_at, tz)].append(e.score)
        buckets[min(int(e.score // 10), 9)] += 1
        for code, c in crit_defs.get(e.scorecard_id, {}).items():
            a = (e.answers or {}).get(code)
            v = answer_value(c, a)
            row = crit.setdefault(code, {"code": code, "label": c["label"], "answered": 0, "sum": 0.0, "failed": 0})
            row["label"] = c["label"]
            if v is None:
                continue
            row["answered"] += 1
            row["sum"] += v
            row["failed"] += 1 if answer_failed(c, a) else 0
    by_operator = []
    for op_id, items in ops.items():
        sc = [e.score for e in items]
        trend = defaultdict(list)
        for e in items:
            trend[_week_key(e.created_at, tz)].append(e.score)
        by_operator.append({"operator_id": op_id, "count": len(sc), "avg": round(sum(sc) / len(sc), 1),
                            "min": min(sc), "max": max(sc),
                            "trend": [{"week": w, "avg": round(sum(v) / len(v), 1)} for w, v in sorted(trend.items())]})
    by_operator.sort(key=lambda r: (r["avg"], r["operator_id"] or 0))
    by_criterion = []
    for row in crit.values():
        n = row["answered"]
        by_criterion.append({"code": row["code"], "label": row["label"], "answered": n,
                             "avg_pct": round(100 * row["sum"] / n, 1) if n else None, "failed": row["failed"],
                             "fail_rate": round(row["failed"] / n, 3) if n else None})
    most_failed = sorted((r for r in by_criterion if r["answered"]), key=lambda r: (-r["fail_rate"], r["code"]))[:5]
    check_q = (db.select(CheckResult.code, db.func.count(),
                         db.func.sum(db.case((CheckResult.passed.is_(False), 1), else_=0)))
               .join(Call, Call.id == CheckResult.call_id)
               .where(Call.created_at >= start, Call.created_at < end).group_by(CheckResult.code))
    if operator_id is not None:
        check_q = check_q.where(Call.operator_id == operator_id)
    check_rows = db.session.execute(check_q).all()
    order = {c: i for i, c in enumerate(checks.CODES)}
    check_stats = sorted(({"code": code, "label": checks.LABELS.get(code, code), "total": total,
                           "failed": int(failed or 0), "fail_rate": round(int(failed or 0) / total, 3) if total else None}
                          for code, total, failed in check_rows), key=lambda r: order.get(r["code"], 99))
    scores = [e.score for e in evs]
    return {"total": len(evs), "avg": round(sum(scores) / len(scores), 1) if scores else None,
            "by_operator": by_operator, "by_criterion": by_criterion,
            "trend": [{"week": w, "count": len(v), "avg": round(sum(v) / len(v), 1)} for w, v in sorted(weeks.items())],
            "distribution": [{"lo": 10 * i, "hi": 10 * i + 10 if i < 9 else 100, "count": buckets[i]} for i in range(10)],
            "most_failed": most_failed, "checks": check_stats}
