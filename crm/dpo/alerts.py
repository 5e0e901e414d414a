"""Unusual access found in the access log, listed for the DPO to review and acknowledge.

The DPO's own work, so it lives in the DPO's package: it reads the access log through
:mod:`crm.security` (the layer below) and writes only its own table (:class:`crm.dpo.models.AccessAlert`).

Rules (defaults in brackets, all in ``crm/config.py``). Only entries of signed-in staff that name a
citizen count; system jobs do not.

* ``bulk_access`` — one staff member reads the personal data of more than
  ``CRM_AUDIT_ALERT_MAX_CITIZENS`` [40] distinct citizens within one clock hour. (A burst split
  across two clock hours is seen only if one half exceeds the limit.)
* ``untied_access`` — a read of a citizen's data tied to no appeal and no call, after which the same
  person did no work on an appeal or call of that citizen within ``CRM_AUDIT_UNTIED_WINDOW_S``
  [1 h] either side. An operator who looks a caller up and registers the appeal is fine; one who
  looks people up and does nothing with them is not. Reads for a data subject request (purpose
  ``data_subject_request``, the DPO's own reports) are exempt. Judged once the window has passed.
* ``after_hours`` — any access to a citizen's data outside ``CRM_AUDIT_WORKING_HOURS``
  ["08:00-20:00"] on ``CRM_AUDIT_WORKING_DAYS`` [every day] in ``CRM_TIMEZONE`` (Europe/Moscow);
  one alert per staff member and local day.
* ``login_failures`` — repeated failed sign-in attempts (password or second-factor code) against one
  account or from one address (:mod:`crm.users.throttle` fires ``auth.repeated_failures``;
  :mod:`crm.dpo.hooks` raises the alert): one alert per account or address and clock hour, its count
  growing with the failures.
* ``checkpoint`` — the app had to start a new checkpoint key chain (:mod:`crm.security.checkpoints`
  fires the ``audit.checkpoint_restarted`` hook; :mod:`crm.dpo.hooks` raises the alert).

:func:`scan` reads the last ``CRM_AUDIT_ALERT_LOOKBACK_H`` [48] hours; it runs every
``CRM_AUDIT_ALERT_SCAN_EVERY_S`` [1 h] as an RQ job and on demand from the DPO's page. An alert's
``key`` (rule, person, citizen, hour or day) makes a second scan update the open alert instead of
adding another. Acknowledging is logged as ``audit.alert_ack``.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm import text_ru
from crm.db import db, utcnow
from crm.errors import InvalidInput
from crm.i18n import lazy_gettext as _l
from crm.jobs import job, job_context
from crm.timeutil import local_tz
from crm.dpo.models import AccessAlert
from crm.security import audit
from crm.security.models import AccessLogEntry

RULES = {
    "bulk_access": "много заявителей за час",
    "untied_access": "доступ без обращения или звонка",
    "after_hours": "доступ в нерабочее время",
    "checkpoint": "разрыв цепочки контрольных точек",
    "login_failures": "повторные неудачные попытки входа",
}
EXEMPT_PURPOSES = ("data_subject_request",)
JOB_NAME = "audit_alert_scan"


def working_hours() -> tuple[time, time, frozenset[int]]:
    """``(start, end, ISO weekdays)`` from ``CRM_AUDIT_WORKING_HOURS`` ("HH:MM-HH:MM") and
    ``CRM_AUDIT_WORKING_DAYS``. Raises ``ValueError`` for a malformed setting."""
    spec = current_app.config["CRM_AUDIT_WORKING_HOURS"]
    a, b = (time.fromisoformat(part.strip()) for part in spec.split("-"))
    days = frozenset(int(d) for d in current_app.config["CRM_AUDIT_WORKING_DAYS"])
    return a, b, days


def is_after_hours(at: datetime, hours: tuple[time, time, frozenset[int]] | None = None) -> bool:
    """True when the UTC instant ``at`` falls outside working hours in ``CRM_TIMEZONE``. An end
    before the start means a shift over midnight (``"20:00-08:00"``); equal ends mean around the clock."""
    start, end, days = hours or working_hours()
    local = at.astimezone(local_tz())
    t = local.time()
    if start == end:  # "00:00-00:00": around the clock
        inside = True
    else:
        inside = (start <= t < end) if start < end else (t >= start or t < end)
    return not inside or local.isoweekday() not in days


def _upsert(rule: str, key: str, *, actor_id, actor, citizen_id, window_start, window_end, seqs: list[int],
            detail: str) -> str | None:
    """Create the alert ``key`` or grow an open one. Returns ``"new"``, ``"updated"`` or None."""
    alert = db.session.execute(select(AccessAlert).where(AccessAlert.key == key)).scalar_one_or_none()
    now = utcnow()
    if alert is None:
        alert = AccessAlert(rule=rule, key=key, actor_id=actor_id, actor=actor, citizen_id=citizen_id,
                            window_start=window_start, window_end=window_end, first_seq=min(seqs, default=None),
                            last_seq=max(seqs, default=None), count=len(seqs), detail=detail,
                            created_at=now, updated_at=now)
        try:
            with db.session.begin_nested():
                db.session.add(alert)
        except IntegrityError:  # a concurrent scan made it first
            return None
        return "new"
    if alert.ack_at is None and len(seqs) > alert.count:
        alert.count = len(seqs)
        alert.first_seq, alert.last_seq = min(seqs), max(seqs)
        alert.detail = detail
        alert.updated_at = now
        return "updated"
    return None


def scan(now: datetime | None = None, hours: float | None = None, actor: audit.Actor | None = None) -> dict[str, int]:
    """Apply the rules to the last ``hours`` (default ``CRM_AUDIT_ALERT_LOOKBACK_H``) of the log up
    to ``now`` (UTC). Commits. Returns ``{"new": n, "updated": m}``; logs ``audit.alert_scan``
    when anything changed."""
    cfg = current_app.config
    now = now or utcnow()
    start = now - timedelta(hours=hours if hours is not None else cfg["CRM_AUDIT_ALERT_LOOKBACK_H"])
    window = timedelta(seconds=cfg["CRM_AUDIT_UNTIED_WINDOW_S"])
    limit = int(cfg["CRM_AUDIT_ALERT_MAX_CITIZENS"])
    hours_spec = working_hours()
    tz = local_tz()
    E = AccessLogEntry
    rows = db.session.execute(
        select(E.seq, E.at, E.actor_id, E.actor, E.action, E.citizen_id, E.appeal_id, E.call_id, E.purpose)
        .where(E.at >= start - window, E.at <= now, E.actor_id.is_not(None), E.citizen_id.is_not(None))
        .order_by(E.seq)).all()
    reads = set(audit.READ_ACTIONS)
    bulk: dict[tuple, dict] = defaultdict(lambda: {"citizens": set(), "seqs": []})
    tied: dict[tuple, list[datetime]] = defaultdict(list)
    untied: dict[tuple, list] = defaultdict(list)
    late: dict[tuple, list] = defaultdict(list)
    names: dict[int, str] = {}
    for r in rows:
        names[r.actor_id] = r.actor
        if r.appeal_id or r.call_id:
            tied[(r.actor_id, r.citizen_id)].append(r.at)
        if r.at < start:
            continue
        if r.action in reads:
            hour = r.at.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
            b = bulk[(r.actor_id, hour)]
            b["citizens"].add(r.citizen_id)
            b["seqs"].append(r.seq)
            if not (r.appeal_id or r.call_id) and r.purpose not in EXEMPT_PURPOSES and r.at <= now - window:
                untied[(r.actor_id, r.citizen_id, r.at.astimezone(tz).date())].append(r)
        if is_after_hours(r.at, hours_spec):
            late[(r.actor_id, r.at.astimezone(tz).date())].append(r)
    counts = {"new": 0, "updated": 0}

    def count(result):
        if result:
            counts[result] += 1

    for (actor_id, hour), b in bulk.items():
        if len(b["citizens"]) > limit:
            count(_upsert("bulk_access", f"bulk_access:{actor_id}:{hour:%Y%m%d%H}", actor_id=actor_id,
                          actor=names[actor_id], citizen_id=None, window_start=hour,
                          window_end=hour + timedelta(hours=1), seqs=b["seqs"],
                          detail=f"прочитаны данные {len(b['citizens'])} заявителей за час (порог {limit})"))
    for (actor_id, citizen_id, day), found in untied.items():
        times = sorted(tied.get((actor_id, citizen_id), ()))
        lonely = []
        for r in found:
            i = bisect_left(times, r.at - window)
            if i == len(times) or times[i] > r.at + window:
                lonely.append(r)
        if lonely:
            count(_upsert("untied_access", f"untied_access:{actor_id}:{citizen_id}:{day.isoformat()}",
                          actor_id=actor_id, actor=names[actor_id], citizen_id=citizen_id,
                          window_start=lonely[0].at, window_end=lonely[-1].at, seqs=[r.seq for r in lonely],
                          detail=f"{len(lonely)} обращений к данным без обращения или звонка "
                                 f"({', '.join(sorted({r.action for r in lonely}))})"))
    for (actor_id, day), found in late.items():
        count(_upsert("after_hours", f"after_hours:{actor_id}:{day.isoformat()}", actor_id=actor_id,
                      actor=names[actor_id], citizen_id=None, window_start=found[0].at, window_end=found[-1].at,
                      seqs=[r.seq for r in found],
                      detail=f"{len(found)} обращений к данным {len({r.citizen_id for r in found})} заявителей "
                             f"вне рабочего времени ({cfg['CRM_AUDIT_WORKING_HOURS']}, {tz.key})"))
    if counts["new"] or counts["updated"]:
        audit.record("audit.alert_scan", detail=f"new={counts['new']} updated={counts['updated']}",
                     actor=actor or audit.system_actor(JOB_NAME))
    db.session.commit()
    return counts


def raise_checkpoint_alert(line: int, reason: str) -> None:
    """Alert the DPO that checkpoint line ``line`` began a new app key chain (caller commits)."""
    now = utcnow()
    _upsert("checkpoint", f"checkpoint:{line}", actor_id=None, actor=None, citizen_id=None, window_start=now,
            window_end=now, seqs=[], detail=f"строка {line} файла контрольных точек начинает новую цепочку "
                                            f"ключей приложения: {reason}. Проверьте и заверьте (crm audit attest).")


def raise_login_alert(scope: str, subject: str, failures: int) -> None:
    """Alert the DPO to ``failures`` failed sign-in attempts against account ``subject`` (``scope``
    ``account``) or from address ``subject`` (``address``); one alert per subject and clock hour, updated
    while it grows (caller commits)."""
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    key = f"login_failures:{scope}:{subject[:80]}:{hour:%Y-%m-%dT%H}"
    if scope == "account":
        detail = f"{failures} неудачных попыток входа в учётную запись «{subject[:80]}» (пароль или код второго фактора)"
    else:
        detail = f"{failures} неудачных попыток входа с адреса {subject[:80]}"
    alert = db.session.execute(select(AccessAlert).where(AccessAlert.key == key)).scalar_one_or_none()
    if alert is None:
        alert = AccessAlert(rule="login_failures", key=key, actor=subject[:80] if scope == "account" else None,
                            window_start=hour, window_end=now, count=failures, detail=detail, created_at=now,
                            updated_at=now)
        try:
            with db.session.begin_nested():
                db.session.add(alert)
        except IntegrityError:  # another worker made it first: the next failure updates it
            pass
        return
    if alert.ack_at is None and failures > alert.count:
        alert.count, alert.detail, alert.window_end, alert.updated_at = failures, detail, now, now


def get(alert_id: int) -> AccessAlert | None:
    return db.session.get(AccessAlert, alert_id)


def listing(status: str = "open", rule: str | None = None, limit: int = 200) -> list[AccessAlert]:
    """Alerts, newest first; ``status`` ``open`` (not acknowledged), ``acknowledged`` or ``all``."""
    q = select(AccessAlert).order_by(AccessAlert.created_at.desc(), AccessAlert.id.desc()).limit(limit)
    if status == "open":
        q = q.where(AccessAlert.ack_at.is_(None))
    elif status == "acknowledged":
        q = q.where(AccessAlert.ack_at.is_not(None))
    if rule:
        q = q.where(AccessAlert.rule == rule)
    return list(db.session.execute(q).scalars())


def acknowledge(alert: AccessAlert, *, user, comment: str | None = None) -> AccessAlert:
    """Mark ``alert`` reviewed by ``user`` (the DPO) with an optional comment; logged as
    ``audit.alert_ack``. Acknowledging twice keeps the first time. The comment is kept in clear and
    outlives the citizens' data, so one holding a personal value (:func:`crm.text_ru.personal_values`)
    is refused with :class:`crm.errors.InvalidInput` (code ``personal_data``) and nothing is saved."""
    found = text_ru.personal_values(comment)
    if found:
        raise InvalidInput(_l("в комментарии не должно быть персональных данных (найдено: %(found)s)",
                              found=', '.join(found)),
                           code="personal_data", field="comment")
    if alert.ack_at is None:
        alert.ack_at = utcnow()
        alert.ack_by = user.id
        alert.ack_comment = (comment or "").strip()[:2000] or None
    audit.record("audit.alert_ack", detail=f"alert={alert.id} rule={alert.rule} staff={alert.actor_id}",
                 actor=audit.Actor(user.id, user.username, user.role))
    db.session.commit()
    return alert


# --- the periodic job --------------------------------------------------------------------------------

@job(result_ttl_s=600)
def scan_job() -> dict[str, int]:
    """Periodic job (crm.schedule, every ``CRM_AUDIT_ALERT_SCAN_EVERY_S``): :func:`scan`. Safe to
    run twice (alerts are keyed)."""
    with job_context():
        return scan()
