"""QA dashboards: scores by operator, criterion and week, the distribution, the most failed
criteria and the automatic checks' failure rates over a period."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from crm.calls import services as calls
from crm.db import db
from crm.qa import checks
from crm.qa.models import CheckResult, Evaluation, Scorecard
from crm.qa.services.scorecards import criteria_of
from crm.qa.services.scoring import answer_failed, answer_value
from crm.timeutil import local_tz


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
    - ``most_failed``: the five criteria with the highest fail rate among those failed at least once
      (a criterion never failed is not among «Чаще всего не выполняются»);
    - ``checks``: ``[{code, label, total, passed, failed, unsure, fail_rate}]`` (``unsure``: matched only through
      doubtful words, not counted as failed) of automatic checks on the calls
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
    most_failed = sorted((r for r in by_criterion if r["failed"]), key=lambda r: (-r["fail_rate"], r["code"]))[:5]
    unsure = db.func.coalesce(CheckResult.state, "") == "unsure"  # doubtful words: not a failure (issue 18)
    check_q = (db.select(CheckResult.code, db.func.count(),
                         db.func.sum(db.case((db.and_(CheckResult.passed.is_(False), db.not_(unsure)), 1), else_=0)),
                         db.func.sum(db.case((unsure, 1), else_=0)))
               .where(CheckResult.call_id.in_(calls.ids_in_period_select(start, end, operator_id=operator_id)))
               .group_by(CheckResult.code))
    check_rows = db.session.execute(check_q).all()
    order = {c: i for i, c in enumerate(checks.CODES)}
    check_stats = sorted(({"code": code, "label": checks.LABELS.get(code, code), "total": total,
                           "passed": total - int(failed or 0) - int(doubtful or 0),
                           "failed": int(failed or 0), "unsure": int(doubtful or 0),
                           "fail_rate": round(int(failed or 0) / total, 3) if total else None}
                          for code, total, failed, doubtful in check_rows), key=lambda r: order.get(r["code"], 99))
    scores = [e.score for e in evs]
    return {"total": len(evs), "avg": round(sum(scores) / len(scores), 1) if scores else None,
            "by_operator": by_operator, "by_criterion": by_criterion,
            "trend": [{"week": w, "count": len(v), "avg": round(sum(v) / len(v), 1)} for w, v in sorted(weeks.items())],
            "distribution": [{"lo": 10 * i, "hi": 10 * i + 10 if i < 9 else 100, "count": buckets[i]} for i in range(10)],
            "most_failed": most_failed, "checks": check_stats}


def kpi_figures(start: datetime, end: datetime) -> dict:
    """Evaluations made in ``[start, end)`` (aware UTC), for crm.reports: ``evaluations_total`` and
    ``qa_score_avg`` (0–100, ``None`` without evaluations)."""
    total, avg = db.session.execute(
        select(func.count(), func.avg(Evaluation.score))
        .where(Evaluation.created_at >= start, Evaluation.created_at < end)).one()
    return {"evaluations_total": total, "qa_score_avg": round(float(avg), 1) if avg is not None else None}
