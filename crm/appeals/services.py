"""Appeals: registration, lifecycle transitions, SLA clocks, repeat detection, reads with logging."""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import BinaryIO, Mapping

from flask import current_app
from sqlalchemy import and_, case, false, func, literal, or_, select, true, update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from crm import hooks
from crm.appeals.catalog import (CATEGORIES, CHANNELS, CLOSING, NO_ESCALATION, PENDING_DEADLINES, REOPEN, SLA,
                                 STATUSES, TOPICS, TRANSITIONS)
from crm.appeals.models import VISIBILITIES, Appeal, AppealClockWarning, AppealCounter, AppealEvent
from crm.buildings import services as buildings
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.citizens.services import Citizen
from crm.clocks import deadlines as clockwork
from crm.clocks import services as clock_calendar
from crm.consent import services as consent
from crm.db import UTCDateTime, atomic, db, utcnow
from crm.executors import services as executors
from crm.incidents import services as incidents
from crm.incidents import surge
from crm.errors import NotFound
from crm.i18n import lazy_gettext as _l
from crm.security import audit, blind_index, crypto
from crm.timeutil import local_date
from crm.users import services as users


class AppealError(ValueError):
    """Invalid appeal data or transition; ``field`` names the offending field; Russian message."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


class PhoneInUse(AppealError):
    """Nothing registered: the phone of the new citizen belongs to citizens of other names.
    ``duplicates``: their masked cards (:func:`crm.citizens.services.view`, each read logged)."""

    def __init__(self, duplicates: list[dict]):
        super().__init__("этот номер уже есть у другого заявителя", "citizen", "phone_in_use")
        self.duplicates = duplicates


def sla_deadlines(category: str, start: datetime) -> tuple[datetime, datetime, datetime]:
    """``(escalate_by, update_by, resolve_by)`` in UTC for an appeal of ``category`` received at ``start``."""
    calendar, escalate, update, resolve = SLA[category]
    if calendar == "working_days":  # the calendar with the administrators' overrides
        resolve_by = clockwork.add_working_days(start, resolve, calendar=clock_calendar.calendar())
    elif calendar == "calendar_days":
        resolve_by = start + timedelta(days=resolve)
    else:
        resolve_by = start + resolve
    return start + escalate, start + update, resolve_by


def _next_number(now: datetime) -> str:
    """The next appeal number of ``now``'s year in the hotline's time zone (``CRM_TIMEZONE``;
    ``2026-000042``): an appeal received at 2026-12-31 22:00 UTC is received on 1 January 2027 in
    Moscow and numbered in 2027's sequence. Concurrent callers get distinct numbers: the year's
    counter row is created once (``INSERT … ON CONFLICT DO NOTHING``) and advanced by ``UPDATE …
    RETURNING``, which takes the row's lock, so a second transaction waits for the first to commit
    (or roll back) and reads its value (PostgreSQL; SQLite serialises writers at BEGIN)."""
    year = local_date(now).year
    dialect = db.session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(AppealCounter)
        db.session.execute(insert.values(year=year, last=0).on_conflict_do_nothing(index_elements=["year"]))
    elif db.session.get(AppealCounter, year) is None:
        db.session.add(AppealCounter(year=year, last=0))
        db.session.flush()
    n = db.session.execute(sql_update(AppealCounter).where(AppealCounter.year == year)
                           .values(last=AppealCounter.last + 1).returning(AppealCounter.last)).scalar_one()
    return f"{year}-{n:06d}"


def find_repeat_of(citizen: Citizen, topic: str, now: datetime, building_id: int | None = None) -> Appeal | None:
    """The latest appeal on the same problem within the repeat window: same building (blind index)
    and topic, or the same citizen and topic (design.md, "repeat appeal"). The building matches
    the citizen's ``building`` value in either slot, so appeals made under the other key version
    still match while that index's key is being rotated; and, when the operator picked the house
    from the buildings register (``building_id``), any appeal made on that house, whatever the
    citizens wrote as their addresses."""
    since = now - timedelta(days=current_app.config["CRM_REPEAT_WINDOW_DAYS"])
    conds = [Appeal.citizen_id == citizen.id]
    if building_id is not None:
        conds.append(Appeal.building_id == building_id)
    keys = blind_index.row_values("building", citizen)
    if keys:
        conds.append(Appeal.building_key.in_(keys))
    return db.session.execute(
        db.select(Appeal).where(Appeal.topic == topic, Appeal.created_at >= since, or_(*conds),
                                Appeal.status.notin_(("duplicate", "rejected")))
        .order_by(Appeal.created_at.desc()).limit(1)).scalar_one_or_none()


#: Statuses never offered as the predecessor of a repeat (not a problem anyone works on).
NOT_A_PREDECESSOR = ("duplicate", "rejected")


def window_start(now: datetime) -> datetime:
    """The earliest creation time of a *recent* appeal: ``now`` − ``CRM_REPEAT_WINDOW_DAYS``."""
    return now - timedelta(days=float(current_app.config["CRM_REPEAT_WINDOW_DAYS"]))


def check_predecessor(appeal_id: str, citizen_id: str, topic: str, building_id: int | None,
                      now: datetime | None = None) -> Appeal:
    """The appeal ``appeal_id`` the operator links a new appeal of ``citizen_id`` on ``topic`` to, if
    it is one :func:`crm.appeals.repeats.candidates` could offer: the same topic, open or recent, not a duplicate or
    rejected, and the same citizen or house (the register's id or the citizen's building index).
    Raises :class:`AppealError` (field ``repeat_of_id``) otherwise."""
    appeal = get(appeal_id) if appeal_id else None
    citizen = citizens.get(citizen_id)
    if appeal is None or citizen is None:
        raise AppealError(_l("обращение для связи «повторное» не найдено"), "repeat_of_id", "repeat_of_not_found")
    now = now or utcnow()
    keys = blind_index.row_values("building", citizen) if citizen.erased_at is None else []
    same = (appeal.citizen_id == citizen.id or (building_id is not None and appeal.building_id == building_id)
            or (appeal.building_key is not None and appeal.building_key in keys))
    recent = appeal.status in ACTIVE_STATUSES or appeal.created_at >= window_start(now)
    if appeal.topic != topic or appeal.status in NOT_A_PREDECESSOR or not same or not recent:
        raise AppealError(_l("обращение № %(number)s не может быть предыдущим: другая тематика, другой дом "
                             "и заявитель, или оно старше окна повторных", number=appeal.number),
                          "repeat_of_id", "repeat_of_mismatch")
    return appeal


def create(citizen: Citizen, *, category: str, topic: str, description: str, channel: str,
           operator_id: int | None, submission_key: str | None = None, commit: bool = True,
           building_id: int | None = None, repeat_of: Appeal | None = None) -> Appeal:
    """Register an appeal for ``citizen``. Raises :class:`AppealError` for unknown codes, an unknown
    ``building_id`` (the buildings register) or an empty description. Sets SLA clocks and
    ``repeat_of`` (``repeat_of``: the predecessor the operator linked, checked by the caller; else
    :func:`find_repeat_of`); writes history and the access log."""
    if category not in CATEGORIES:
        raise AppealError(_l("неизвестная категория «%(category)s»", category=category), "category")
    if topic not in TOPICS:
        raise AppealError(_l("неизвестная тематика «%(topic)s»", topic=topic), "topic")
    if channel not in CHANNELS:
        raise AppealError(_l("неизвестный канал «%(channel)s»", channel=channel), "channel")
    if submission_key:
        existing = db.session.execute(db.select(Appeal).where(Appeal.submission_key == submission_key)).scalar_one_or_none()
        if existing is not None:
            return existing
    description = (description or "").strip()
    if len(description) < 3:
        raise AppealError(_l("опишите суть обращения"), "description")
    if len(description) > 10000:
        raise AppealError(_l("описание длиннее 10 000 символов"), "description")
    if citizen.erased_at is not None:
        raise AppealError(_l("данные заявителя уничтожены; зарегистрируйте его заново"), "citizen_id", "erased")
    if building_id is not None and buildings.get(building_id) is None:
        raise AppealError(_l("дом не найден в реестре домов"), "building_id")
    now = utcnow()
    escalate_by, update_by, resolve_by = sla_deadlines(category, now)
    repeat = repeat_of if repeat_of is not None else find_repeat_of(citizen, topic, now, building_id)
    appeal = Appeal(citizen_id=citizen.id, number=_next_number(now), operator_id=operator_id,
                    category=category, topic=topic, channel=channel, status="received",
                    building_key=blind_index.read_value("building", citizen), created_at=now, escalate_by=escalate_by,
                    update_by=update_by, resolve_by=resolve_by, repeat_of_id=repeat.id if repeat else None,
                    submission_key=submission_key, building_id=building_id)
    appeal.description = description
    db.session.add(appeal)
    db.session.add(AppealEvent(appeal_id=appeal.id, citizen_id=citizen.id, user_id=operator_id, at=now,
                               from_status=None, to_status="received"))
    audit.record("appeal.create", citizen_id=citizen.id, appeal_id=appeal.id, fields=["description"],
                 purpose="appeal_processing")
    if commit:
        db.session.commit()
    return appeal


class StaleTransition(AppealError):
    """The appeal is no longer in the status the page or client saw (``expected``): someone else moved
    it meanwhile, or this is the second click of a double click. Nothing was changed (code ``stale``)."""

    def __init__(self, expected: str, current: str, to_status: str):
        label = lambda code: _l(STATUSES[code]) if code in STATUSES else code  # noqa: E731
        super().__init__(_l("статус обращения уже изменился: вы видели «%(expected)s», сейчас «%(current)s». Переход "
                            "в «%(to_status)s» не выполнен — проверьте историю и повторите, если он ещё нужен",
                            expected=label(expected), current=label(current), to_status=label(to_status)),
                         "expected_status", "stale")
        self.expected, self.current, self.to_status = expected, current, to_status


def _locked(appeal: Appeal) -> Appeal:
    """``appeal`` re-read under a row lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises
    writers at BEGIN): concurrent transitions of one appeal run one after the other, and each sees the
    status the previous one committed. Pending changes of ``appeal`` are flushed first."""
    return db.session.execute(select(Appeal).where(Appeal.id == appeal.id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one()


def _event(appeal: Appeal, *, user, user_id: int | None, to_status: str, at: datetime, kind: str = "transition",
           comment: str | None = None, visibility: str = "internal", from_status: str | None = None,
           moved_from_id: str | None = None) -> AppealEvent:
    event = AppealEvent(appeal_id=appeal.id, citizen_id=appeal.citizen_id, user_id=user.id if user is not None else user_id,
                        user_role=getattr(user, "role", None), at=at, kind=kind, visibility=visibility,
                        from_status=from_status if from_status is not None else appeal.status, to_status=to_status,
                        moved_from_id=moved_from_id)
    if comment:
        event.comment = comment
    db.session.add(event)
    return event


def _comment_text(comment: str | None, visibility: str) -> str | None:
    if visibility not in VISIBILITIES:
        raise AppealError(_l("неизвестная видимость комментария «%(visibility)s»: internal (только сотрудники) или "
                             "citizen (и заявителю)", visibility=str(visibility)[:20]), "visibility")
    text = (comment or "").strip()
    if len(text) > 5000:
        raise AppealError(_l("комментарий длиннее 5000 символов"), "comment")
    return text or None


@atomic
def transition(appeal: Appeal, to_status: str, *, user_id: int | None = None, user=None, comment: str | None = None,
               visibility: str = "internal", expected_status: str | None = None) -> Appeal:
    """Move ``appeal`` to ``to_status`` if the lifecycle table (:data:`crm.appeals.catalog.TRANSITIONS`)
    allows it, and commit; then fire ``appeal.transitioned`` (the citizen's status SMS).

    ``user`` (or only ``user_id``): who does it; the history row keeps the user and the role they act
    in. ``comment``: up to 5000 characters, encrypted under the citizen's data key like the description;
    ``visibility``: ``internal`` (staff only) or ``citizen`` (also on the citizen's self-service page).
    ``expected_status``: the status the page or client showed; when the appeal is no longer in it the
    transition is refused (:class:`StaleTransition`, nothing changed, nothing counted): a double click,
    or a page another operator has moved on since. The appeal row is locked for the check and the change
    (:func:`_locked`), so two concurrent requests cannot both apply a transition from the same status.

    Effects: a re-opening (:data:`~crm.appeals.catalog.REOPEN`) adds one to ``reopen_count`` and starts
    a new resolution cycle: ``resolve_by`` is computed again from now (the category's term), and
    ``resolved_at``, ``closed_at`` and ``first_contact`` are cleared, so its breach is judged on the new
    deadline (the clocks of crm.clocks start a new cycle on the ``reopened`` event, :func:`clock_events`).
    «Консультация дана» from «Принято» closes the appeal in one step (``resolved_at`` and ``closed_at``)
    and marks it a first-contact resolution (``first_contact``). The status-update deadline restarts.
    Raises :class:`AppealError` (``invalid``, ``bad_transition``), :class:`StaleTransition`; rolled back."""
    appeal, event, from_status = _apply(appeal, to_status, user=user, user_id=user_id, comment=comment,
                                        visibility=visibility, expected_status=expected_status)
    db.session.commit()
    # after the commit: the status SMS (crm.appeals.notifications), if the citizen's consent allows it now
    hooks.fire("appeal.transitioned", appeal_id=appeal.id, old=from_status, new=to_status, event_id=event.id)
    return appeal


def _apply(appeal: Appeal, to_status: str, *, user, user_id: int | None, comment: str | None, visibility: str,
           expected_status: str | None) -> tuple[Appeal, AppealEvent, str]:
    """The checks and changes of :func:`transition`, in the caller's transaction (no commit, no hook):
    ``(appeal as locked, its new history row, the status it left)``."""
    if to_status not in STATUSES:
        raise AppealError(_l("неизвестный статус «%(to_status)s»", to_status=str(to_status)[:20]), "status")
    if expected_status is not None and expected_status not in STATUSES:
        raise AppealError(_l("неизвестный статус «%(to_status)s»", to_status=str(expected_status)[:20]),
                          "expected_status")
    text = _comment_text(comment, visibility)
    appeal = _locked(appeal)
    if expected_status is not None and appeal.status != expected_status:
        raise StaleTransition(expected_status, appeal.status, to_status)
    if to_status not in TRANSITIONS[appeal.status]:
        raise AppealError(_l("нельзя перевести из «%(from_status)s» в «%(to_status)s»",
                             from_status=_l(STATUSES[appeal.status]), to_status=_l(STATUSES[to_status])),
                          "status", "bad_transition")
    now = utcnow()
    from_status = appeal.status
    event = _event(appeal, user=user, user_id=user_id, to_status=to_status, at=now, comment=text,
                   visibility=visibility)
    if (from_status, to_status) in REOPEN:
        appeal.reopen_count += 1
        appeal.resolve_by = sla_deadlines(appeal.category, now)[2]  # the new cycle's own deadline
        appeal.resolved_at = appeal.closed_at = None
        appeal.first_contact = False
    if to_status == "escalated":
        appeal.escalated_at = appeal.escalated_at or now
        appeal.first_contact = False
    if to_status in ("resolved", "consulted"):
        appeal.resolved_at = now
    if to_status == "consulted":
        appeal.first_contact = appeal.reopen_count == 0 and appeal.escalated_at is None
    if to_status in CLOSING:
        appeal.closed_at = now
    appeal.status = to_status
    appeal.update_by = now + SLA[appeal.category][2]
    audit.record("appeal.transition", citizen_id=appeal.citizen_id, appeal_id=appeal.id,
                 fields=["comment"] if text else [], purpose="appeal_processing", detail=to_status)
    return appeal, event, from_status


def _notice_of_merge(duplicate: Appeal, original: Appeal) -> str:
    """The citizen's sentence when their appeal is found to duplicate another (shown on their page)."""
    return (f"Ваше обращение № {duplicate.number} касается той же проблемы, что и обращение № {original.number}: "
            f"они объединены, работы ведутся по обращению № {original.number}.")


@atomic
def mark_duplicate(appeal: Appeal, original_id: str, *, user, merge: bool = False, comment: str | None = None,
                   expected_status: str | None = None) -> Appeal:
    """Close ``appeal`` as a duplicate of the appeal ``original_id`` (``duplicate_of_id``), through the
    lifecycle table (:func:`transition`: the same stale check, row lock and history row), and commit.

    ``merge``: the duplicate's calls (:func:`crm.calls.services.move_to_appeal`) and comments move to the
    original in the same transaction: comment rows are re-pointed, a comment given with one of the
    duplicate's transitions becomes a comment row of the original (encrypted again under the same
    citizen's data key: the citizen who said it, whose erasure still shreds it) and leaves the transition;
    each moved comment names the duplicate (``moved_from_id``). Either way the citizen is told once: the
    step to «Дубликат» carries a comment for the citizen (their self-service page shows it) and fires
    ``appeal.transitioned`` once (the status SMS, where they consented). A repeated request finds the appeal
    already a duplicate and is refused (:class:`StaleTransition` with ``expected_status``, else
    ``bad_transition``): nothing moves twice, nobody is told twice. ``comment``: an internal note.

    Raises :class:`crm.errors.NotFound` (unknown original), :class:`AppealError` (the original is this
    appeal, or is itself a duplicate or rejected: field ``original_id``), and what :func:`transition` raises."""
    original = get(original_id)
    if original is None:
        raise NotFound(_l("исходное обращение не найдено"), code="not_found", field="original_id")
    if original.id == appeal.id:
        raise AppealError(_l("обращение не может быть дубликатом самого себя"), "original_id")
    if original.status in ("duplicate", "rejected"):
        raise AppealError(_l("обращение № %(number)s само в статусе «%(status)s»: укажите исходное обращение, по "
                             "которому ведётся работа", number=original.number, status=_l(STATUSES[original.status])),
                          "original_id")
    note = _comment_text(comment, "internal")
    appeal, closing, from_status = _apply(appeal, "duplicate", user=user, user_id=getattr(user, "id", None),
                                          comment=_notice_of_merge(appeal, original), visibility="citizen",
                                          expected_status=expected_status)
    appeal.duplicate_of_id = original.id
    mine = [closing.id]
    if note:
        mine.append(_event(appeal, user=user, user_id=None, to_status="duplicate", from_status="duplicate",
                           at=closing.at, kind="comment", comment=note).id)
    moved_calls = moved_comments = 0
    if merge:
        db.session.flush()
        moved_calls = calls.move_to_appeal(appeal.id, original.id)
        earlier = db.session.execute(select(AppealEvent).where(
            AppealEvent.appeal_id == appeal.id, AppealEvent.id.not_in(mine),
            AppealEvent.comment_enc.is_not(None))).scalars().all()
        for e in earlier:
            if e.kind == "comment":
                e.appeal_id, e.moved_from_id = original.id, appeal.id
            else:  # a transition's comment leaves the step (which stays in the duplicate's history)
                row = AppealEvent(appeal_id=original.id, citizen_id=e.citizen_id, user_id=e.user_id,
                                  user_role=e.user_role, at=e.at, kind="comment", visibility=e.visibility,
                                  from_status=original.status, to_status=original.status, moved_from_id=appeal.id)
                row.comment = e.comment
                db.session.add(row)
                e.comment = None
            moved_comments += 1
    audit.record("appeal.duplicate", citizen_id=appeal.citizen_id, appeal_id=appeal.id, purpose="appeal_processing",
                 fields=["comment"] if moved_comments else [],
                 detail=f"original={original.id};merge={'yes' if merge else 'no'};calls={moved_calls};"
                        f"comments={moved_comments}")
    db.session.commit()
    db.session.expire(original)
    # one notification of the citizen: the status SMS of this step (where they consented)
    hooks.fire("appeal.transitioned", appeal_id=appeal.id, old=from_status, new="duplicate", event_id=closing.id)
    return appeal


def fcr_rate(start: datetime, end: datetime, not_first_contact=None) -> dict:
    """First-contact resolution of the appeals created in ``[start, end)`` (aware UTC): ``{"appeals",
    "first_contact", "rate"}`` — of the appeals worked on (rejected and duplicates left out), those closed at
    the first contact (``first_contact``: «консультация дана» from «Принято», never escalated nor re-opened
    since); ``rate`` 0–1, None when there is nothing to divide. ``not_first_contact``: a ``SELECT`` of appeal
    ids that do not count as resolved at the first contact whatever their flag says (a higher feature's
    knowledge: the citizen answered the satisfaction survey «не решено» or «обращался не впервые»,
    :func:`crm.csat.services.not_first_contact`)."""
    resolved = Appeal.first_contact.is_(True)
    if not_first_contact is not None:
        resolved = and_(resolved, Appeal.id.not_in(not_first_contact))
    total, fcr = db.session.execute(select(
        func.count(), func.coalesce(func.sum(case((resolved, 1), else_=0)), 0))
        .where(Appeal.created_at >= start, Appeal.created_at < end,
               Appeal.status.not_in(NOT_COUNTED_FOR_SLA))).one()
    return {"appeals": int(total), "first_contact": int(fcr), "rate": round(int(fcr) / total, 4) if total else None}


def by_submission_key(key: str | None) -> Appeal | None:
    """The appeal created from this form submission or idempotency key, if any."""
    if not key:
        return None
    return db.session.execute(db.select(Appeal).where(Appeal.submission_key == key)).scalar_one_or_none()


# --- the intake: one use case, one service, one transaction ---------------------------------------

@dataclass
class Intake:
    """What :func:`register_appeal` did.

    ``appeal`` and its ``citizen``; ``call``: the stored recording (``None`` without one);
    ``consents``: the consent events of the answers, by purpose code (a consent already in force
    is that event, ``repeated``); ``consent_error``: why the answers were not recorded, when they
    could not be (the controller is not configured), else ``None``; ``replayed``: the same
    ``submission_key`` already made ``appeal`` (a re-sent form, a retried request, a concurrent
    twin) and this call wrote nothing; ``citizen_registered``: this call registered ``citizen``."""

    appeal: Appeal
    citizen: Citizen
    call: object | None = None
    consents: list = field(default_factory=list)
    consent_error: str | None = None
    replayed: bool = False
    citizen_registered: bool = False


def _intake_citizen(citizen_id: str | None, data: citizens.CitizenData | None,
                    confirm_duplicate: bool) -> tuple[Citizen, bool]:
    """``(citizen, registered)``: the citizen of ``citizen_id``, or of ``data`` through
    :func:`crm.citizens.services.register_checked` (the service of the operator's citizen form): the
    one with that phone and the same name, else a new one, added to the session and not committed.
    Raises :class:`AppealError` (neither or both given), :class:`crm.errors.NotFound` (unknown id),
    :class:`crm.citizens.services.CitizenError` (bad data), :class:`PhoneInUse`."""
    if (citizen_id is None) == (data is None):
        raise AppealError(_l("укажите либо «citizen», либо «citizen_id»"), "citizen")
    if citizen_id is not None:
        person = citizens.get(citizen_id)
        if person is None:
            raise NotFound(_l("заявитель не найден"), code="citizen_not_found", field="citizen_id")
        return person, False
    result = citizens.register_checked(data, confirmed_phone=data.phone if confirm_duplicate else None,
                                       same_name_is_same_person=True, commit=False)
    if result.citizen is None:
        raise PhoneInUse(result.duplicates)
    return result.citizen, result.registered


def _record_consents(citizen: Citizen, answers: Mapping[str, bool], *, appeal: Appeal, call,
                     operator_id: int | None, offset_s: float | None = None) -> tuple[list, str | None]:
    """The consent step of the intake: one :func:`crm.consent.services.record` per answer
    (``{purpose code: given}``), in the intake's transaction (``commit=False``). ``appeal`` and
    ``call`` (the intake's recording, or None) are what the answers were given in: the evidence each
    event carries (``appeal_id``; ``evidence_call_id`` and ``evidence_offset_s``, ``offset_s``
    seconds into that recording, when a recording is attached; 152-ФЗ ст. 9 ч. 3: the controller
    demonstrates the consent).

    Returns ``(events, None)``, or ``([], reason)`` without recording anything while the controller
    is not configured (no consent may be stored then, 152-ФЗ ст. 9 ч. 4; the appeal itself needs no
    consent, so it is registered and the operator told why the answers are missing). Raises
    :class:`crm.consent.services.ConsentError` for an unknown purpose and other bad input, its
    ``purpose`` set to the answer's: the whole intake is then refused."""
    if not answers:
        return [], None
    if not consent.controller_configured():
        return [], str(consent.CONTROLLER_NOT_CONFIGURED)
    events = []
    for purpose, given in answers.items():
        try:
            # the operator asked on the call; the consent records the answer the citizen gave there
            events.append(consent.record(citizen, purpose, channel="call", given=given, operator_id=operator_id,
                                         appeal_id=appeal.id, evidence_call_id=call.id if call is not None else None,
                                         evidence_offset_s=offset_s if call is not None else None, commit=False))
        except consent.ConsentError as exc:
            exc.purpose = purpose  # which answer was refused (the form puts the message beside it)
            raise
    return events, None


@atomic
def register_appeal(user, *, citizen_id: str | None = None, citizen: citizens.CitizenData | None = None,
                    category: str, topic: str, description: str, channel: str,
                    consents: Mapping[str, bool] | None = None, consent_offset_s: float | None = None,
                    recording: tuple[BinaryIO, str] | None = None, confirm_duplicate: bool = False,
                    submission_key: str | None = None, building_id: int | None = None,
                    repeat_of_id: str | None = None, call_id: str | None = None,
                    incident_id: int | None = None, call_ref: str | None = None) -> Intake:
    """Register an appeal as the operator's form (``/citizens/<id>/appeals/new``) and ``POST
    /api/v1/appeals`` both do: its citizen, the appeal, the call recording and the consent answers,
    all or nothing.

    ``user``: the operator (or admin, or the API token's user) registering it. The citizen is
    ``citizen_id`` or found or registered from ``citizen`` (:func:`_intake_citizen`: a phone of
    citizens of other names raises :class:`PhoneInUse` and registers nobody, unless
    ``confirm_duplicate``). ``consents``: ``{purpose code: given}`` of the answers asked on the call
    (purposes not asked are left out), each recorded with the appeal and, when ``recording`` is
    given, that call and ``consent_offset_s`` (seconds into the recording where the citizen answered,
    or None when not noted) as its evidence. ``recording``: ``(stream, original file name)`` of the
    call's recording. ``building_id``: the house picked from the buildings register (optional).
    ``repeat_of_id``: the earlier appeal the operator linked this one to as its repeat, one the
    repeat candidates could offer (:func:`crm.appeals.repeats.check_predecessor`; else found
    automatically). ``call_id``: the citizen's call already stored (the telephony's recording) to
    attach instead of ``recording`` (:func:`crm.calls.services.attach_to_appeal`).
    ``incident_id``: the open incident (:mod:`crm.incidents`) the appeal is about; the appeal is
    linked to it (resolved when it closes); an unknown id raises :class:`AppealError` (``invalid``,
    field ``incident_id``), a closed one :class:`AppealError` ``incident_closed``.
    ``call_ref``: the reference of the telephony call the intake was opened from (a screen pop's), handed
    to the ``appeal.registered`` hook as it came: crm.telephony checks it and links the appeal to that call.
    ``submission_key``: the form's key or the API's ``Idempotency-Key``; a key
    that already made an appeal returns that appeal (``replayed``), looking up and writing nothing.

    Order and transaction: the recording is validated first (:func:`crm.calls.services.stage_upload`,
    a private temporary file; nothing in the database yet). Then one transaction: the citizen
    (the phone look-up's access-log entries are committed by the look-up itself, as every read of
    personal data is), the appeal (:func:`create`), the call with its recording written encrypted to
    its final file (:func:`crm.calls.services.add_staged`), the consents
    (:func:`_record_consents`), one commit. The recording file is written before the commit so that a
    committed call always has its file; when anything fails, the transaction is rolled back, the
    file removed, and the error raised: no citizen, appeal, call, consent or file is left. After the
    commit the transcription is queued.

    Races: a concurrent request with the same ``submission_key`` that commits first makes our commit
    fail on the unique key (or :func:`create` find its appeal): ours is rolled back (its new citizen
    with it) and that appeal returned, ``replayed``.

    Raises :class:`AppealError` (:class:`PhoneInUse` among them), :class:`crm.errors.NotFound`,
    :class:`crm.citizens.services.CitizenError`, :class:`crm.calls.services.CallError`,
    :class:`crm.consent.services.ConsentError`; each after the rollback (:func:`crm.db.atomic`)."""
    key = (submission_key or "").strip()[:64] or None
    # one order whatever the input's (a form's fields, a JSON object's keys): by purpose code
    answers = {str(purpose): bool(given) for purpose, given in sorted((consents or {}).items())}
    staged = calls.stage_upload(*recording) if recording is not None else None
    call = attached = None
    try:
        earlier = by_submission_key(key)
        if earlier is not None:  # a re-sent form or a retried request: nothing looked up or written
            return Intake(earlier, citizens.get(earlier.citizen_id), replayed=True)
        person, registered = _intake_citizen(citizen_id, citizen, confirm_duplicate)
        predecessor = None
        if repeat_of_id:
            predecessor = check_predecessor(repeat_of_id, person.id, topic, building_id)
        appeal = create(person, category=category, topic=topic, description=description, channel=channel,
                        operator_id=user.id, submission_key=key, commit=False, building_id=building_id,
                        repeat_of=predecessor)
        if sa_inspect(appeal).persistent:
            # a concurrent twin committed the appeal after our look-up: ours (and its new citizen) goes
            db.session.rollback()
            return Intake(appeal, citizens.get(appeal.citizen_id), replayed=True)
        if incident_id is not None:
            _link_incident(incident_id, appeal)
        if staged is not None:
            call = calls.add_staged(staged, appeal=appeal, operator_id=user.id)
        elif call_id:
            attached = calls.attach_to_appeal(call_id, appeal, citizen_id=person.id, user_id=user.id)
        events, consent_error = _record_consents(person, answers, appeal=appeal, call=call, operator_id=user.id,
                                                 offset_s=consent_offset_s)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if call is not None:
            calls.remove_stored(call)
        twin = by_submission_key(key)  # the twin with our key committed first (the key is unique)
        if twin is None:
            raise
        return Intake(twin, citizens.get(twin.citizen_id), replayed=True)
    except BaseException:
        db.session.rollback()
        if call is not None:
            calls.remove_stored(call)
        raise
    finally:
        if staged is not None:
            staged.discard()
    if call is not None:
        calls.enqueue_transcription(call)
    if incident_id is None:
        _consider_surge(appeal)
    # the citizen gets the number (crm.appeals.notifications); the call is linked (crm.telephony)
    hooks.fire("appeal.registered", appeal_id=appeal.id, call_ref=call_ref or None)
    return Intake(appeal, person, call=call or attached, consents=events, consent_error=consent_error,
                  citizen_registered=registered)


def _link_incident(incident_id, appeal: Appeal) -> None:
    """Link the appeal being registered to the incident (in the intake's transaction). Raises
    :class:`AppealError`: ``invalid`` (unknown incident) or ``incident_closed``."""
    try:
        incidents.link_appeal(incident_id, appeal.id)
    except incidents.IncidentError as exc:
        raise AppealError(str(exc), "incident_id", "invalid" if exc.code == "not_found" else exc.code) from None


def _consider_surge(appeal: Appeal) -> None:
    """After a registration's commit: the house's appeals on the topic within the surge window go to
    :func:`crm.incidents.surge.consider`, which proposes an incident once per surge."""
    if appeal.building_id is None:
        return
    _, window = surge.settings()
    times = db.session.execute(select(Appeal.created_at).where(
        Appeal.building_id == appeal.building_id, Appeal.topic == appeal.topic,
        Appeal.created_at >= utcnow() - window, Appeal.status.not_in(("duplicate", "rejected")))).scalars().all()
    surge.consider(appeal.building_id, appeal.topic, list(times))


def link_surge(incident_id: int, building_id: int, topic: str, since: datetime) -> list[str]:
    """The surge proposal of ``building_id`` and ``topic`` became incident ``incident_id`` (hook
    ``incident.surge_accepted``, in its transaction): link to it the appeals on that house and topic
    created since the surge's first appeal and still being worked on, not linked to another incident.
    Returns their ids; no commit."""
    ids = list(db.session.execute(select(Appeal.id).where(
        Appeal.building_id == building_id, Appeal.topic == topic, Appeal.created_at >= since,
        Appeal.status.in_(("received", "escalated", "in_progress"))).order_by(Appeal.created_at)).scalars())
    ids = incidents.unlinked(ids)
    for appeal_id in ids:
        incidents.link_appeal(incident_id, appeal_id)
    return ids


#: the internal comment of the hand-over step of an appeal still «Принято» when its incident closes
INCIDENT_HANDOVER = "Передано в работу по инциденту (массовому отключению)"


def resolve_for_incident(appeal_ids: list[str], text: str, *, user_id: int | None = None):
    """The closing of an incident (hook ``incident.closing``, in the closing's transaction): each of
    ``appeal_ids`` still being worked on moves to «Выполнено» with ``text`` as the comment for the
    citizen (their self-service page shows it); an appeal still «Принято» is first handed over (an
    internal step). Appeals already resolved, closed, answered, rejected or duplicates are left as they
    are. Nothing is committed here (the incident's closing and the resolutions are one transaction).
    Returns the function to run after the commit: it fires ``appeal.transitioned`` once per resolved
    appeal (the status notification, on each citizen's consent) and returns the resolved ids."""
    done: list[tuple[str, str, str]] = []
    for appeal_id in appeal_ids:
        appeal = get(appeal_id)
        if appeal is None or appeal.status not in ("received", "escalated", "in_progress"):
            continue
        first = appeal.status
        if appeal.status == "received":
            appeal, _, _ = _apply(appeal, "escalated", user=None, user_id=user_id, visibility="internal",
                                  comment=INCIDENT_HANDOVER, expected_status="received")
        appeal, event, _ = _apply(appeal, "resolved", user=None, user_id=user_id, comment=text,
                                  visibility="citizen", expected_status=appeal.status)
        done.append((appeal.id, first, event.id))

    def after_commit() -> list[str]:
        for appeal_id, first, event_id in done:
            hooks.fire("appeal.transitioned", appeal_id=appeal_id, old=first, new="resolved", event_id=event_id)
        return [d[0] for d in done]
    return after_commit


def get(appeal_id: str) -> Appeal | None:
    return db.session.get(Appeal, appeal_id)


def address_for_masking(appeal_id: str | None) -> tuple[str, str | None] | None:
    """The address the appeal is about, for masking its calls' transcripts (``appeal.masking_address``,
    :func:`crm.calls.services.known_identifiers`): ``(address, apartment)`` of the house picked from the
    buildings register at intake (``appeal.building_id``; the register's address, «г. Москва, ул. Лесная,
    д. 7»), or None for no appeal or no house. ``apartment`` is always None: an appeal holds no flat of
    its own, the one given at intake is the citizen's (masked from the citizen's card).

    Decrypts nothing and logs nothing: the register's address is no ciphertext, and the read it serves
    is the caller's own entry (``transcript.view``/``transcript.search``), as for the citizen's values
    (:func:`crm.citizens.services.identifiers_for_masking`)."""
    building_id = db.session.execute(select(Appeal.building_id).where(Appeal.id == appeal_id)).scalar() \
        if appeal_id else None
    house = buildings.get(building_id)
    return (house.address, None) if house is not None and house.address else None


def by_number(number: str) -> Appeal | None:
    """The appeal numbered ``number`` (``2026-000042`` or ``2026-42``), or None."""
    m = _NUMBER_RE.match(number or "")
    if not m:
        return None
    return db.session.execute(select(Appeal).where(
        Appeal.number == f"{m.group(1)}-{int(m.group(2)):06d}")).scalar_one_or_none()


# --- who sees which appeal ------------------------------------------------------------------------

def visibility(user):
    """The condition on :class:`Appeal` limiting what ``user`` may list or open, or None (no limit).
    An executor-role account sees only the appeals handed over to its executor (``users.executor_id``);
    one without an executor sees none. Every other role allowed on an appeal page or endpoint sees all."""
    if user is not None and getattr(user, "role", None) == "executor":
        executor_id = getattr(user, "executor_id", None)
        return Appeal.executor_id == executor_id if executor_id is not None else false()
    return None


def visible_to(user, appeal: Appeal) -> bool:
    """May ``user`` open ``appeal`` (the rule of :func:`visibility`)."""
    if user is not None and getattr(user, "role", None) == "executor":
        return getattr(user, "executor_id", None) is not None and appeal.executor_id == user.executor_id
    return True


def get_for(user, appeal_id: str) -> Appeal | None:
    """The appeal of ``appeal_id`` if ``user`` may see it (:func:`visible_to`), else None: callers
    answer 404 either way, so an executor learns nothing of other services' appeals."""
    appeal = get(appeal_id)
    return appeal if appeal is not None and visible_to(user, appeal) else None


# --- hand-over to an executor ---------------------------------------------------------------------

def assign(appeal: Appeal, executor_id: int, *, user_id: int | None) -> Appeal:
    """Hand ``appeal`` over to the executor ``executor_id`` (crm.executors) and commit.

    An appeal whose lifecycle allows «Передано исполнителю» (``escalated``) moves there through
    :func:`transition` (history row, ``appeal.transition`` log entry, the status hook); an appeal
    already ``escalated`` changes executor only. Either way an ``appeal.assign`` entry
    (``executor=<id>``) goes to the access log, and after the commit the ``appeal.assigned`` hook fires
    (crm.dispatch notifies the executor). Raises :class:`AppealError`: an unknown or inactive
    executor (field ``executor_id``); an appeal that can no longer be handed over — resolved, closed,
    rejected, a duplicate (code ``bad_transition``)."""
    executor = executors.get(executor_id)
    if executor is None or not executor.active:
        raise AppealError(_l("исполнитель не найден в справочнике"), "executor_id")
    can_move = "escalated" in TRANSITIONS[appeal.status]
    if not assignable(appeal):
        raise AppealError(_l("обращение в статусе «%(status)s» нельзя передать исполнителю",
                             status=_l(STATUSES[appeal.status])),
                          "executor_id", "bad_transition")
    appeal.executor_id = executor.id
    audit.record("appeal.assign", citizen_id=appeal.citizen_id, appeal_id=appeal.id, purpose="appeal_processing",
                 detail=f"executor={executor.id}")
    if can_move:
        appeal = transition(appeal, "escalated", user_id=user_id)  # commits the assignment with the transition
    else:
        db.session.commit()
    # after the commit: the executor is notified (crm.dispatch)
    hooks.fire("appeal.assigned", appeal_id=appeal.id, executor_id=executor.id, user_id=user_id)
    return appeal


def assignable(appeal: Appeal) -> bool:
    """Whether ``appeal`` may be handed over (again) to an executor: its lifecycle allows
    «Передано исполнителю», or it is there already."""
    return appeal.status == "escalated" or "escalated" in TRANSITIONS[appeal.status]


#: The statuses of an appeal in an executor's hands.
WITH_EXECUTOR = ("escalated", "in_progress")


def open_counts_by_executor() -> dict[int, int]:
    """``{executor_id: appeals in its hands}`` (:data:`WITH_EXECUTOR`); executors with none are absent."""
    rows = db.session.execute(select(Appeal.executor_id, func.count()).where(
        Appeal.executor_id.is_not(None), Appeal.status.in_(WITH_EXECUTOR)).group_by(Appeal.executor_id)).all()
    return {int(eid): int(n) for eid, n in rows}


def sla_state(appeal: Appeal, now: datetime | None = None) -> dict:
    """``{escalate_by, update_by, resolve_by, breached}`` as ISO 8601 strings with offset."""
    now = now or utcnow()
    done = appeal.resolved_at or appeal.closed_at
    breached = bool(appeal.resolve_by and (done or now) > appeal.resolve_by)
    if appeal.category != "consultation" and appeal.escalate_by and appeal.status == "received" and now > appeal.escalate_by:
        breached = True
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {"escalate_by": iso(appeal.escalate_by), "update_by": iso(appeal.update_by),
            "resolve_by": iso(appeal.resolve_by), "breached": breached}


@dataclass(frozen=True)
class Deadline:
    """One SLA deadline of an appeal. ``kind``: ``escalate``, ``update`` or ``resolve`` (labels in
    :data:`crm.appeals.catalog.DEADLINE_KINDS`); ``due``: aware UTC datetime; ``overdue``: ``due`` has
    passed; ``soon``: not overdue, and at least ``CRM_SLA_SOON_FRACTION`` of its clock has run."""

    kind: str
    due: datetime
    overdue: bool
    soon: bool

    def as_dict(self) -> dict:
        """``{kind, due, overdue, soon}``; ``due`` is ISO 8601 in UTC (``…+00:00``)."""
        return {"kind": self.kind, "due": self.due.astimezone(timezone.utc).isoformat(),
                "overdue": self.overdue, "soon": self.soon}


def next_deadline(appeal: Appeal, now: datetime | None = None, *,
                  soon_fraction: float | None = None) -> Deadline | None:
    """The earliest SLA deadline ``appeal`` still has to meet, or ``None`` when none is pending
    (closed, rejected, duplicate). An overdue deadline that is still pending is the nearest one: it
    is what the operator must do first.

    Reads only the appeal's own columns (``status``, ``category``, ``escalate_by``, ``update_by``,
    ``resolve_by``), so a list of loaded appeals costs no further query. Which deadlines are pending
    in which status is :data:`crm.appeals.catalog.PENDING_DEADLINES` (design.md, "Appeal
    lifecycle": escalate within 1 h, update the status within 24 h, resolve by the category's
    deadline; consultations have no escalation, as in :func:`sla_state`). ``now``: aware datetime,
    default the current UTC time. "Soon" follows design.md's warning at 80 % of a clock:
    ``soon_fraction`` (default ``CRM_SLA_SOON_FRACTION``, 0.8) of the time from the clock's start
    (receipt for escalation and resolution; the last transition, i.e. ``update_by`` minus the
    category's update period, for the status update) to ``due``."""
    now = now or utcnow()
    if soon_fraction is None:
        soon_fraction = float(current_app.config["CRM_SLA_SOON_FRACTION"])
    candidates = []
    for kind in PENDING_DEADLINES.get(appeal.status, ()):
        if kind == "escalate" and appeal.category in NO_ESCALATION:
            continue
        due = getattr(appeal, f"{kind}_by")
        if due is not None:
            candidates.append((due, kind))
    if not candidates:
        return None
    due, kind = min(candidates)
    start = due - SLA[appeal.category][2] if kind == "update" else appeal.created_at
    overdue = now > due
    soon = not overdue and now >= start + (due - start) * soon_fraction
    return Deadline(kind, due, overdue, soon)


def view(appeal: Appeal, *, reveal: bool = False, owner_only: bool = False) -> dict:
    """Decrypted appeal card with its citizen card and history; logs the access (one commit).
    ``owner_only``: comments of other citizens (moved here from their merged duplicates) are left out
    undecrypted — the appeal's citizen's access export must not carry another citizen's data."""
    card = citizens.view(citizens.get(appeal.citizen_id), purpose="appeal_processing",
                         reveal=reveal, appeal_id=appeal.id, commit=False)
    erased = card["erased"]
    data = as_dict(appeal, decrypt=not erased)
    data["citizen"] = card
    data["history"] = history(appeal, erased=erased, owner=appeal.citizen_id if owner_only else None)
    data["clocks"] = [c.as_dict() for c in clocks(appeal)]
    house = buildings.get(appeal.building_id)
    data["building"] = buildings.view(house) if house is not None else None
    data["incident_id"] = incidents.incident_of_appeal(appeal.id)
    if not erased:
        audit.record("appeal.view", citizen_id=appeal.citizen_id, appeal_id=appeal.id,
                     fields=["description", "comment"], purpose="appeal_processing")
    # comments moved here from another citizen's merged duplicate are that citizen's data: their read is theirs
    others = set() if owner_only or erased else {e.citizen_id for e in appeal.events
                                       if e.citizen_id != appeal.citizen_id and e.comment_enc}
    for other in sorted(others):
        audit.record("appeal.view", citizen_id=other, appeal_id=appeal.id, fields=["comment"],
                     purpose="appeal_processing", detail="merged comments")
    db.session.commit()
    return data


def history(appeal: Appeal, *, erased: bool = False, owner: str | None = None) -> list[dict]:
    """The appeal's history, oldest first: ``{at (ISO 8601 UTC), kind (transition|comment), from, to,
    user_id, user (login name or None), role (the role they acted in, or None for the system and rows
    older than the field), comment, visibility (internal|citizen), moved_from (the number of the merged
    duplicate a comment came from, or None)}``. Decrypts the comments (the caller logs the read) unless
    ``erased``. A comment moved from another citizen's appeal whose data were erased reads None; with
    ``owner`` (a citizen id), comments of any other citizen read None and are not decrypted."""
    names = {u.id: u.username for u in users.by_ids({e.user_id for e in appeal.events if e.user_id})}
    moved = {e.moved_from_id for e in appeal.events if e.moved_from_id}
    numbers = dict(db.session.execute(select(Appeal.id, Appeal.number).where(Appeal.id.in_(moved))).all()) if moved else {}
    out = []
    for e in appeal.events:
        try:
            comment = None if erased or e.comment_enc is None or (owner and e.citizen_id != owner) else e.comment
        except crypto.DecryptError:  # a moved comment of an erased citizen: its data key is gone
            comment = None
        out.append({"at": e.at.astimezone(timezone.utc).isoformat(), "kind": e.kind or "transition",
                    "from": e.from_status, "to": e.to_status, "user_id": e.user_id, "user": names.get(e.user_id),
                    "role": e.user_role, "comment": comment, "visibility": e.visibility or "internal",
                    "moved_from": numbers.get(e.moved_from_id) if e.moved_from_id else None})
    return out


def for_self_service(scope: list[str], *, actor) -> list[dict]:
    """The citizen's own appeals for their self-service page (``scope``: the citizen ids of the signed-in
    session, :func:`crm.consent.selfservice.session_scope`), newest first: ``{number, status, category,
    topic, created_at, comments}``, ``comments`` the ``citizen``-visible comments of the citizen's own
    (``{at, text}``, oldest first). Internal comments are never read; a comment moved from another
    citizen's merged duplicate is not theirs and not shown. Each appeal whose comments were decrypted is
    logged (``appeal.view`` by ``actor``, the citizen) and committed. No description, no staff names."""
    out = []
    for cid in scope:
        for appeal in for_citizen(cid):
            rows = [e for e in appeal.events if e.visibility == "citizen" and e.citizen_id == cid
                    and e.comment_enc is not None]
            comments = []
            for e in rows:
                try:
                    comments.append({"at": e.at, "text": e.comment})
                except crypto.DecryptError:  # erased
                    continue
            if comments:
                audit.record("appeal.view", citizen_id=cid, appeal_id=appeal.id, fields=["comment"],
                             purpose="appeal_processing", detail="selfservice", actor=actor)
            out.append({"id": appeal.id, "number": appeal.number, "status": appeal.status, "category": appeal.category,
                        "topic": appeal.topic, "created_at": appeal.created_at, "comments": comments})
    db.session.commit()
    return sorted(out, key=lambda a: a["created_at"], reverse=True)


def clock_events(appeal: Appeal) -> list[tuple[datetime, str]]:
    """The appeal's history as the events its clocks run on (:func:`crm.clocks.deadlines.cycles`),
    in time order: ``received`` and ``registered`` at its creation (the hotline registers an appeal
    as it receives it), then the status entered at each transition, ``reopened`` just before
    ``in_progress`` when a resolved or closed appeal is re-opened (:data:`~crm.appeals.catalog.REOPEN`);
    a progress note is its status again (a status update), an approved extension
    :data:`crm.clocks.deadlines.EXTENDED`; requests and refusals of an extension are no event."""
    events: list[tuple[datetime, str]] = []
    for e in sorted(appeal.events, key=lambda e: e.at):
        if e.kind == "comment":  # a comment alone moves no clock
            continue
        if e.from_status is None:
            events += [(e.at, "received"), (e.at, "registered")]
            continue
        if e.kind == "extension":
            events.append((e.at, clockwork.EXTENDED))
            continue
        if e.kind in ("extension_request", "extension_rejected"):
            continue  # words about the deadline, not a status update
        if (e.from_status, e.to_status) in REOPEN:
            events.append((e.at, "reopened"))
        events.append((e.at, e.to_status))
    return events


def clocks(appeal: Appeal, now: datetime | None = None) -> list[clockwork.ClockStatus]:
    """Where each clock of ``appeal`` stands at ``now`` (default: the current UTC time): the clocks of
    :data:`crm.clocks.deadlines.DEFAULT_CLOCKS` that apply to its category, topic and channel under
    ``CRM_CLOCK_REGIME``, each judged on its latest cycle over :func:`clock_events` (a re-opened
    appeal's new cycle on its own deadline) on the calendar with the administrators' overrides
    (:func:`crm.clocks.services.calendar`). Reads only the appeal and its history; no decryption."""
    now = now or utcnow()
    events = clock_events(appeal)
    calendar = clock_calendar.calendar()
    found = (clockwork.status(clock, events, now, calendar=calendar) for clock in clockwork.clocks_for(
        category=appeal.category, topic=appeal.topic, channel=appeal.channel,
        regime=current_app.config["CRM_CLOCK_REGIME"]))
    return [s for s in found if s is not None]


#: Statuses in which a clock of an appeal may still run (the status update runs until it is closed).
WATCHED_STATUSES = ("received", "consulted", "escalated", "in_progress", "resolved")


@atomic
def warn_clocks(now: datetime | None = None) -> dict[str, int]:
    """The periodic scan (crm.appeals.jobs.warn_clocks_job): record the warnings the clocks of appeals
    in :data:`WATCHED_STATUSES` have reached at ``now`` — 50, 80 and 100 per cent of a cycle's time
    (:data:`crm.clocks.deadlines.WARNING_LEVELS`, design.md) — one :class:`AppealClockWarning` per
    appeal, clock, cycle and level, each written once (a level skipped between two scans is written
    too). Each new warning is committed together with its reactions: ``appeal.clock_breached`` for a
    100 % (crm.dispatch puts it on the supervisors' breach queue), then ``appeal.clock_warned``; when a
    reaction raises, that warning is not recorded and the exception propagates (the job fails; the next
    scan tries again), so no breach is recorded without its escalation. Returns ``{"appeals",
    "warnings", "breaches"}`` counts. Reads no personal data."""
    now = now or utcnow()
    watched = list(db.session.execute(select(Appeal).where(Appeal.status.in_(WATCHED_STATUSES))).scalars())
    ids = [a.id for a in watched]
    given = set()
    for i in range(0, len(ids), 500):
        given.update(db.session.execute(select(AppealClockWarning.appeal_id, AppealClockWarning.code,
                                               AppealClockWarning.cycle, AppealClockWarning.level)
                                        .where(AppealClockWarning.appeal_id.in_(ids[i:i + 500]))).all())
    warned = []
    for appeal in watched:
        for clock in clocks(appeal, now):
            reached = clock.warning
            for level in clockwork.WARNING_LEVELS:
                if reached is None or level > reached or (appeal.id, clock.code, clock.cycle, level) in given:
                    continue
                warned.append((appeal.id, clock.code, clock.cycle, level))
    db.session.rollback()  # end the read; each warning below is its own transaction
    breaches = 0
    for appeal_id, code, cycle, level in warned:
        # The warning is recorded in the transaction of its reactions: the breach hook first (crm.dispatch
        # queues it and commits, taking this row with it), then the warning hook, then the commit. When a
        # reaction raises, the row rolls back with it and the scan stops: the job fails visibly and the
        # next scan finds the warning again, so a breach is never recorded without reaching the queue.
        try:
            db.session.add(AppealClockWarning(appeal_id=appeal_id, code=code, cycle=cycle, level=level, at=now))
            if level == 100:
                hooks.fire("appeal.clock_breached", appeal_id=appeal_id, code=code, cycle=cycle)
                breaches += 1
            hooks.fire("appeal.clock_warned", appeal_id=appeal_id, code=code, cycle=cycle, level=level)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return {"appeals": len(watched), "warnings": len(warned), "breaches": breaches}


def as_dict(appeal: Appeal, decrypt: bool = False) -> dict:
    """The API shape of an appeal; the description only when ``decrypt`` (caller logs it).
    ``next_deadline``: :meth:`Deadline.as_dict` of :func:`next_deadline`, or ``None``."""
    return {"id": appeal.id, "number": appeal.number, "status": appeal.status, "citizen_id": appeal.citizen_id,
            "category": appeal.category, "topic": appeal.topic, "channel": appeal.channel,
            "description": appeal.description if decrypt else None,
            "created_at": appeal.created_at.isoformat(), "sla": sla_state(appeal),
            "repeat_of": appeal.repeat_of_id, "reopen_count": appeal.reopen_count,
            "first_contact": bool(appeal.first_contact), "duplicate_of": appeal.duplicate_of_id,
            "operator_id": appeal.operator_id, "executor_id": appeal.executor_id,
            "next_deadline": _deadline_dict(next_deadline(appeal))}


def _deadline_dict(deadline: Deadline | None) -> dict | None:
    return deadline.as_dict() if deadline else None


def recent(limit: int = 50, operator_id: int | None = None, status: str | None = None, *,
           user=None, executor_id: int | None = None) -> list[Appeal]:
    """Latest appeals (no decryption); only those ``user`` may see (:func:`visibility`) when given;
    ``executor_id``: those handed over to that executor."""
    q = db.select(Appeal).order_by(Appeal.created_at.desc()).limit(limit)
    rule = visibility(user)
    if rule is not None:
        q = q.where(rule)
    if executor_id is not None:
        q = q.where(Appeal.executor_id == executor_id)
    if operator_id:
        q = q.where(Appeal.operator_id == operator_id)
    if status:
        q = q.where(Appeal.status == status)
    return list(db.session.execute(q).scalars())


def for_citizen(citizen_id: str) -> list[Appeal]:
    return list(db.session.execute(db.select(Appeal).where(Appeal.citizen_id == citizen_id)
                                   .order_by(Appeal.created_at.desc())).scalars())


def newest_buildings(citizen_ids) -> dict[str, int]:
    """``{citizen_id: building_id}``: the building of each citizen's newest appeal that names one (as the
    IVR finds a caller's house; nothing decrypted). Citizens without such an appeal are left out."""
    ids = sorted({c for c in citizen_ids if c})
    if not ids:
        return {}
    rows = db.session.execute(select(Appeal.citizen_id, Appeal.building_id).where(
        Appeal.citizen_id.in_(ids), Appeal.building_id.is_not(None))
        .order_by(Appeal.created_at.desc(), Appeal.id)).all()
    found: dict[str, int] = {}
    for citizen_id, building_id in rows:
        found.setdefault(citizen_id, building_id)
    return found


def topic_counts(building_id: int, since: datetime) -> dict[str, int]:
    """``{topic: appeals}`` registered on ``building_id`` since ``since`` (aware UTC), duplicates and
    rejected appeals left out; most frequent first."""
    rows = db.session.execute(select(Appeal.topic, func.count()).where(
        Appeal.building_id == building_id, Appeal.created_at >= since,
        Appeal.status.not_in(("duplicate", "rejected"))).group_by(Appeal.topic)
        .order_by(func.count().desc(), Appeal.topic)).all()
    return {topic: int(n) for topic, n in rows}


def export_for_citizen(citizen_id: str, *, purpose: str, erased: bool) -> list[dict]:
    """The citizen's appeals for an access export (crm.consent.rights.export_citizen), oldest first:
    each :func:`view` (without the citizen card; ``owner_only``) with ``calls``: each
    :func:`crm.calls.services.view` (transcript read under ``purpose``, logged) plus what higher features
    add through the ``call.export`` hook (QA's ``evaluations``). ``erased``: the citizen's data were destroyed.

    Merged duplicates (:func:`mark_duplicate`): another citizen's calls and comments moved onto this
    citizen's appeal are left out (they are that citizen's data); this citizen's own calls and comments moved
    onto another citizen's appeal are exported under the duplicate they came from, as ``moved_to_original``
    (``{"appeal": number, "comments": [{at, comment, visibility}], "calls": [...]}``)."""
    out = []
    mine = sorted(for_citizen(citizen_id), key=lambda a: a.created_at)
    own_ids = {a.id for a in mine}

    def call_data(call) -> dict:
        c = calls.view(call, purpose=purpose)
        for part in hooks.fire("call.export", call_id=call.id, erased=erased):
            c.update(part or {})
        return c

    moved_calls = [c for c in calls.for_citizen(citizen_id) if c.appeal_id and c.appeal_id not in own_ids]
    moved_comments = list(db.session.execute(select(AppealEvent).where(
        AppealEvent.citizen_id == citizen_id, AppealEvent.comment_enc.is_not(None),
        AppealEvent.appeal_id.not_in(own_ids) if own_ids else true())).scalars())
    for appeal in mine:
        data = view(appeal, reveal=False, owner_only=True)
        data.pop("citizen", None)
        data["calls"] = [call_data(call) for call in calls.for_appeal(appeal.id)
                         if call.citizen_id in (None, citizen_id)]
        if appeal.duplicate_of_id and appeal.duplicate_of_id not in own_ids:
            comments = [e for e in moved_comments if e.moved_from_id == appeal.id]
            taken = [c for c in moved_calls if c.appeal_id == appeal.duplicate_of_id]
            if comments or taken:
                original = get(appeal.duplicate_of_id)
                data["moved_to_original"] = {
                    "appeal": original.number if original is not None else None,
                    "comments": [{"at": e.at.astimezone(timezone.utc).isoformat(), "visibility": e.visibility,
                                  "comment": None if erased else e.comment} for e in comments],
                    "calls": [call_data(c) for c in taken]}
                if comments and not erased:
                    audit.record("appeal.view", citizen_id=citizen_id, appeal_id=appeal.duplicate_of_id,
                                 fields=["comment"], purpose=purpose, detail="merged comments")
        out.append(data)
    db.session.commit()
    return out


#: Statuses of an appeal still being worked on (its citizen's data are kept past the retention period).
ACTIVE_STATUSES = ("received", "escalated", "in_progress")


def activity_selects() -> list:
    """``SELECT citizen_id, at`` of appeals created, resolved and closed (retention's last activity)."""
    return [db.select(Appeal.citizen_id, Appeal.created_at),
            db.select(Appeal.citizen_id, Appeal.resolved_at).where(Appeal.resolved_at.isnot(None)),
            db.select(Appeal.citizen_id, Appeal.closed_at).where(Appeal.closed_at.isnot(None))]


def active_citizens_select():
    """``SELECT citizen_id`` of appeals still being worked on (:data:`ACTIVE_STATUSES`)."""
    return db.select(Appeal.citizen_id).where(Appeal.status.in_(ACTIVE_STATUSES), Appeal.citizen_id.isnot(None))


def numbers_for_citizen(citizen_id: str) -> list[str]:
    """The numbers of the citizen's appeals (for a destruction act's subject)."""
    return [a.number for a in for_citizen(citizen_id)]


def numbers_by_id(appeal_ids) -> dict[str, str]:
    """``{appeal id: number}`` of ``appeal_ids`` in one query (lists showing many calls' appeals)."""
    ids = sorted({a for a in appeal_ids if a})
    if not ids:
        return {}
    return dict(db.session.execute(select(Appeal.id, Appeal.number).where(Appeal.id.in_(ids))).all())


#: Statuses left out of SLA compliance (the appeal was not worked on: refused or a duplicate).
NOT_COUNTED_FOR_SLA = ("rejected", "duplicate")


def kpi_figures(start: datetime, end: datetime, now: datetime, not_first_contact=None) -> dict:
    """The appeals' KPIs for appeals created in ``[start, end)`` (aware UTC), for crm.reports.

    ``sla_compliance``: of those appeals (rejected and duplicates left out), the share resolved (or
    closed) by their ``resolve_by``, or still open and not past it at ``now``. ``repeat_rate``: the share
    linked to an earlier appeal (design.md). ``first_contact_resolution_rate``: :func:`fcr_rate` (with
    ``not_first_contact``). Ratios are 0–1, ``None`` when there is nothing to divide;
    ``avg_time_to_resolve_h`` in hours."""
    in_period = (Appeal.created_at >= start, Appeal.created_at < end)
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

    def counts(column, codes) -> dict[str, int]:
        rows = db.session.execute(select(column, func.count()).where(*in_period).group_by(column)).all()
        out = {code: 0 for code in codes}
        out.update({code: n for code, n in rows})
        return out

    def ratio(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "appeals_total": total,
        "by_category": counts(Appeal.category, CATEGORIES),
        "by_topic": counts(Appeal.topic, TOPICS),
        "repeats": int(repeats),
        "repeat_rate": ratio(int(repeats), total),
        "first_contact_resolution_rate": fcr_rate(start, end, not_first_contact)["rate"],
        "sla_compliance": ratio(int(sla_ok), int(sla_total)),
        "avg_time_to_resolve_h": round(sum(hours) / len(hours), 2) if hours else None,
    }


# --- lists and search: keyset paging, blind-index look-ups, one access-log entry per search ---------

#: Sort orders of :func:`search`: ``deadline`` (nearest pending deadline first, appeals with none
#: last), ``created`` (oldest first), ``-created`` (newest first).
SORTS = ("deadline", "created", "-created")
MAX_LIMIT = 200
#: Where an appeal with no pending deadline sorts (after every real one).
NO_DEADLINE = datetime(9999, 1, 1, tzinfo=timezone.utc)
_NUMBER_RE = re.compile(r"^\s*(\d{4})\s*-\s*(\d{1,9})\s*$")


class SearchError(AppealError):
    """A bad filter, sort or cursor (``field`` names it)."""


@dataclass
class Filters:
    """What to list. ``q``: an appeal number (``2026-000042`` or ``2026-42``), a phone in any spelling,
    or a surname (or full name) and/or an address (the citizen's building); matched through the blind
    indexes, nothing decrypted. ``statuses`` etc.: exact codes; ``created_from``/``created_to``: aware
    datetimes, ``[from, to)``; ``overdue``: the nearest pending deadline has passed; ``due_soon``: it
    falls within ``CRM_SEARCH_SOON_HOURS`` (not overdue); ``repeat``: linked to an earlier appeal (True) or
    not (False)."""

    q: str | None = None
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    operator_id: int | None = None
    citizen_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    overdue: bool = False
    due_soon: bool = False
    repeat: bool | None = None
    executor_id: int | None = None

    def used(self) -> list[str]:
        """The names of the filters set (for the access log: never their values)."""
        names = ("statuses", "categories", "topics", "operator_id", "executor_id", "citizen_id", "created_from", "created_to",
                 "overdue", "due_soon")
        out = [n for n in names if getattr(self, n)]
        if self.repeat is not None:
            out.append("repeat")
        return out


@dataclass
class Page:
    """One page of :func:`search`: ``items`` (appeals, nothing decrypted), ``next_cursor`` (None on the
    last page), ``total`` (all the appeals the filters match; with ``total_capped``: at least that many,
    the count stopped at ``CRM_SEARCH_COUNT_CAP``), ``kind`` of ``q`` (``number``, ``phone``,
    ``name_or_address``, or None), ``offset``: how many came before this page."""

    items: list[Appeal]
    next_cursor: str | None
    total: int
    kind: str | None
    offset: int = 0
    total_capped: bool = False


def _least(*exprs):
    out = exprs[0]
    for e in exprs[1:]:
        out = case((out <= e, out), else_=e)
    return out


def deadline_expr():
    """SQL of the nearest pending deadline (:func:`next_deadline`'s ``due``) computed from the appeal's
    own columns, :data:`NO_DEADLINE` when nothing is pending: the default sort and the overdue filter."""
    far = literal(NO_DEADLINE, UTCDateTime())

    def col(kind):
        return func.coalesce(getattr(Appeal, f"{kind}_by"), far)

    whens = []
    for status, kinds in PENDING_DEADLINES.items():
        if not kinds:
            continue
        expr = _least(*[col(k) for k in kinds])
        if "escalate" in kinds:
            rest = [col(k) for k in kinds if k != "escalate"]
            expr = case((Appeal.category.in_(tuple(NO_ESCALATION)), _least(*rest) if rest else far), else_=expr)
        whens.append((Appeal.status == status, expr))
    return case(*whens, else_=far)


def _q_conditions(q: str) -> tuple[str, list]:
    """``(kind, [conditions OR-ed])`` of a free-text query. Raises :class:`SearchError` when it is
    none of a number, a phone, a name or an address."""
    q = " ".join(q.split())
    m = _NUMBER_RE.match(q)
    if m:
        return "number", [Appeal.number == f"{m.group(1)}-{int(m.group(2)):06d}"]
    if not re.search(r"[^\W\d_]", q):  # no letters: a phone, or nothing
        try:
            ids = citizens.ids_by_phone_select(q)
        except citizens.CitizenError:
            raise SearchError(_l("введите номер обращения (2026-000042), телефон, фамилию или адрес"), "q") from None
        return "phone", [Appeal.citizen_id.in_(ids)]
    conds = []
    names = citizens.ids_by_surname_select(q)
    if names is not None:
        conds.append(Appeal.citizen_id.in_(names))
    if re.search(r"\d", q):  # a house number: an address
        keys = citizens.building_search_keys(q)
        if keys:
            conds.append(Appeal.building_key.in_(keys))
    return "name_or_address", conds


def _conditions(f: Filters, now: datetime) -> tuple[str | None, list]:
    conds = []
    kind = None
    if f.q and f.q.strip():
        kind, qc = _q_conditions(f.q)
        conds.append(or_(*qc) if qc else literal(False))
    for values, column, known, name in ((f.statuses, Appeal.status, STATUSES, "status"),
                                        (f.categories, Appeal.category, CATEGORIES, "category"),
                                        (f.topics, Appeal.topic, TOPICS, "topic")):
        bad = [v for v in values if v not in known]
        if bad:
            raise SearchError(_l("неизвестное значение фильтра «%(name)s»: «%(value)s»",
                                 name=name, value=str(bad[0])[:40]), name)
        if values:
            conds.append(column.in_(tuple(values)))
    if f.operator_id is not None:
        conds.append(Appeal.operator_id == f.operator_id)
    if f.citizen_id:
        conds.append(Appeal.citizen_id == f.citizen_id)
    if f.executor_id is not None:
        if not has_executors():
            raise SearchError(_l("фильтр «исполнитель» пока не поддерживается: у обращений нет исполнителей"),
                              "executor_id", "unsupported_filter")
        conds.append(Appeal.__table__.c.executor_id == f.executor_id)
    if f.created_from is not None:
        conds.append(Appeal.created_at >= f.created_from)
    if f.created_to is not None:
        conds.append(Appeal.created_at < f.created_to)
    if f.repeat is not None:
        conds.append(Appeal.repeat_of_id.is_not(None) if f.repeat else Appeal.repeat_of_id.is_(None))
    nearest = Appeal.nearest_deadline
    now_sql = literal(now, UTCDateTime())
    if f.overdue:
        conds.append(nearest < now_sql)
    if f.due_soon:
        soon = now + timedelta(hours=float(current_app.config["CRM_SEARCH_SOON_HOURS"]))
        conds.append(and_(nearest >= now_sql, nearest <= literal(soon, UTCDateTime())))
    return kind, conds


def _sort_key(sort: str):
    """The sort column: the generated, indexed ``nearest_deadline`` (what :func:`deadline_expr` computes)."""
    return Appeal.nearest_deadline if sort == "deadline" else Appeal.created_at


def encode_cursor(sort: str, value: datetime, appeal_id: str, offset: int, total: int | None = None,
                  capped: bool = False) -> str:
    """An opaque cursor: the sort, the last row's key and id, how many rows came before the next page,
    and the first page's count of matches (``total``, ``capped``: see :class:`Page`), which later pages
    show instead of counting again."""
    parts = [sort, value.astimezone(timezone.utc).isoformat(), appeal_id, offset]
    if total is not None:
        parts += [total, bool(capped)]
    raw = json.dumps(parts, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[datetime, str, int]:
    """``(value, appeal_id, offset)`` of :func:`encode_cursor`. Raises :class:`SearchError`."""
    return _decode_cursor(cursor, sort)[:3]


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime, str, int, int | None, bool]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) not in (4, 6):
            raise ValueError
        got_sort, value, appeal_id, offset = parts[:4]
        total, capped = parts[4:] if len(parts) == 6 else (None, False)
        when = datetime.fromisoformat(value)
        if (got_sort != sort or when.tzinfo is None or not isinstance(appeal_id, str) or not isinstance(offset, int)
                or not (total is None or (isinstance(total, int) and total >= 0)) or not isinstance(capped, bool)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise SearchError(_l("неверный курсор: начните список сначала"), "cursor") from None
    return when, appeal_id, max(offset, 0), total, capped


def search(f: Filters, *, sort: str = "deadline", limit: int = 50, cursor: str | None = None,
           purpose: str = "appeal_processing", now: datetime | None = None, user=None) -> Page:
    """A page of the appeals ``f`` matches, ``sort``-ed, by keyset paging: the ``cursor`` carries the
    last row's sort key and id, so rows inserted meanwhile neither repeat nor shift a page; following
    ``next_cursor`` reaches every appeal once; ``user``: only the appeals it may see
    (:func:`visibility`). ``limit`` 1…:data:`MAX_LIMIT`. Nothing is decrypted: a
    phone, a name or an address is matched through its blind index (:func:`_q_conditions`).

    Logged as ``appeal.search`` (committed): ``detail`` the kind of the query (``q=phone``…), the
    filters' names and the sort, never their values; ``fields`` the personal-data categories searched
    by. A search by phone, name or address writes one entry per citizen whose appeals the page shows
    (naming the citizen); any other search, or one that found nothing, one entry (outcome
    ``not_found`` when nothing matched). Raises :class:`SearchError`."""
    if sort not in SORTS:
        raise SearchError(_l("неизвестный порядок «%(sort)s»", sort=str(sort)[:20]), "sort")
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise SearchError(_l("limit: от 1 до %(max)s", max=MAX_LIMIT), "limit")
    now = now or utcnow()
    kind, conds = _conditions(f, now)
    rule = visibility(user)  # an executor: only the appeals handed over to it
    if rule is not None:
        conds.append(rule)
    key = _sort_key(sort)
    desc = sort.startswith("-")
    q = select(Appeal, key.label("sort_key")).where(*conds)
    offset, known_total, known_capped = 0, None, False
    if cursor:
        value, last_id, offset, known_total, known_capped = _decode_cursor(cursor, sort)
        v = literal(value, UTCDateTime())
        # the plain bound (key >= v) is what an index on the key alone can seek to; the OR alone would
        # make PostgreSQL read the index from its start (a deep page took 570 ms at a million appeals)
        if desc:
            q = q.where(key <= v, or_(key < v, and_(key == v, Appeal.id < last_id)))
        else:
            q = q.where(key >= v, or_(key > v, and_(key == v, Appeal.id > last_id)))
    q = q.order_by(key.desc() if desc else key, Appeal.id.desc() if desc else Appeal.id).limit(int(limit) + 1)
    rows = db.session.execute(q).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [r[0] for r in rows]
    if cursor and more and known_total is not None:  # the first page counted them
        total, capped = max(known_total, offset + len(items)), known_capped
    else:
        total, capped = _count(conds, offset, len(items), more)
    next_cursor = None
    if more and rows:
        last_key = rows[-1][1]
        if isinstance(last_key, str):  # SQLite may hand back the CASE's text
            last_key = datetime.fromisoformat(last_key)
        if last_key.tzinfo is None:
            last_key = last_key.replace(tzinfo=timezone.utc)
        next_cursor = encode_cursor(sort, last_key, items[-1].id, offset + len(items), total, capped)
    searched_by = {"phone": ["phone"], "name_or_address": ["full_name", "address"]}.get(kind or "", [])
    detail = ";".join(filter(None, [f"q={kind}" if kind else None,
                                    ("filters=" + ",".join(f.used())) if f.used() else None,
                                    f"sort={sort}", "page=next" if cursor else None]))
    # a search by phone, name or address processed the found citizens' data: one entry naming each
    # citizen whose appeals are shown, as the phone look-up logs each citizen it finds
    ids = [a.id for a in items]
    shown = list(dict.fromkeys(a.citizen_id for a in items)) if searched_by else []
    for cid in shown:
        audit.record("appeal.search", citizen_id=cid, fields=searched_by, purpose=purpose, detail=detail)
    if not shown:
        audit.record("appeal.search", citizen_id=f.citizen_id, fields=searched_by, purpose=purpose, detail=detail,
                     outcome="ok" if total else "not_found")
    db.session.commit()
    if ids:  # the commit expired them: one query loads them all again (not one per row)
        db.session.execute(select(Appeal).where(Appeal.id.in_(ids))).scalars().all()
    return Page(items, next_cursor, total, kind, offset, capped)


def _count(conds: list, offset: int, shown: int, more: bool) -> tuple[int, bool]:
    """``(total, capped)`` of a page: the last page knows its total (``offset + shown``, no query);
    otherwise the matches are counted up to ``CRM_SEARCH_COUNT_CAP`` (10 000) only — a full count
    of a million rows costs 100 ms and more, the page itself under a millisecond — and ``capped``
    says there are more than ``total`` (the page shows «более 10 000»)."""
    if not more:
        return offset + shown, False
    cap = int(current_app.config["CRM_SEARCH_COUNT_CAP"])
    matches = select(literal(1)).select_from(Appeal).where(*conds).limit(cap + 1).subquery()
    n = db.session.execute(select(func.count()).select_from(matches)).scalar_one()
    return (cap, True) if n > cap else (n, False)


def has_executors() -> bool:
    """Whether appeals have an ``executor_id`` column to filter on (not yet)."""
    return "executor_id" in Appeal.__table__.c


def filters_from(args: Mapping) -> Filters:
    """:class:`Filters` from the API's or the list page's parsed parameters (missing ones unset)."""
    def many(name):
        v = args.get(name)
        if v is None:
            return ()
        return tuple(x for x in ([v] if isinstance(v, str) else v) if x)
    f = Filters(q=args.get("q") or None, statuses=many("status"), categories=many("category"), topics=many("topic"),
                operator_id=args.get("operator_id"), citizen_id=args.get("citizen_id") or None,
                created_from=args.get("created_from"), created_to=args.get("created_to"),
                overdue=bool(args.get("overdue")), due_soon=bool(args.get("due_soon")), repeat=args.get("repeat"))
    f.executor_id = args.get("executor_id")
    return f



# --- the executor's work: notes, extensions, the address -----------------------------------------

#: History rows that keep the status (:attr:`AppealEvent.kind`), and their access-log actions.
EVENT_KINDS = {"note": "appeal.comment", "extension_request": "appeal.comment", "extension_rejected": "appeal.comment"}


@atomic
def add_comment(appeal: Appeal, text: str, *, user, visibility: str = "internal") -> AppealEvent:
    """A comment on ``appeal`` without a change of status, in any status (a closed appeal too): a
    history row of kind ``comment`` keeping the user, their role and the time (UTC), the text (3 to
    5000 characters) encrypted under the citizen's data key like the description. ``visibility``:
    ``internal`` (staff only) or ``citizen`` (also on the citizen's self-service page). Logged as
    ``appeal.comment`` (``detail`` ``comment``). Raises :class:`AppealError` (``comment``,
    ``visibility``); rolled back."""
    text = _comment_text(text, visibility)
    if text is None or len(text) < 3:
        raise AppealError(_l("напишите комментарий"), "comment")
    appeal = _locked(appeal)
    event = _event(appeal, user=user, user_id=None, to_status=appeal.status, at=utcnow(), kind="comment",
                   comment=text, visibility=visibility)
    audit.record("appeal.comment", citizen_id=appeal.citizen_id, appeal_id=appeal.id, fields=["comment"],
                 purpose="appeal_processing", detail="comment")
    db.session.commit()
    return event


def add_event(appeal: Appeal, kind: str, *, user_id: int | None, comment: str, commit: bool = True,
              user=None) -> AppealEvent:
    """A history row of ``kind`` (:data:`EVENT_KINDS`) that keeps the status, with ``comment`` (required,
    encrypted under the citizen's key). A ``note`` (an executor's progress report) is a status update:
    ``update_by`` restarts as after a transition. Logged as ``appeal.comment`` (``detail`` the kind).
    Raises :class:`AppealError` (code ``bad_transition`` for an appeal no longer worked on)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown history kind {kind!r}")
    comment = (comment or "").strip()
    if len(comment) < 3:
        raise AppealError(_l("напишите комментарий"), "comment")
    if appeal.status not in WITH_EXECUTOR and kind != "extension_rejected":
        raise AppealError(_l("обращение в статусе «%(status)s»: оно не в работе у исполнителя",
                             status=_l(STATUSES[appeal.status])),
                          "status", "bad_transition")
    now = utcnow()
    event = _event(appeal, user=user, user_id=user_id, to_status=appeal.status, at=now, kind=kind,
                   comment=comment[:5000])
    if kind == "note":
        appeal.update_by = now + SLA[appeal.category][2]
    audit.record(EVENT_KINDS[kind], citizen_id=appeal.citizen_id, appeal_id=appeal.id, fields=["comment"],
                 purpose="appeal_processing", detail=kind)
    if commit:
        db.session.commit()
    return event


def extend(appeal: Appeal, until: datetime, *, user_id: int | None, comment: str, commit: bool = True,
           user=None) -> AppealEvent:
    """An approved extension: ``resolve_by`` moves to ``until`` (aware, later than it was), a history
    row ``extension`` with ``comment`` (the reason), and the clocks that have a legal extension
    (59-ФЗ ст. 12 ч. 2: the answer's 30 days) run with it in their current cycle
    (:data:`crm.clocks.deadlines.EXTENDED`); the hotline's other clocks (ПП РФ № 416 knows no
    extension) are judged as before. Logged as ``appeal.extend``. Raises :class:`AppealError`."""
    if until.tzinfo is None:
        raise AppealError(_l("срок указывается с часовым поясом"), "until")
    if appeal.status not in WITH_EXECUTOR:
        raise AppealError(_l("обращение в статусе «%(status)s»: срок продлить нельзя", status=_l(STATUSES[appeal.status])),
                          "status",
                          "bad_transition")
    if appeal.resolve_by is not None and until <= appeal.resolve_by:
        raise AppealError(_l("новый срок должен быть позже нынешнего"), "until")
    comment = (comment or "").strip() or "срок продлён"
    event = _event(appeal, user=user, user_id=user_id, to_status=appeal.status, at=utcnow(), kind="extension",
                   comment=comment[:5000])
    appeal.resolve_by = until.astimezone(timezone.utc)
    audit.record("appeal.extend", citizen_id=appeal.citizen_id, appeal_id=appeal.id, fields=["comment"],
                 purpose="appeal_processing", detail=f"resolve_by={appeal.resolve_by.isoformat()}")
    if commit:
        db.session.commit()
    return event


def address_for_work(appeal: Appeal, user) -> dict:
    """The address an executor needs to do the work: ``{"address", "apartment", "building"}`` of the
    appeal's citizen (the building of the register, when one was picked), for an executor's account
    the appeal is handed over to. Logged as ``citizen.reveal`` of the address and apartment for
    ``appeal_processing`` with ``detail`` ``executor_work`` (committed). Raises
    :class:`crm.errors.NotFound` for an appeal it may not see, :class:`AppealError` (code ``erased``)."""
    if getattr(user, "role", None) != "executor" or not visible_to(user, appeal):
        raise NotFound(_l("обращение не найдено"), code="not_found")
    house = buildings.get(appeal.building_id)
    found = citizens.address_for(citizens.get(appeal.citizen_id), purpose="appeal_processing", appeal_id=appeal.id,
                                 detail="executor_work")
    if found is None:
        raise AppealError(_l("данные заявителя уничтожены"), "citizen", "erased")
    return {**found, "building": house.address if house is not None else None}



def executor_figures(now: datetime | None = None, *, days: int = 30) -> dict[int, dict]:
    """Each executor's load and lateness, from the appeals handed over to it (its current executor),
    ``{executor_id: {"open_appeals", "overdue", "due_in_window", "late_in_window"}}`` (executors with
    no appeal are absent): ``open_appeals`` in its hands (:data:`WITH_EXECUTOR`); ``overdue``: of those,
    past their resolution deadline at ``now``; ``due_in_window``: appeals whose resolution deadline fell
    in the last ``days`` days (``[now - days, now]``); ``late_in_window``: of those, not resolved by it
    (resolved later, or not yet). No decryption."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    now_sql, since_sql = literal(now, UTCDateTime()), literal(since, UTCDateTime())
    in_hand = Appeal.status.in_(WITH_EXECUTOR)
    due_in_window = and_(Appeal.resolve_by.is_not(None), Appeal.resolve_by >= since_sql, Appeal.resolve_by <= now_sql,
                         Appeal.status.not_in(NOT_COUNTED_FOR_SLA))
    late = and_(due_in_window, or_(Appeal.resolved_at.is_(None), Appeal.resolved_at > Appeal.resolve_by))
    rows = db.session.execute(select(
        Appeal.executor_id,
        func.coalesce(func.sum(case((in_hand, 1), else_=0)), 0),
        func.coalesce(func.sum(case((and_(in_hand, Appeal.resolve_by < now_sql), 1), else_=0)), 0),
        func.coalesce(func.sum(case((due_in_window, 1), else_=0)), 0),
        func.coalesce(func.sum(case((late, 1), else_=0)), 0),
    ).where(Appeal.executor_id.is_not(None)).group_by(Appeal.executor_id)).all()
    return {int(eid): {"open_appeals": int(o), "overdue": int(od), "due_in_window": int(d), "late_in_window": int(lt)}
            for eid, o, od, d, lt in rows}
