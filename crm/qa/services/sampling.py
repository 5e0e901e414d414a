"""Sampling rules and the per-supervisor review queue: which transcribed calls (with the citizen's
consent) are put up for review, and in what order reviewers get them."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.db import atomic, db, utcnow
from crm.i18n import N_, lazy_gettext as _l
from crm.qa import checks
from crm.qa.models import CheckResult, QueueItem, SamplingRule
from crm.qa.services.common import EvaluationError, permitted_calls, qa_permitted
from crm.timeutil import local_tz
from crm.users import services as users

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


@atomic
def update_rule(rule_id: int, *, active: bool, period: str, n: int | None = None,
                codes: list[str] | None = None) -> SamplingRule:
    """Change a sampling rule. Raises :class:`EvaluationError` for an unknown rule, period, count
    (0–100) or check code."""
    rule = db.session.get(SamplingRule, rule_id)
    if rule is None:
        raise EvaluationError(_l("правило не найдено"), "rule_id")
    if period not in PERIODS:
        raise EvaluationError(_l("период: день, неделя или месяц"), "period")
    params = dict(rule.params or {})
    if rule.kind == "random_per_operator":
        if n is None or not 0 <= int(n) <= 100:
            raise EvaluationError(_l("число звонков на оператора: от 0 до 100"), "n")
        params["n"] = int(n)
    if rule.kind == "checks_failed":
        unknown = [c for c in codes or [] if c not in checks.CODES]
        if unknown or not codes:
            raise EvaluationError(_l("выберите автоматические проверки"), "codes")
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
        raise EvaluationError(_l("неизвестный период «%(kind)s»", kind=kind), "period")
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last, time(0), tz)
    return key, start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


_RULE_ORDER = {"complaint": 0, "breached_appeal": 1, "checks_failed": 2, "random_per_operator": 9}


def _appeal_flags(appeal_ids: set[str]) -> dict[str, tuple[bool, bool]]:
    """``appeal_id → (is_complaint, sla_breached)`` through the appeals service."""
    out = {}
    for aid in appeal_ids:
        a = appeals.get(aid)
        if a is not None:
            out[aid] = (a.category == "complaint", bool(appeals.sla_state(a)["breached"]))
    return out


def _supervisors() -> list[int]:
    return [u.id for u in users.active_with_roles("supervisor")]


def run_sampling(day: date | None = None, *, seed: int | str | None = None) -> dict[str, int]:
    """Put calls into the review queue by the active rules, each for its period containing ``day``
    (default today in ``CRM_TIMEZONE``). Returns ``{rule kind: calls added}``.

    Candidates are transcribed calls (status ``done``) made in the period whose citizen consents to
    ``call_recording_qa`` (the QA-consent gate, :func:`~crm.qa.services.common.permitted_calls`) and
    that are not queued yet. The rules for
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

    def enqueue(call: calls.Call, rule: SamplingRule, key: str) -> None:
        assignee = min(load, key=lambda sid: (load[sid], sid)) if load else None
        if assignee is not None:
            load[assignee] += 1
        db.session.add(QueueItem(call_id=call.id, operator_id=call.operator_id, assignee_id=assignee, rule_id=rule.id,
                                 reasons=[rule.kind], period_key=key, status="pending"))
        added[rule.kind] += 1

    for rule in rules:
        key, start, end = period_of(rule.period, day)
        in_period = calls.in_period(start, end, status="done")
        queued = set(db.session.execute(db.select(QueueItem.call_id).where(
            QueueItem.call_id.in_([c.id for c in in_period]))).scalars()) if in_period else set()
        # the QA-consent gate; a destroyed recording has nothing left to review
        candidates = permitted_calls(c for c in in_period if c.id not in queued and not calls.recording_destroyed(c))
        if rule.kind in ("complaint", "breached_appeal"):
            flags = _appeal_flags({c.appeal_id for c in candidates if c.appeal_id})
            idx = 0 if rule.kind == "complaint" else 1
            for c in candidates:
                if c.appeal_id and flags.get(c.appeal_id, (False, False))[idx]:
                    enqueue(c, rule, key)
        elif rule.kind == "checks_failed":
            codes = list((rule.params or {}).get("codes") or ())
            flagged = set(db.session.execute(db.select(CheckResult.call_id).where(
                CheckResult.call_id.in_([c.id for c in candidates]), CheckResult.code.in_(codes),
                CheckResult.passed.is_(False))).scalars()) if candidates and codes else set()
            for c in candidates:
                if c.id in flagged:
                    enqueue(c, rule, key)
        elif rule.kind == "random_per_operator":
            n = int((rule.params or {}).get("n") or 0)
            by_op: dict[int, list[calls.Call]] = defaultdict(list)
            for c in candidates:
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


def unqueued_count(day: date | None = None) -> int:
    """How many calls the sampling could still consider for the periods of the active rules containing
    ``day`` (default today in ``CRM_TIMEZONE``): transcribed (``done``), passing the QA-consent gate,
    recording not destroyed, and not in the review queue — the candidates of :func:`run_sampling`.
    Shown on an empty queue beside «Сформировать выборку»: the periodic run (``CRM_QA_SAMPLING_EVERY_S``)
    may not have come yet. Not every one of them will be queued: the rules decide (the random rule
    takes ``n`` per operator)."""
    day = day or datetime.now(local_tz()).date()
    periods = [period_of(r.period, day) for r in ensure_rules() if r.active]
    if not periods:
        return 0
    in_period = calls.in_period(min(p[1] for p in periods), max(p[2] for p in periods), status="done")
    queued = set(db.session.execute(db.select(QueueItem.call_id).where(
        QueueItem.call_id.in_([c.id for c in in_period]))).scalars()) if in_period else set()
    return len(permitted_calls(c for c in in_period if c.id not in queued and not calls.recording_destroyed(c)))


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
        call = calls.get(it.call_id)
        if not qa_permitted(call):  # the QA-consent gate
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
