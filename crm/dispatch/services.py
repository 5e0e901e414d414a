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
from crm.appeals.catalog import TOPICS
from crm.buildings import services as buildings
from crm.clocks import deadlines as clockwork
from crm.db import atomic, db, utcnow
from crm.dispatch.models import Breach, ExtensionRequest, Notification
from crm.errors import Conflict, Forbidden, InvalidInput, NotFound
from crm.executors import services as executors
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
    "assigned": N_("Вам передано обращение № %(number)s."),
    "accepted": N_("Исполнитель принял в работу обращение № %(number)s."),
    "done": N_("Исполнитель сообщил о выполнении работ по обращению № %(number)s: сообщите заявителю и закройте."),
    "extension_requested": N_("Исполнитель просит продлить срок по обращению № %(number)s."),
    "extension_approved": N_("Срок по обращению № %(number)s продлён."),
    "extension_rejected": N_("В продлении срока по обращению № %(number)s отказано."),
    "incident_proposed": N_("Всплеск обращений: %(count)s по теме «%(topic)s», дом %(address)s — предлагается "
                            "открыть инцидент (раздел «Инциденты»)."),
    "queue_surge": N_("Всплеск звонков: ждут ответа %(waiting)s, за %(window)s мин поступило %(arrivals)s — "
                      "см. «Очередь звонков»."),
    "queue_surge_house": N_("Всплеск звонков: ждут ответа %(waiting)s, за %(window)s мин поступило %(arrivals)s; "
                            "многие звонят из дома %(address)s — возможно, нужен инцидент (см. «Очередь звонков»)."),
    "queue_surge_building": N_("Всплеск звонков продолжается: теперь многие звонят из дома %(address)s (жителей: "
                               "%(callers)s) — возможно, нужен инцидент (см. «Очередь звонков»)."),
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
    if n.kind == "incident_proposed" and "topic" in params:
        params["topic"] = translate(TOPICS.get(params["topic"], params["topic"]))
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


# --- the hand-over ---------------------------------------------------------------------------------

#: Who hands appeals over to executors (as ``POST /api/v1/appeals/{id}/assign``).
DISPATCHERS = ("operator", "supervisor", "admin")


def suggestions(appeal) -> list[executors.Suggestion]:
    """The executors to hand ``appeal`` over to, best first (:func:`crm.executors.services.suggest`
    on its topic, building and category, the tie broken by each executor's appeals in hand)."""
    return executors.suggest(topic=appeal.topic, building_id=appeal.building_id, category=appeal.category,
                             loads=appeals.open_counts_by_executor())


def suggestion_view(s: executors.Suggestion) -> dict:
    return {"executor": executors.view(s.executor), "score": s.score, "reasons": list(s.reasons),
            "open_appeals": s.open_appeals}


@atomic
def notify_incident_proposed(proposal_id: int, building_id: int, topic: str, appeals_count: int) -> bool:
    """The subscriber of ``incident.proposed``: tell the supervisors a surge of appeals on one house and
    topic proposes an incident (:mod:`crm.incidents.surge`); one notification per proposal; commits."""
    house = buildings.get(building_id)
    added = notify("supervisor", "incident_proposed", key=f"incident_proposed:{proposal_id}", count=int(appeals_count),
                   topic=topic, address=house.address if house is not None else f"#{building_id}")
    db.session.commit()
    return added


def notify_queue_surge(surge_id: str, waiting: int, arrivals: int, window_min: float,
                       address: str | None = None) -> bool:
    """The subscriber of ``queue.surge``: tell the supervisors the inbound queue surges
    (:mod:`crm.telephony.surge`), naming the building whose callers suggest an incident when there is
    one; one notification per surge (keyed on ``surge_id``). Not committed (the firing side commits)."""
    window = int(window_min) if float(window_min).is_integer() else window_min
    params = {"waiting": int(waiting), "arrivals": int(arrivals), "window": window}
    if address:
        return notify("supervisor", "queue_surge_house", key=f"queue_surge:{surge_id}", address=address, **params)
    return notify("supervisor", "queue_surge", key=f"queue_surge:{surge_id}", **params)


