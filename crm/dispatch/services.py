"""Dispatch services: the supervisors' breach queue and the staff notifications.

The breach queue is filled by :func:`escalate_breach`, the subscriber of the ``appeal.clock_breached``
hook that :func:`crm.appeals.services.warn_clocks` (the worker's periodic scan) fires once per
breached clock cycle; it is idempotent on the ``(appeal, clock, cycle)`` key, so a scan run twice, a
job retried or the hook fired again puts the appeal on the queue once. Each new breach notifies the
supervisors; the 80 % warning (``appeal.clock_warned``) notifies whoever works on the appeal — the
executor it is handed over to, else the supervisors (:func:`clock_warned`).

Notifications are in-app records (:class:`~crm.dispatch.models.Notification`) addressed to a group
(every supervisor, or one executor's accounts); the project has no staff e-mail or SMS channel yet
(the citizens' SMS gateway of crm.consent is for citizens, under their consent)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crm.appeals import services as appeals
from crm.clocks import deadlines as clockwork
from crm.db import atomic, db, utcnow
from crm.dispatch.models import Breach, Notification
from crm.errors import Forbidden, NotFound
from crm.i18n import N_, lazy_gettext as _l, translate
from crm.security import audit

#: Who works the breach queue.
SUPERVISORS = ("supervisor", "admin")
#: The clock titles by code (crm.clocks), for texts.
CLOCK_TITLES = {c.code: c.title for c in clockwork.DEFAULT_CLOCKS}
#: A notification's text by kind; ``%(number)s`` is the appeal number, ``%(clock)s`` the clock's title.
NOTIFICATION_TEXTS = {
    "breach": N_("Нарушен срок «%(clock)s» по обращению № %(number)s: обращение в очереди нарушений."),
    "warning": N_("Прошло %(level)s %% срока «%(clock)s» по обращению № %(number)s."),
}


# --- notifications -------------------------------------------------------------------------------

def _insert_ignore(model, values: dict) -> bool:
    """INSERT ``values`` into ``model``'s table unless a unique key already holds them; True when a
    row was inserted (PostgreSQL and SQLite: ``ON CONFLICT DO NOTHING``, so concurrent workers never
    fail on the key)."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    result = db.session.execute(insert(model).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)


def notify(audience: str, kind: str, *, key: str, appeal_id: str | None = None, executor_id: int | None = None,
           **params) -> bool:
    """Add a notification for ``audience`` (``supervisor``, or ``executor`` with ``executor_id``) of
    ``kind`` (:data:`NOTIFICATION_TEXTS`) with ``params`` (plain values, no personal data), unless one
    with ``key`` exists. Not committed (the caller's transaction). True when added."""
    if audience not in ("supervisor", "executor") or (audience == "executor" and executor_id is None):
        raise ValueError(f"bad audience {audience!r}/{executor_id!r}")
    if kind not in NOTIFICATION_TEXTS:
        raise ValueError(f"unknown notification kind {kind!r}")
    return _insert_ignore(Notification, dict(key=key[:200], audience=audience, executor_id=executor_id, kind=kind,
                                             params={k: v for k, v in params.items()}, appeal_id=appeal_id,
                                             created_at=utcnow()))


def _audience_filter(user):
    """The condition selecting the notifications ``user`` receives (none for other roles)."""
    role = getattr(user, "role", None)
    if role in SUPERVISORS:
        return Notification.audience == "supervisor"
    if role == "executor" and getattr(user, "executor_id", None) is not None:
        return (Notification.audience == "executor") & (Notification.executor_id == user.executor_id)
    return None


def notifications_for(user, *, unread_only: bool = False, limit: int = 100) -> list[Notification]:
    """The notifications ``user`` receives, newest first (supervisors and administrators: the
    supervisors'; an executor's account: its executor's; anyone else: none)."""
    rule = _audience_filter(user)
    if rule is None:
        return []
    q = select(Notification).where(rule).order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return list(db.session.execute(q).scalars())


def unread_count(user) -> int:
    """How many of ``user``'s notifications are unread (the menu's badge)."""
    rule = _audience_filter(user)
    if rule is None:
        return 0
    return db.session.execute(select(db.func.count()).select_from(Notification)
                              .where(rule, Notification.read_at.is_(None))).scalar_one()


@atomic
def mark_read(user, notification_id: int) -> Notification:
    """Mark one of ``user``'s notifications read (idempotent); commits. Raises
    :class:`crm.errors.NotFound` for another group's or an unknown one."""
    rule = _audience_filter(user)
    row = db.session.execute(select(Notification).where(Notification.id == notification_id, rule)).scalar_one_or_none() \
        if rule is not None else None
    if row is None:
        raise NotFound(_l("уведомление не найдено"), code="not_found")
    if row.read_at is None:
        row.read_at, row.read_by = utcnow(), user.id
    db.session.commit()
    return row


def notification_text(n: Notification) -> str:
    """The notification's text in the request's language (Russian outside a request)."""
    params = dict(n.params or {})
    if "clock" in params:
        params["clock"] = translate(CLOCK_TITLES.get(params["clock"], params["clock"]))
    return translate(NOTIFICATION_TEXTS.get(n.kind, n.kind), **params)


