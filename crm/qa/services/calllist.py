"""The supervisors' call list (/qa/calls): calls newest first with their appeal's number, the automatic
checks' summary and the evaluation, filtered and paged — a fixed number of queries per page (no query
per row). Nothing personal is read: no transcript is decrypted, appeal numbers and staff names only."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.db import db
from crm.qa import checks
from crm.qa.models import CheckResult, Evaluation
from crm.timeutil import local_tz

PAGE_SIZE = 50


@dataclass
class CallRow:
    call: object
    appeal_number: str | None = None
    passed: int = 0
    failed: list[str] = field(default_factory=list)  #: codes of the failed checks, in checks.CODES order
    unsure: list[str] = field(default_factory=list)
    score: float | None = None  #: the latest evaluation's score; None: not evaluated
    evaluations: int = 0


@dataclass
class CallPage:
    rows: list[CallRow]
    page: int
    has_more: bool


def _failed_clause():
    # rows older than the state column: failed when not passed
    return db.or_(CheckResult.state == "failed", db.and_(CheckResult.state.is_(None), CheckResult.passed.is_(False)))


def call_page(*, operator_id: int | None = None, start: date | None = None, end: date | None = None,
              evaluated: bool | None = None, has_failed: bool = False, has_unsure: bool = False,
              page: int = 1, page_size: int | None = None) -> CallPage:
    """One page of calls, newest first (``created_at``, then id: a stable order for offset paging).

    Filters: ``operator_id``; ``start``/``end`` days in ``CRM_TIMEZONE`` (both included); ``evaluated``
    True/False (has an evaluation or not); ``has_failed`` / ``has_unsure``: some automatic check failed /
    is unsure. ``page_size``: default :data:`PAGE_SIZE`. Three queries besides the page's own: check results, evaluations, appeal numbers."""
    Call = calls.Call
    page_size = page_size or PAGE_SIZE
    q = db.select(Call)
    if operator_id is not None:
        q = q.where(Call.operator_id == operator_id)
    tz = local_tz()
    if start is not None:
        q = q.where(Call.created_at >= datetime.combine(start, time(0), tz))
    if end is not None:
        q = q.where(Call.created_at < datetime.combine(end + timedelta(days=1), time(0), tz))
    has_evaluation = db.exists().where(Evaluation.call_id == Call.id)
    if evaluated is True:
        q = q.where(has_evaluation)
    elif evaluated is False:
        q = q.where(~has_evaluation)
    if has_failed:
        q = q.where(db.exists().where(CheckResult.call_id == Call.id, _failed_clause()))
    if has_unsure:
        q = q.where(db.exists().where(CheckResult.call_id == Call.id, CheckResult.state == "unsure"))
    page = max(1, int(page))
    found = list(db.session.execute(q.order_by(Call.created_at.desc(), Call.id.desc())
                                    .offset((page - 1) * page_size).limit(page_size + 1)).scalars())
    has_more = len(found) > page_size
    found = found[:page_size]
    ids = [c.id for c in found]
    rows = {c.id: CallRow(call=c) for c in found}
    if ids:
        order = {code: i for i, code in enumerate(checks.CODES)}
        results = db.session.execute(db.select(CheckResult.call_id, CheckResult.code, CheckResult.passed,
                                               CheckResult.state).where(CheckResult.call_id.in_(ids))).all()
        for call_id, code, passed, state in sorted(results, key=lambda r: order.get(r.code, 99)):
            state = state or ("passed" if passed else "failed")
            row = rows[call_id]
            if state == "passed":
                row.passed += 1
            elif state == "unsure":
                row.unsure.append(code)
            else:
                row.failed.append(code)
        for call_id, score, _at in db.session.execute(
                db.select(Evaluation.call_id, Evaluation.score, Evaluation.created_at)
                .where(Evaluation.call_id.in_(ids)).order_by(Evaluation.created_at, Evaluation.id)).all():
            rows[call_id].score = score  # the latest wins
            rows[call_id].evaluations += 1
        numbers = appeals.numbers_by_id(c.appeal_id for c in found)
        for c in found:
            rows[c.id].appeal_number = numbers.get(c.appeal_id)
    return CallPage(rows=[rows[i] for i in ids], page=page, has_more=has_more)