def notify_queue_surge_building(surge_id: str, building_id: int, address: str, callers: int) -> bool:
    """The subscriber of ``queue.surge_building``: tell the supervisors that, during a surge they were told
    of, a building has come to call for an incident (:mod:`crm.telephony.surge`); one notification per surge
    and building (keyed on both). Not committed (the firing side commits)."""
    return notify("supervisor", "queue_surge_building", key=f"queue_surge:{surge_id}:building:{int(building_id)}",
                  address=address, callers=int(callers))


def notify_assigned(appeal_id: str, executor_id: int) -> bool:
    """The subscriber of ``appeal.assigned``: tell the executor's accounts the appeal is theirs. One
    notification per hand-over (handed back later, it is told again); commits."""
    appeal = appeals.get(appeal_id)
    if appeal is None or executors.get(executor_id) is None:
        return False
    added = notify("executor", "assigned", key=f"assigned:{appeal.id}:{executor_id}:{utcnow().isoformat()}",
                   appeal_id=appeal.id, executor_id=int(executor_id), number=appeal.number)
    db.session.commit()
    return added


def assign_panel(appeal, user) -> dict | None:
    """The appeal page's «Передать исполнителю» section for a dispatcher (``appeal.page`` hook): the
    suggestions, best first, the suggested (or current) executor preselected, then every other active
    executor. None for other roles or an appeal that can no longer be handed over."""
    if getattr(user, "role", None) not in DISPATCHERS or not appeals.assignable(appeal):
        return None
    ranked = suggestions(appeal)
    ids = {s.executor.id for s in ranked}
    others = [e for e in executors.list_executors(active_only=True) if e.id not in ids]
    current = executors.get(appeal.executor_id)
    selected = current.id if current is not None else (ranked[0].executor.id if ranked else None)
    return {"template": "dispatch/_assign.html", "suggestions": ranked, "others": others, "current": current,
            "selected": selected}


# --- the executor's workflow -----------------------------------------------------------------------

class WorkflowError(InvalidInput):
    """A step of the executor's workflow that the appeal's state refuses (409 for a state conflict)."""


def _own(user, appeal):
    """The appeal if ``user`` is an executor's account it is handed over to; else NotFound (the API and
    the pages answer 404, so an executor learns nothing of other services' appeals)."""
    if getattr(user, "role", None) != "executor" or appeal is None or not appeals.visible_to(user, appeal):
        raise NotFound(_l("обращение не найдено"), code="not_found")
    return appeal


def _step(func, *args, **kwargs):
    """Run an appeals service, its :class:`~crm.appeals.services.AppealError` as a 409 (a state the
    lifecycle refuses) or a 400 (bad input)."""
    try:
        return func(*args, **kwargs)
    except appeals.AppealError as exc:
        if exc.code == "invalid":
            raise InvalidInput(str(exc), code=f"invalid_{exc.field or 'input'}", field=exc.field) from None
        raise Conflict(str(exc), code=exc.code) from None


def accept(user, appeal, comment: str | None = None):
    """The executor takes the appeal: «Передано исполнителю» → «В работе» (a transition of the
    lifecycle table, by the executor's account); the supervisors are told. Raises NotFound, Conflict."""
    _own(user, appeal)
    if appeal.status != "escalated":
        raise Conflict(_l("принять можно только обращение, переданное исполнителю"), code="bad_transition")
    appeal = _step(appeals.transition, appeal, "in_progress", user=user, comment=comment)
    _notify_supervisors("accepted", appeal)
    return appeal


def report_progress(user, appeal, comment: str):
    """A progress report: a history row ``note`` (a status update for the 24-hour clock). Raises
    NotFound, InvalidInput (no comment), Conflict (not in work)."""
    _own(user, appeal)
    return _step(appeals.add_event, appeal, "note", user_id=user.id, user=user, comment=comment)


def report_done(user, appeal, comment: str):
    """The work is done: → «Выполнено» with the executor's comment (the operator then tells the citizen
    and closes the appeal); the supervisors are told. Raises NotFound, InvalidInput, Conflict."""
    _own(user, appeal)
    if len((comment or "").strip()) < 3:
        raise InvalidInput(_l("опишите, что сделано"), code="invalid_comment", field="comment")
    if appeal.status not in appeals.WITH_EXECUTOR:
        raise Conflict(_l("обращение не в работе у исполнителя"), code="bad_transition")
    appeal = _step(appeals.transition, appeal, "resolved", user=user, comment=comment)
    _notify_supervisors("done", appeal)
    return appeal