def notification_view(n: Notification) -> dict:
    """The API shape: ``{id, kind, text, appeal_id, created_at, read_at}``."""
    return {"id": n.id, "kind": n.kind, "text": notification_text(n), "appeal_id": n.appeal_id,
            "params": dict(n.params or {}), "created_at": n.created_at.isoformat(),
            "read_at": n.read_at.isoformat() if n.read_at else None}


# --- the breach queue ------------------------------------------------------------------------------

def _breached_at(appeal, code: str, cycle: int, now: datetime) -> datetime:
    """When the clock ``code``'s cycle ``cycle`` of ``appeal`` ran out (its due), else ``now``."""
    for status in appeals.clocks(appeal, now):
        if status.code == code and status.cycle == cycle and status.due is not None:
            return status.due
    return now


@atomic
def escalate_breach(appeal_id: str, code: str, cycle: int, *, now: datetime | None = None) -> Breach | None:
    """Put the breach of clock ``code`` (cycle ``cycle``) of appeal ``appeal_id`` on the supervisors'
    queue and notify them; the subscriber of ``appeal.clock_breached``. Idempotent: a breach already
    queued is left as it is (None is returned). Commits. Reads no personal data."""
    now = now or utcnow()
    appeal = appeals.get(appeal_id)
    if appeal is None:
        return None
    added = _insert_ignore(Breach, dict(appeal_id=appeal.id, clock=code, cycle=int(cycle),
                                        breached_at=_breached_at(appeal, code, int(cycle), now), escalated_at=now))
    if added:
        notify("supervisor", "breach", key=f"breach:{appeal.id}:{code}:{cycle}", appeal_id=appeal.id,
               number=appeal.number, clock=code)
    db.session.commit()
    if not added:
        return None
    return db.session.execute(select(Breach).where(Breach.appeal_id == appeal.id, Breach.clock == code,
                                                   Breach.cycle == int(cycle))).scalar_one()


@atomic
def clock_warned(appeal_id: str, code: str, cycle: int, level: int) -> bool:
    """The subscriber of ``appeal.clock_warned``: at 80 % of a clock, notify the executor the appeal is
    handed over to (its accounts), or the supervisors when it is with nobody yet. Other levels are left
    to the breach queue (100 %) or to the pages (50 %). Idempotent; commits. True when notified."""
    if int(level) != 80:
        return False
    appeal = appeals.get(appeal_id)
    if appeal is None:
        return False
    key = f"warning:{appeal.id}:{code}:{cycle}:{level}"
    if appeal.executor_id is not None:
        added = notify("executor", "warning", key=key, appeal_id=appeal.id, executor_id=appeal.executor_id,
                       number=appeal.number, clock=code, level=int(level))
    else:
        added = notify("supervisor", "warning", key=key, appeal_id=appeal.id, number=appeal.number, clock=code,
                       level=int(level))
    db.session.commit()
    return added


def breaches(*, acknowledged: bool | None = False, limit: int = 200) -> list[Breach]:
    """The queue: unacknowledged breaches (``acknowledged`` False, the default), acknowledged ones
    (True) or all (None), oldest breach first."""
    q = select(Breach).order_by(Breach.breached_at, Breach.id).limit(limit)
    if acknowledged is True:
        q = q.where(Breach.acknowledged_at.is_not(None))
    elif acknowledged is False:
        q = q.where(Breach.acknowledged_at.is_(None))
    return list(db.session.execute(q).scalars())


def get_breach(breach_id: int) -> Breach | None:
    return db.session.get(Breach, breach_id)


@atomic
def acknowledge(user, breach_id: int) -> Breach:
    """A supervisor (or administrator) takes a breach off the queue: ``acknowledged_by``/``_at`` set
    once (a second acknowledgement keeps the first); logged as ``breach.acknowledge``; commits.
    Raises :class:`crm.errors.Forbidden`, :class:`crm.errors.NotFound`."""
    if getattr(user, "role", None) not in SUPERVISORS:
        raise Forbidden(_l("очередь нарушений ведут руководители смены"), code="forbidden")
    breach = db.session.get(Breach, breach_id)
    if breach is None:
        raise NotFound(_l("нарушение не найдено"), code="not_found")
    if breach.acknowledged_at is None:
        breach.acknowledged_by, breach.acknowledged_at = user.id, utcnow()
        audit.record("breach.acknowledge", appeal_id=breach.appeal_id, detail=f"clock={breach.clock};cycle={breach.cycle}")
    db.session.commit()
    return breach


def breach_view(b: Breach) -> dict:
    """The API shape of a queued breach (no personal data): with the appeal's ``number``, ``status``
    and ``executor_id``."""
    appeal = appeals.get(b.appeal_id)
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {"id": b.id, "appeal_id": b.appeal_id, "number": appeal.number if appeal else None,
            "status": appeal.status if appeal else None, "executor_id": appeal.executor_id if appeal else None,
            "clock": b.clock, "cycle": b.cycle, "breached_at": iso(b.breached_at), "escalated_at": iso(b.escalated_at),
            "acknowledged_by": b.acknowledged_by, "acknowledged_at": iso(b.acknowledged_at)}
