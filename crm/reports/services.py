"""KPI queries for a period of Europe/Moscow days (``CRM_TIMEZONE``).

Read-only aggregates over the statistical columns of appeals, calls and evaluations (category,
topic, status, dates, scores): nothing is decrypted, so nothing goes into the access log. The
statistical columns survive a citizen's erasure, so erased citizens' appeals still count."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, literal, or_, select

from crm.appeals.catalog import CATEGORIES, TOPICS
from crm.appeals.models import Appeal
from crm.calls.models import Call
from crm.db import UTCDateTime, db, utcnow
from crm.errors import InvalidInput
from crm.timeutil import day_start, local_date, local_tz, parse_day
from crm.qa.models import Evaluation

NOT_COUNTED_FOR_SLA = ("rejected", "duplicate")
DEFAULT_DAYS = 30


class ReportError(InvalidInput):
    """A bad report parameter; ``field`` names it (code ``invalid_<field>``); the message is Russian."""

    def __init__(self, message: str, field: str):
        super().__init__(message, field=field, code=f"invalid_{field}")


@dataclass(frozen=True)
class Period:
    """Days ``first``..``last`` inclusive, and the UTC instants ``[start, end)`` they span."""

    first: date
    last: date
    start: datetime
    end: datetime


def period(first: str | None, last: str | None) -> Period:
    """The period from the ``from``/``to`` query values; ``to`` defaults to today (report time
    zone), ``from`` to 29 days before ``to``. Raises :class:`crm.errors.InvalidInput`."""
    last_day = parse_day(last, "to") if last else local_date(utcnow())
    first_day = parse_day(first, "from") if first else last_day - timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise ReportError("начало периода позже его конца", "from")
    return Period(first_day, last_day, day_start(first_day), day_start(last_day + timedelta(days=1)))


def _counts(column, where, codes) -> dict[str, int]:
    rows = db.session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    out = {code: 0 for code in codes}
    out.update({code: n for code, n in rows})
    return out


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def kpi(p: Period, now: datetime | None = None) -> dict:
    """KPIs of the appeals received, calls recorded and evaluations made in ``p``.

    ``sla_compliance``: of the period's appeals (rejected and duplicates left out), the share
    resolved (or closed) by their ``resolve_by``, or still open and not past it at ``now``.
    ``repeat_rate``: share of the period's appeals linked to an earlier one (design.md). Ratios are
    0–1 and ``None`` when there is nothing to divide; ``csat_avg`` is ``None``: no CSAT survey
    results are collected yet."""
    now = now or utcnow()
    in_period = (Appeal.created_at >= p.start, Appeal.created_at < p.end)
    counted = Appeal.status.not_in(NOT_COUNTED_FOR_SLA)
    done_or_now = func.coalesce(Appeal.resolved_at, Appeal.closed_at, literal(now, UTCDateTime()))
    on_time = and_(counted, or_(Appeal.resolve_by.is_(None), done_or_now <= Appeal.resolve_by))
    total, repeats, sla_total, sla_ok = db.session.execute(select(
        func.count(),
        func.coalesce(func.sum(case((Appeal.repeat_of_id.is_not(None), 1), else_=0)), 0),
        func.coalesce(func.sum(case((counted, 1), else_=0)), 0),
        func.coalesce(func.sum(case((on_time, 1), else_=0)), 0),
    ).where(*in_period)).one()
    resolved = db.session.execute(select(Appeal.created_at, Appeal.resolved_at)
                                  .where(*in_period, Appeal.resolved_at.is_not(None))).all()
    hours = [(r.resolved_at - r.created_at).total_seconds() / 3600 for r in resolved]
    calls_total, call_avg = db.session.execute(
        select(func.count(), func.avg(Call.duration_s)).where(Call.created_at >= p.start, Call.created_at < p.end)).one()
    evals_total, score_avg = db.session.execute(
        select(func.count(), func.avg(Evaluation.score))
        .where(Evaluation.created_at >= p.start, Evaluation.created_at < p.end)).one()
    return {
        "from": p.first.isoformat(), "to": p.last.isoformat(), "timezone": str(local_tz()),
        "appeals_total": total,
        "by_category": _counts(Appeal.category, in_period, CATEGORIES),
        "by_topic": _counts(Appeal.topic, in_period, TOPICS),
        "repeats": int(repeats),
        "repeat_rate": _ratio(int(repeats), total),
        "sla_compliance": _ratio(int(sla_ok), int(sla_total)),
        "avg_time_to_resolve_h": round(sum(hours) / len(hours), 2) if hours else None,
        "csat_avg": None,
        "calls_total": calls_total,
        "avg_call_duration_s": round(float(call_avg), 1) if call_avg is not None else None,
        "evaluations_total": evals_total,
        "qa_score_avg": round(float(score_avg), 1) if score_avg is not None else None,
    }