def _notify_supervisors(kind: str, appeal) -> None:
    notify("supervisor", kind, key=f"{kind}:{appeal.id}:{utcnow().isoformat()}", appeal_id=appeal.id,
           number=appeal.number)
    db.session.commit()


#: How far an extension may reach past the current deadline, in days (59-ФЗ ст. 12 ч. 2 allows 30 more).
MAX_EXTENSION_DAYS = 60


@atomic
def request_extension(user, appeal, until: datetime, reason: str) -> ExtensionRequest:
    """The executor asks for more time: a pending request for the resolution deadline ``until``
    (aware; later than the current ``resolve_by`` and at most :data:`MAX_EXTENSION_DAYS` after it),
    with ``reason`` (a history row ``extension_request``, encrypted); the supervisors are told. One
    pending request per appeal. Logged (``appeal.comment``, ``extension.request``); commits. Raises
    NotFound, InvalidInput, Conflict (one pending already; the appeal not in work)."""
    _own(user, appeal)
    if until is None or until.tzinfo is None:
        raise InvalidInput(_l("укажите новый срок"), code="invalid_until", field="until")
    current = appeal.resolve_by or utcnow()
    if until <= max(current, utcnow()):
        raise InvalidInput(_l("новый срок должен быть позже нынешнего"), code="invalid_until", field="until")
    if (until - current).total_seconds() > MAX_EXTENSION_DAYS * 86400:
        raise InvalidInput(_l("продлить можно не более чем на %(days)s дней", days=MAX_EXTENSION_DAYS), code="invalid_until",
                           field="until")
    if pending_extension(appeal.id) is not None:
        raise Conflict(_l("запрос о продлении уже ждёт решения"), code="pending")
    event = _step(appeals.add_event, appeal, "extension_request", user_id=user.id, user=user, comment=reason,
                  commit=False)
    db.session.flush()
    row = ExtensionRequest(appeal_id=appeal.id, executor_id=appeal.executor_id, requested_by=user.id,
                           requested_at=utcnow(), until=until, previous_due=appeal.resolve_by, status="pending",
                           request_event_id=event.id)
    db.session.add(row)
    db.session.flush()
    audit.record("extension.request", appeal_id=appeal.id, detail=f"request={row.id};until={until.isoformat()}")
    notify("supervisor", "extension_requested", key=f"extension_requested:{row.id}", appeal_id=appeal.id,
           number=appeal.number)
    db.session.commit()
    return row


def pending_extension(appeal_id: str) -> ExtensionRequest | None:
    return db.session.execute(select(ExtensionRequest).where(ExtensionRequest.appeal_id == appeal_id,
                                                             ExtensionRequest.status == "pending")).scalar_one_or_none()


def extension_requests(*, appeal_id: str | None = None, status: str | None = None) -> list[ExtensionRequest]:
    """Extension requests, newest first (of one appeal, of one status)."""
    q = select(ExtensionRequest).order_by(ExtensionRequest.requested_at.desc(), ExtensionRequest.id.desc())
    if appeal_id is not None:
        q = q.where(ExtensionRequest.appeal_id == appeal_id)
    if status is not None:
        q = q.where(ExtensionRequest.status == status)
    return list(db.session.execute(q).scalars())


def get_extension(request_id: int) -> ExtensionRequest | None:
    return db.session.get(ExtensionRequest, request_id)


@atomic
def decide_extension(user, request_id: int, *, approve: bool, comment: str | None = None) -> ExtensionRequest:
    """A supervisor (or administrator) approves or rejects a pending request. Approved: the appeal's
    resolution deadline moves to the request's ``until`` (:func:`crm.appeals.services.extend`: a
    history row, and the clocks with a legal extension extended); rejected: a history row
    ``extension_rejected`` with the reason (required). The executor is told. Logged
    (``extension.decide``); commits. Raises Forbidden, NotFound, Conflict (decided already, or the
    appeal no longer in work), InvalidInput."""
    if getattr(user, "role", None) not in SUPERVISORS:
        raise Forbidden(_l("решение о продлении принимает руководитель смены"), code="forbidden")
    row = db.session.get(ExtensionRequest, request_id)
    if row is None:
        raise NotFound(_l("запрос о продлении не найден"), code="not_found")
    if row.status != "pending":
        raise Conflict(_l("по этому запросу уже принято решение"), code="decided")
    appeal = appeals.get(row.appeal_id)
    if approve:
        event = _step(appeals.extend, appeal, row.until, user_id=user.id, user=user,
                      comment=(comment or "").strip() or "продление согласовано", commit=False)
    else:
        if len((comment or "").strip()) < 3:
            raise InvalidInput(_l("укажите причину отказа"), code="invalid_comment", field="comment")
        event = _step(appeals.add_event, appeal, "extension_rejected", user_id=user.id, user=user, comment=comment,
                      commit=False)
    db.session.flush()
    row.status = "approved" if approve else "rejected"
    row.decided_by, row.decided_at, row.decision_event_id = user.id, utcnow(), event.id
    audit.record("extension.decide", appeal_id=appeal.id, detail=f"request={row.id};{row.status}")
    if row.executor_id is not None:
        notify("executor", f"extension_{row.status}", key=f"extension_{row.status}:{row.id}", appeal_id=appeal.id,
               executor_id=row.executor_id, number=appeal.number)
    db.session.commit()
    return row


def extension_view(row: ExtensionRequest) -> dict:
    """The API shape (no reason: it is in the appeal's history, read with the appeal)."""
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {"id": row.id, "appeal_id": row.appeal_id, "executor_id": row.executor_id,
            "requested_by": row.requested_by, "requested_at": iso(row.requested_at), "until": iso(row.until),
            "previous_due": iso(row.previous_due), "status": row.status, "decided_by": row.decided_by,
            "decided_at": iso(row.decided_at)}


def address_for_work(user, appeal) -> dict:
    """The address the executor needs (:func:`crm.appeals.services.address_for_work`, logged with its
    purpose)."""
    _own(user, appeal)
    return _step(appeals.address_for_work, appeal, user)


def executor_panel(appeal, user) -> dict | None:
    """The executor's section of the appeal page (``appeal.page`` hook): the steps the appeal's state
    allows, and its extension requests. None for other roles."""
    if getattr(user, "role", None) != "executor" or not appeals.visible_to(user, appeal):
        return None
    return {"template": "dispatch/_executor.html", "can_accept": appeal.status == "escalated",
            "in_work": appeal.status in appeals.WITH_EXECUTOR, "pending": pending_extension(appeal.id),
            "requests": extension_requests(appeal_id=appeal.id), "resolve_by": appeal.resolve_by}


def extension_panel(appeal, user) -> dict | None:
    """The supervisors' section of the appeal page: the pending extension request, to decide."""
    if getattr(user, "role", None) not in SUPERVISORS:
        return None
    pending = pending_extension(appeal.id)
    if pending is None:
        return None
    return {"template": "dispatch/_extension.html", "request": pending, "resolve_by": appeal.resolve_by}


# --- each executor's load and lateness -------------------------------------------------------------

#: The window of the lateness figures, in days.
STATS_WINDOW_DAYS = 30


def executor_stats(now: datetime | None = None, *, executor_id: int | None = None) -> list[dict]:
    """Each executor's load and lateness (:func:`crm.appeals.services.executor_figures` over
    :data:`STATS_WINDOW_DAYS`), by name: ``{executor_id, name, kind, active, open_appeals, overdue,
    due_30d, late_30d, late_share}`` — ``late_share`` = late / due in the window (0–1, None when
    nothing was due). ``executor_id``: that one only."""
    figures = appeals.executor_figures(now, days=STATS_WINDOW_DAYS)
    rows = [executors.get(executor_id)] if executor_id is not None else executors.list_executors()
    out = []
    for e in rows:
        if e is None:
            continue
        f = figures.get(e.id, {"open_appeals": 0, "overdue": 0, "due_in_window": 0, "late_in_window": 0})
        due, late = f["due_in_window"], f["late_in_window"]
        out.append({"executor_id": e.id, "name": e.name, "kind": e.kind, "active": e.active,
                    "open_appeals": f["open_appeals"], "overdue": f["overdue"], "due_30d": due, "late_30d": late,
                    "late_share": round(late / due, 4) if due else None})
    return out
