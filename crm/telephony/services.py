"""Telephony services: the PBX's events build call records, abandoned calls go to the callback
worklist, the queue board's figures.

Events follow Zammad's generic CTI API (``newCall``, ``answer``, ``hangup`` with ``callId``, ``from``,
``to``, ``direction``, ``queue``, ``user``, ``answeringNumber``, ``cause``), plus ``recording``. Every
event is kept (:class:`~crm.telephony.models.TelephonyEvent`, unique on ``event_id``) and the call
record is recomputed from all of its call's events by :func:`fold`, so events that arrive late, out of
order or twice give the same record.
"""
from __future__ import annotations

import base64
import binascii
import json
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Iterable

from flask import current_app
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from crm import jobs
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.citizens.phones import InvalidPhone, format_phone, mask_phone, normalise_phone
from crm.db import db, utcnow
from crm.errors import CrmError
from crm.i18n import lazy_gettext as _l
from crm.security import audit
from crm.telephony import pop, surge
from crm.telephony.models import STATES, AgentState, CallbackAttempt, TelephonyCall, TelephonyEvent
from crm.timeutil import day_end, day_start, local_date, parse_day
from crm.users import services as users

#: Event types of the webhook (Zammad's three, and the recording being ready).
EVENT_TYPES = ("newCall", "answer", "hangup", "recording")
#: The webhook's first event types (before issue 16): still acknowledged and de-duplicated, nothing built.
LEGACY_TYPES = ("call.started", "call.ended")
#: Order of events at the same instant: a call is offered, then answered, then hung up.
_RANK = {"newCall": 0, "answer": 1, "hangup": 2}
#: A hang-up with this cause hands the call on (Zammad's ``forwarded``): the call goes on.
FORWARDED = "forwarded"
#: A hang-up with this cause ends the call for the queue by a transfer out (queue_log TRANSFER).
TRANSFER = "transfer"
#: Outcomes of a callback attempt; ``reached`` clears the callback.
ATTEMPT_OUTCOMES = ("reached", "no_answer", "busy", "wrong_number")


class TelephonyError(CrmError, ValueError):
    """A refused event or request; Russian message, ``code`` for the API, ``status`` (400 unless given)."""

    def __init__(self, message, code: str = "invalid_event", status: int = 400):
        super().__init__(message, code=code, status=status)


def parse_at(value) -> datetime:
    """``at`` (ISO 8601 with an offset) as an aware UTC datetime. Raises :class:`TelephonyError`
    (``invalid_at``) for a missing, malformed or offset-less value."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise TelephonyError(_l("время события «at» должно быть в формате ISO 8601 со смещением"),
                                 "invalid_at") from None
    if moment.tzinfo is None:
        raise TelephonyError(_l("время события «at» должно быть в формате ISO 8601 со смещением"), "invalid_at")
    return moment.astimezone(timezone.utc)


def check_window(at: datetime, now: datetime | None = None) -> None:
    """Refuse (400 ``stale_event``) an event whose ``at`` is more than ``CRM_TELEPHONY_WINDOW_S``
    seconds (300) from now, before or after: a captured event cannot be replayed later, and a PBX
    with a wrong clock is noticed."""
    now = now or utcnow()
    window = float(current_app.config["CRM_TELEPHONY_WINDOW_S"])
    if abs((now - at).total_seconds()) > window:
        raise TelephonyError(_l("время события отличается от текущего более чем на %(window)s с",
                                window=int(window)), "stale_event")


@dataclass
class Event:
    """A PBX event as the services take it (the webhook's JSON, a queue_log line, the simulator).
    ``from_``/``to``: the numbers as given; ``at``: aware UTC."""

    event_id: str
    type: str
    call_id: str
    at: datetime
    direction: str = "in"
    from_: str | None = None
    to: str | None = None
    queue: str | None = None
    user: str | None = None
    answering_number: str | None = None
    cause: str | None = None
    source: str | None = None
    url: str | None = None


def event_from_json(event: dict, source: str | None) -> Event:
    """The :class:`Event` of the webhook's JSON object ``event`` (validated: ``TelephonyEventSchema`` or
    :func:`crm.telephony.inbox.clean_event`; ``from`` may come as ``from`` or ``from_``). ``user`` as a
    list takes its first name (Zammad's ``user[]``). Raises :class:`TelephonyError` for a missing
    ``callId`` (``invalid_callId``) or ``at`` (``invalid_at``), a malformed ``at`` or ``user``. The time
    window is not checked here (:func:`check_window`: at the door, not when a queued event is built)."""
    call_id = event.get("callId") or event.get("call_id")
    if not call_id:
        raise TelephonyError(_l("укажите идентификатор звонка «callId»"), "invalid_callId")
    if not event.get("at"):
        raise TelephonyError(_l("укажите время события «at» (ISO 8601 со смещением)"), "invalid_at")
    at = parse_at(event["at"])
    user = event.get("user")
    if isinstance(user, list):
        user = next((str(u) for u in user if u), None)
    elif user is not None and not isinstance(user, str):
        raise TelephonyError(_l("«user» — имя пользователя оператора (строка или список строк)"), "invalid_user")
    return Event(event_id=event["event_id"], type=event["type"], call_id=call_id, at=at,
                 direction=event.get("direction") or "in", from_=event.get("from_", event.get("from")),
                 to=event.get("to"), queue=event.get("queue"), user=(user or None) and user[:80],
                 answering_number=event.get("answeringNumber"), cause=event.get("cause"), source=source,
                 url=event.get("url"))


@dataclass
class Ingested:
    """What :func:`ingest` did: ``duplicate`` (the event id was known), the call record."""

    duplicate: bool
    call: TelephonyCall | None = None
    fetch_url: str | None = None  # the recording's address to fetch (kept encrypted on the record, not in the job)
    state: str | None = None  # the record's state as committed (reading ``call.state`` would reload it)


# --- the fold -----------------------------------------------------------------------------------------

@dataclass
class Folded:
    """A call as its events describe it (see :func:`fold`); times aware UTC, durations in seconds."""

    state: str
    queued_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    abandoned_after_s: float | None = None
    operator: str | None = None
    transferred: bool = False
    cause: str | None = None
    direction: str = "in"
    queue: str | None = None
    operators: list[str] = field(default_factory=list)


def _seconds(a: datetime, b: datetime) -> float:
    return round(max(0.0, (b - a).total_seconds()), 3)


def fold(events: Iterable) -> Folded:
    """The call described by ``events`` (objects with ``event_id``, ``type``, ``at``, ``user``,
    ``cause``, ``direction``, ``queue``; ``recording`` events are ignored), whatever order they came in.

    Events are taken in time order (``newCall`` < ``answer`` < ``hangup`` at the same instant, then by
    id). The call is offered at its ``newCall`` (or its first event when that is missing); answered at
    the first ``answer``; it ends at a ``hangup`` that is the last event and not ``forwarded``. State:
    ``waiting`` (offered, not answered), ``answered`` (talking), ``ended`` (answered and hung up, or an
    outbound call hung up), ``abandoned`` (an inbound call hung up before anyone answered). ``wait_s``:
    offer to answer (or to the abandon); ``talk_s``: answer to hang-up; ``transferred``: a ``forwarded``
    hang-up or answers by more than one operator; ``operator``: who answered last. Raises ValueError
    for no events."""
    evs = sorted((e for e in events if e.type in _RANK), key=lambda e: (e.at, _RANK[e.type], e.event_id))
    if not evs:
        raise ValueError("no call events")
    offers = [e for e in evs if e.type == "newCall"]
    answers = [e for e in evs if e.type == "answer"]
    hangups = [e for e in evs if e.type == "hangup"]
    first = offers[0] if offers else evs[0]
    direction = next((e.direction for e in offers + evs if e.direction in ("in", "out")), "in")
    queue = next((e.queue for e in offers + evs if e.queue), None)
    out = Folded(state="waiting", queued_at=first.at, direction=direction, queue=queue)
    operators: list[str] = []
    for e in answers:
        if e.user and e.user not in operators:
            operators.append(e.user)
    out.operators = operators
    out.operator = next((e.user for e in reversed(answers) if e.user), None)
    out.transferred = len(operators) > 1 or any(h.cause in (FORWARDED, TRANSFER) for h in hangups)
    last = evs[-1]
    ended = last.type == "hangup" and last.cause != FORWARDED
    if answers:
        out.answered_at = answers[0].at
        out.wait_s = _seconds(out.queued_at, out.answered_at)
    if ended:
        out.ended_at = last.at
        out.cause = last.cause
        if answers:
            out.state = "ended"
            out.talk_s = _seconds(out.answered_at, out.ended_at)
        elif direction == "out":
            out.state = "ended"
        else:
            out.state = "abandoned"
            out.abandoned_after_s = out.wait_s = _seconds(out.queued_at, out.ended_at)
    elif answers:
        out.state = "answered"
    return out


# --- ingesting events ---------------------------------------------------------------------------------

def _citizen_side(ev: Event) -> str | None:
    """The citizen's number of the call: ``from`` of an inbound call, ``to`` of an outbound one."""
    raw = ev.from_ if ev.direction != "out" else ev.to
    return raw.strip()[:40] if raw and raw.strip() else None


def _line_side(ev: Event) -> str | None:
    raw = ev.to if ev.direction != "out" else ev.from_
    return raw.strip()[:80] if raw and raw.strip() else None


def normalised(raw: str | None) -> tuple[str | None, bool]:
    """``(number, valid)``: E.164 for a valid Russian number, else the text as given (``anonymous``,
    a foreign or short number), which cannot be matched or called back."""
    if not raw:
        return None, False
    try:
        return normalise_phone(raw), True
    except InvalidPhone:
        return raw, False


def _staff(username: str | None):
    """The active staff account named ``username``, or None."""
    user = users.get_by_username(username[:80]) if username else None
    return user if user is not None and user.active else None


def _operator_name(ev: Event) -> str | None:
    """The answering operator's user name: ``user`` (a list takes its first), else the user whose name
    is ``answeringNumber`` (Zammad looks a user up by it) — only a name of an active staff account.

    A ``user`` that names no such account (a PBX extension, a typo, a disabled account) is dropped
    with a warning in the application log: the call is answered all the same, by nobody the CRM
    knows, so no phantom operator appears on the queue board and no screen pop goes anywhere."""
    if ev.user:
        if _staff(ev.user) is not None:
            return ev.user[:80]
        current_app.logger.warning("telephony answer event %s: user %r is not an active staff account; "
                                   "the call is recorded as answered without an operator", ev.event_id, ev.user[:80])
    if ev.answering_number and _staff(ev.answering_number) is not None:
        return ev.answering_number[:80]
    return None


def _lock(ev: Event) -> TelephonyCall | None:
    """The record of ``ev.call_id``, locked for this transaction (``SELECT … FOR UPDATE``), or None."""
    q = select(TelephonyCall).where(TelephonyCall.pbx_call_id == ev.call_id).with_for_update()
    return db.session.execute(q).scalar_one_or_none()


def _new_call(ev: Event) -> TelephonyCall:
    """A new record of ``ev.call_id`` (added; inserted at the flush: a concurrent creation of the same
    call then fails on the unique key and :func:`ingest` starts over)."""
    call = TelephonyCall(pbx_call_id=ev.call_id, source=ev.source, direction=ev.direction or "in",
                         queued_at=ev.at, state="waiting")
    call.owner_id = call.id
    db.session.add(call)
    return call


def _insert_event(row: dict) -> bool:
    """INSERT the event ``row`` unless its ``event_id`` is known (``ON CONFLICT DO NOTHING``: one
    statement, no savepoint); True when inserted."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    result = db.session.execute(insert(TelephonyEvent).values(**row).on_conflict_do_nothing(
        index_elements=[TelephonyEvent.event_id]))
    return bool(result.rowcount)


def _find_citizen(e164: str) -> str | None:
    """The one living citizen whose phone is ``e164`` (the phone blind index, candidates decrypted and
    compared; logged by crm.citizens), or None (unknown, or a number several citizens share).
    Commits the look-up's log entries."""
    found = citizens.find_by_phone(e164, purpose="appeal_processing")
    return found[0].id if len(found) == 1 else None


#: Events at which a record whose caller was not a known citizen looks the number up again.
LATE_LOOKUP = ("hangup", "recording")


def ingest(ev: Event, *, staged=None) -> Ingested:
    """Store the event ``ev`` and rebuild its call's record; commits.

    A known ``event_id`` changes nothing (``duplicate``). The citizen's number is normalised
    (:func:`normalised`) and, the first time a record learns it, the citizen is looked up through the
    phone blind index; the number is stored encrypted, never logged. ``staged``: a validated
    recording (:func:`crm.calls.services.stage_upload`) of a ``recording`` event, stored as the call's
    recording and queued for transcription (discarded in every case). An abandoned inbound call gets a
    callback deadline; an outbound call, or an inbound one answered, clears the open callbacks of its
    number. Raises :class:`TelephonyError` for a call id of another direction's numbers (never here)."""
    for attempt in (1, 2):
        try:
            return _ingest(ev, staged=staged, last=attempt == 2)
        except _CreatedConcurrently:
            continue  # another event of the same call created its record first: once more, now it exists
    raise AssertionError("unreachable")


class _CreatedConcurrently(Exception):
    """The call's record was created by a concurrent transaction between the read and the write."""


def _ingest(ev: Event, *, staged, last: bool) -> Ingested:
    """:func:`ingest`'s one attempt. Statements: one read (is the event known, the record's caller
    state), the caller's look-up when needed, then one write transaction: the event inserted ``ON
    CONFLICT DO NOTHING``, the record locked (or created: its events are then just this one, so they
    are not read back), updated, committed."""
    discard = True
    try:
        number, valid = normalised(_citizen_side(ev))
        seen = select(TelephonyEvent.id).where(TelephonyEvent.event_id == ev.event_id).exists()
        existing = db.session.execute(select(TelephonyCall.id, TelephonyCall.citizen_id, TelephonyCall.caller_enc,
                                             TelephonyCall.caller_valid, seen.label("seen"))
                                      .where(TelephonyCall.pbx_call_id == ev.call_id)).first()
        if existing is not None and existing.seen:  # an event is stored with its record, never without
            db.session.commit()
            return Ingested(True)
        citizen_id = None
        if valid and (existing is None or (existing.caller_enc is None and existing.citizen_id is None)):
            citizen_id = _find_citizen(number)
        elif existing is not None and existing.citizen_id is None and ev.type in LATE_LOOKUP:
            # a first-time caller is registered during the call: look again at its end, so the record
            # and its recording belong to the citizen (erasure, export and retention reach them)
            known = number if valid else (db.session.get(TelephonyCall, existing.id).caller
                                          if existing.caller_enc is not None and existing.caller_valid else None)
            citizen_id = _find_citizen(known) if known else None
        db.session.commit()  # end the read before the write transaction

        row = dict(event_id=ev.event_id, source=ev.source, pbx_call_id=ev.call_id, type=ev.type,
                   direction=ev.direction, queue=(ev.queue or None) and ev.queue[:80],
                   user=_operator_name(ev) if ev.type == "answer" else (ev.user or None) and ev.user[:80],
                   cause=(ev.cause or None) and ev.cause[:40], at=ev.at)
        if not _insert_event(row):
            db.session.rollback()
            return Ingested(True)
        call = _lock(ev) if existing is not None else None
        created = call is None
        if created:
            call = _new_call(ev)
        learned = False
        if call.caller_enc is None and number:
            if call.citizen_id is None and citizen_id is not None and call.owner_id == call.id:
                call.citizen_id = citizen_id
            call.caller = number
            call.caller_valid = valid
            learned = True
        elif call.citizen_id is None and citizen_id is not None:
            # found late: the number stays under the record's own key, which now goes with the citizen
            # (a key owner of crm.telephony.personal_data: erasure shreds it)
            call.citizen_id = citizen_id
        if call.line is None:
            call.line = _line_side(ev)
        if created:
            try:
                with db.session.no_autoflush:
                    _rebuild(call, [TelephonyEvent(**row)], fresh=True)
                db.session.flush()
            except IntegrityError:
                db.session.rollback()
                if last:
                    raise
                discard = False  # the next attempt stores the staged recording
                raise _CreatedConcurrently() from None
        else:
            _rebuild(call, fresh=learned)
        fetch_url = None
        stored = None
        if ev.type == "recording" and call.recording_call_id is None:
            if staged is not None:
                stored = calls.add_staged(staged, citizen_id=call.citizen_id, operator_id=call.operator_id)
                call.recording_call_id = stored.id
            elif ev.url:
                fetch_url = ev.url
                call.recording_url = ev.url  # encrypted; the job reads it from here (never a job argument)
        state = call.state
        popped = pop.Popped(call.id, call.pbx_call_id, call.state, call.operator_id, call.answered_at)
        try:
            db.session.commit()
        except Exception:
            db.session.rollback()
            if stored is not None:
                calls.remove_stored(stored)
            raise
    finally:
        if staged is not None and discard:
            staged.discard()
    if stored is not None:
        calls.enqueue_transcription(stored)
    pop.sync(popped)  # the answering operator's screen pop (issue 16, point 2); cleared at the hang-up
    if fetch_url:
        jobs.enqueue("crm.telephony.jobs.fetch_recording", call.id,
                     timeout_s=int(current_app.config["CRM_TELEPHONY_FETCH_TIMEOUT_S"]) * 4 + 600)
    return Ingested(False, call, fetch_url, state)


def _rebuild(call: TelephonyCall, events: list | None = None, *, fresh: bool = True) -> None:
    """Recompute ``call`` from all its events (:func:`fold`; ``events``: them, when the caller knows
    them all — a record just created has only its first), then its callback (no commit). ``fresh``:
    the record is new or just learned its caller's number (the earlier callbacks of the number are
    then looked for; otherwise only when this event made the call answered)."""
    was_answered = call.answered_at is not None
    if events is None:
        events = db.session.execute(select(TelephonyEvent).where(TelephonyEvent.pbx_call_id == call.pbx_call_id)
                                    ).scalars().all()
    if not any(e.type in _RANK for e in events):  # only a recording so far: the call took place
        call.queued_at = min(e.at for e in events)
        call.state = "ended"
        return
    f = fold(events)
    call.state, call.queued_at, call.answered_at, call.ended_at = f.state, f.queued_at, f.answered_at, f.ended_at
    call.wait_s, call.talk_s, call.abandoned_after_s = f.wait_s, f.talk_s, f.abandoned_after_s
    call.transferred, call.cause, call.direction, call.queue = f.transferred, f.cause, f.direction, f.queue
    if call.operator != f.operator:
        call.operator = f.operator
        with db.session.no_autoflush:  # one UPDATE of the record at the commit, not two
            user = users.get_by_username(f.operator) if f.operator else None
        call.operator_id = user.id if user is not None else None
    _update_callbacks(call, clearing=fresh or (not was_answered and call.answered_at is not None))


def callback_deadline_s(queue: str | None) -> int:
    """Seconds from an abandon to its callback deadline: ``CRM_TELEPHONY_CALLBACK_QUEUE_S[queue]``,
    else ``CRM_TELEPHONY_CALLBACK_S`` (1 h)."""
    per_queue = current_app.config["CRM_TELEPHONY_CALLBACK_QUEUE_S"] or {}
    return int(per_queue.get(queue or "", current_app.config["CRM_TELEPHONY_CALLBACK_S"]))


def _open_callbacks_of(number: str, before: datetime, exclude: str) -> list[TelephonyCall]:
    """Open callbacks (abandoned before ``before``, within 7 days) whose caller is ``number``:
    candidates decrypted and compared, the comparison logged once (``telephony.match``)."""
    rows = db.session.execute(select(TelephonyCall).where(
        TelephonyCall.callback_due_at.is_not(None), TelephonyCall.callback_done_at.is_(None),
        TelephonyCall.caller_valid.is_(True), TelephonyCall.id != exclude,
        TelephonyCall.ended_at <= before, TelephonyCall.ended_at >= before - timedelta(days=7))).scalars().all()
    if not rows:
        return []
    found = [c for c in rows if c.caller == number]
    audit.record("telephony.match", fields=["phone"], purpose="appeal_processing",
                 detail=f"callbacks compared={len(rows)} matched={len(found)}")
    return found


def _update_callbacks(call: TelephonyCall, *, clearing: bool = True) -> None:
    """Keep the callback worklist in step with ``call`` (no commit).

    An inbound call abandoned gets ``callback_due_at`` (its end plus :func:`callback_deadline_s`)
    unless a later call to or from the number already cleared it; one answered after all (a late
    ``answer`` event) leaves the list. An outbound call to the number (the PBX's callback), or an
    inbound call from it that an operator answered, clears the number's earlier open callbacks —
    looked for when ``clearing`` (the record is new, learned its number, or was just answered: later
    events of the same call would find nothing more to clear)."""
    if call.direction == "in" and call.state == "abandoned":
        if call.callback_done_at is None and call.callback_due_at is None:
            call.callback_due_at = call.ended_at + timedelta(seconds=callback_deadline_s(call.queue))
            if call.caller_valid and _cleared_by_later_call(call):
                call.callback_done_at = call.ended_at
    elif call.direction == "in" and call.callback_done_at is None:
        call.callback_due_at = None
    if not clearing or not call.caller_valid or call.caller_enc is None:
        return
    clears = call.direction == "out" or call.answered_at is not None
    if not clears:
        return
    for open_cb in _open_callbacks_of(call.caller, call.queued_at, call.id):
        via = "pbx" if call.direction == "out" else "recall"
        open_cb.callback_done_at = call.queued_at
        open_cb.callback_via = via
        db.session.add(CallbackAttempt(telephony_call_id=open_cb.id, via=via, at=call.queued_at,
                                       outcome="reached" if call.answered_at is not None else "no_answer"))


def _cleared_by_later_call(call: TelephonyCall) -> bool:
    """True when an outbound call to ``call``'s number, or an answered inbound one from it, started
    after ``call`` ended (its events came first): such a call already called back."""
    later = db.session.execute(select(TelephonyCall).where(
        TelephonyCall.id != call.id, TelephonyCall.caller_valid.is_(True), TelephonyCall.queued_at >= call.ended_at,
        TelephonyCall.queued_at <= call.ended_at + timedelta(days=7))).scalars().all()
    later = [c for c in later if c.direction == "out" or c.answered_at is not None]
    if not later:
        return False
    hit = next((c for c in later if c.caller == call.caller), None)
    audit.record("telephony.match", fields=["phone"], purpose="appeal_processing",
                 detail=f"later calls compared={len(later)} matched={int(hit is not None)}")
    if hit is not None:
        call.callback_via = "pbx" if hit.direction == "out" else "recall"
        db.session.add(CallbackAttempt(telephony_call_id=call.id, via=call.callback_via, at=hit.queued_at,
                                       outcome="reached" if hit.answered_at is not None else "no_answer"))
        return True
    return False


# --- reading ------------------------------------------------------------------------------------------

def get(pbx_call_id: str) -> TelephonyCall | None:
    return db.session.execute(select(TelephonyCall).where(TelephonyCall.pbx_call_id == pbx_call_id)).scalar_one_or_none()


def live_wait_s(call: TelephonyCall, now: datetime | None = None) -> float | None:
    """Seconds the call has waited: the folded ``wait_s``, or for a call still waiting, until now."""
    if call.state == "waiting":
        return _seconds(call.queued_at, now or utcnow())
    return call.wait_s


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def as_dict(call: TelephonyCall, now: datetime | None = None) -> dict:
    """The call record for the API: no number, the citizen as an id."""
    return {"callId": call.pbx_call_id, "state": call.state, "wait_s": live_wait_s(call, now),
            "talk_s": call.talk_s, "operator": call.operator, "direction": call.direction, "queue": call.queue,
            "queued_at": _iso(call.queued_at), "answered_at": _iso(call.answered_at), "ended_at": _iso(call.ended_at),
            "abandoned_after_s": call.abandoned_after_s, "transferred": bool(call.transferred), "cause": call.cause,
            "citizen_id": call.citizen_id, "recording_call_id": call.recording_call_id,
            "callback_due_at": _iso(call.callback_due_at), "callback_done_at": _iso(call.callback_done_at),
            "callback_via": call.callback_via, "appeal_ids": [a.id for a in pop.linked_appeals(call.id)]}


# --- the caller log -------------------------------------------------------------------------------------

#: Filters of :func:`call_log` (the API's query, the page's form).
LOG_FILTERS = ("date_from", "date_to", "state", "queue", "operator", "direction")


@dataclass
class LogPage:
    """One page of :func:`call_log`: ``items`` (call records, newest first), ``next_cursor`` (None on the
    last page), ``total`` (every record the filters match), ``offset`` (records before this page)."""

    items: list
    next_cursor: str | None
    total: int
    offset: int


def _encode_log_cursor(queued_at: datetime, call_id: str, offset: int) -> str:
    raw = json.dumps([queued_at.astimezone(timezone.utc).isoformat(), call_id, offset], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_log_cursor(cursor: str) -> tuple[datetime, str, int]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or len(parts) != 3:
            raise ValueError
        value, call_id, offset = parts
        when = datetime.fromisoformat(value)
        if when.tzinfo is None or not isinstance(call_id, str) or not isinstance(offset, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise TelephonyError(_l("неверный курсор: начните список сначала"), "invalid_cursor") from None
    return when, call_id, max(offset, 0)


def log_filters(args) -> dict:
    """The caller log's filters of ``args`` (the API's query or the page's form): days parsed
    (:func:`crm.timeutil.parse_day`, raising :class:`crm.errors.InvalidInput`), empty values dropped."""
    out = {}
    for name in LOG_FILTERS:
        value = (args.get(name) or "").strip()
        if value:
            out[name] = parse_day(value, name) if name in ("date_from", "date_to") else value
    return out


def call_log(*, date_from: date | None = None, date_to: date | None = None, state: str | None = None,
             queue: str | None = None, operator: str | None = None, direction: str | None = None,
             limit: int = 50, cursor: str | None = None) -> LogPage:
    """The caller log: call records newest first (offered time, then id), keyset-paged as the appeal
    list is (follow ``next_cursor``). ``date_from``/``date_to``: days in ``CRM_TIMEZONE``, both
    included; ``operator``: the user name of who answered last. Nothing is decrypted. Raises
    :class:`TelephonyError` for an unknown state or direction, a bad cursor."""
    if state is not None and state not in STATES:
        raise TelephonyError(_l("неизвестное состояние звонка «%(value)s»", value=str(state)[:40]), "invalid_state")
    if direction is not None and direction not in ("in", "out"):
        raise TelephonyError(_l("направление звонка — in или out"), "invalid_direction")
    conds = []
    if date_from is not None:
        conds.append(TelephonyCall.queued_at >= day_start(date_from))
    if date_to is not None:
        conds.append(TelephonyCall.queued_at < day_start(date_to + timedelta(days=1)))
    for column, value in ((TelephonyCall.state, state), (TelephonyCall.queue, queue),
                          (TelephonyCall.operator, operator), (TelephonyCall.direction, direction)):
        if value is not None:
            conds.append(column == value)
    total = db.session.execute(select(func.count()).select_from(TelephonyCall).where(*conds)).scalar_one()
    offset = 0
    q = select(TelephonyCall).where(*conds)
    if cursor:
        when, last_id, offset = _decode_log_cursor(cursor)
        q = q.where(or_(TelephonyCall.queued_at < when,
                        and_(TelephonyCall.queued_at == when, TelephonyCall.id < last_id)))
    rows = list(db.session.execute(q.order_by(TelephonyCall.queued_at.desc(), TelephonyCall.id.desc())
                                   .limit(limit + 1)).scalars())
    items, more = rows[:limit], len(rows) > limit
    next_cursor = _encode_log_cursor(items[-1].queued_at, items[-1].id, offset + len(items)) if more else None
    return LogPage(items, next_cursor, total, offset)


# --- recordings fetched from the PBX ------------------------------------------------------------------

def url_allowed(url: str) -> bool:
    """True when ``url`` is https (or http) and starts with a prefix of ``CRM_TELEPHONY_RECORDING_URLS``
    that ends in ``/`` or is followed by ``/`` in ``url`` (``https://pbx/rec`` does not allow
    ``https://pbx/record-evil``); no credentials, no fragments."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("https", "http") or parts.username or parts.password or "@" in parts.netloc:
        return False
    for prefix in current_app.config["CRM_TELEPHONY_RECORDING_URLS"] or ():
        prefix = str(prefix)
        base = prefix if prefix.endswith("/") else prefix + "/"
        if url.startswith(base):
            return True
    return False


def attach_fetched(telephony_call_id: str, staged) -> str | None:
    """Store the fetched recording ``staged`` as the call's recording and queue its transcription;
    returns the calls' id, or None when the call has one already (``staged`` discarded in every case)."""
    stored = None
    try:
        call = db.session.execute(select(TelephonyCall).where(TelephonyCall.id == telephony_call_id)
                                  .with_for_update()).scalar_one_or_none()
        if call is None or call.recording_call_id is not None:
            db.session.rollback()
            return None
        stored = calls.add_staged(staged, citizen_id=call.citizen_id, operator_id=call.operator_id)
        call.recording_call_id = stored.id
        call.recording_url_enc = None  # fetched: the address is no longer needed
        db.session.commit()
    except Exception:
        db.session.rollback()
        if stored is not None:
            calls.remove_stored(stored)
        raise
    finally:
        staged.discard()
    calls.enqueue_transcription(stored)
    return stored.id


def recording_url_of(telephony_call_id: str) -> str | None:
    """Where the recording of call record ``telephony_call_id`` waits to be fetched (decrypted), or None."""
    call = db.session.get(TelephonyCall, telephony_call_id)
    return call.recording_url if call is not None and call.recording_url_enc is not None else None


def forget_recording_url(telephony_call_id: str) -> None:
    """Empty the record's recording address (a fetch refused, or the record has its recording). Commits."""
    db.session.execute(update(TelephonyCall).where(TelephonyCall.id == telephony_call_id)
                       .values(recording_url_enc=None))
    db.session.commit()


# --- callbacks ----------------------------------------------------------------------------------------

def open_callbacks(limit: int = 200) -> list[TelephonyCall]:
    """Abandoned inbound calls not yet called back, earliest deadline first."""
    return list(db.session.execute(select(TelephonyCall).where(
        TelephonyCall.callback_due_at.is_not(None), TelephonyCall.callback_done_at.is_(None))
        .order_by(TelephonyCall.callback_due_at, TelephonyCall.id).limit(limit)).scalars())


def callback_dict(call: TelephonyCall, now: datetime | None = None, *, masked: str | None = None) -> dict:
    """A worklist item: ids, times, the deadline and whether it passed; ``caller`` only as ``masked``."""
    now = now or utcnow()
    attempts = db.session.execute(select(CallbackAttempt).where(CallbackAttempt.telephony_call_id == call.id)
                                  .order_by(CallbackAttempt.at)).scalars().all()
    return {"callId": call.pbx_call_id, "id": call.id, "queue": call.queue, "abandoned_at": _iso(call.ended_at),
            "waited_s": call.abandoned_after_s, "due_at": _iso(call.callback_due_at),
            "overdue": call.callback_due_at is not None and call.callback_due_at < now,
            "queued_at": _iso(call.queued_at), "source": call.source,
            "callable": bool(call.caller_valid), "citizen_id": call.citizen_id, "attempts": len(attempts),
            "last_outcome": attempts[-1].outcome if attempts else None, **({"caller": masked} if masked else {})}


def masked_caller(call: TelephonyCall) -> str:
    """The caller's number masked (``+7 912 ***-**-89``) as operators see numbers before revealing."""
    return mask_phone(call.caller) if call.caller_valid and call.caller_enc is not None else "—"


def reveal_caller(call: TelephonyCall, user) -> str:
    """The caller's number in full, to call them back, as the product shows phones (``+7 916 555-01-01``;
    a number that is not a valid Russian one as the PBX gave it); logged (``telephony.reveal``). Commits."""
    number = call.caller if call.caller_enc is not None else ""
    if number and call.caller_valid:
        number = format_phone(number)
    audit.record("telephony.reveal", citizen_id=call.citizen_id, fields=["phone"], purpose="appeal_processing",
                 detail=f"callback {call.id}")
    db.session.commit()
    return number


def log_attempt(call: TelephonyCall, outcome: str, *, user) -> CallbackAttempt:
    """An operator's callback attempt (``outcome`` of :data:`ATTEMPT_OUTCOMES`); ``reached`` (and
    ``wrong_number``: nobody to call back) clears the callback. Logged (``callback.attempt``); commits.
    Raises :class:`TelephonyError` for an unknown outcome or a call not on the worklist."""
    if outcome not in ATTEMPT_OUTCOMES:
        raise TelephonyError(_l("неизвестный результат звонка «%(outcome)s»", outcome=str(outcome)[:40]),
                             "invalid_outcome")
    if call.callback_due_at is None or call.callback_done_at is not None:
        raise TelephonyError(_l("этот звонок не ждёт обратного звонка"), "not_on_worklist", 409)
    now = utcnow()
    attempt = CallbackAttempt(telephony_call_id=call.id, user_id=getattr(user, "id", None), via="page",
                              outcome=outcome, at=now)
    db.session.add(attempt)
    if outcome in ("reached", "wrong_number"):
        call.callback_done_at = now
        call.callback_via = "page"
    audit.record("callback.attempt", citizen_id=call.citizen_id, purpose="appeal_processing",
                 detail=f"callback {call.id} outcome={outcome}")
    db.session.commit()
    return attempt


def by_id(telephony_call_id: str) -> TelephonyCall | None:
    return db.session.get(TelephonyCall, telephony_call_id)


# --- the queue board ----------------------------------------------------------------------------------

def queue_board(now: datetime | None = None, *, notify: bool = True) -> dict:
    """Today's figures of the inbound queue (the day in ``CRM_TIMEZONE``) and the calls waiting now.

    * ``waiting``, ``longest_wait_s``: inbound calls offered and not yet answered or hung up (those
      older than ``CRM_TELEPHONY_STALE_WAIT_S`` lost their hang-up and are left out);
    * ``offered``: answered plus abandoned, less the short abandons (under
      ``CRM_TELEPHONY_SHORT_ABANDON_S``, 5 s: misdials, counted apart as ``short_abandons``);
    * ``service_level``: calls answered within ``CRM_TELEPHONY_SL_S`` (20 s) over ``offered``
      (target ``CRM_TELEPHONY_SL_TARGET``, 80 %), ``asa_s``: the mean wait of the answered calls,
      ``abandon_rate``: abandons (short ones excluded) over ``offered`` — None while nothing was offered;
    * ``answered_over_norm``: calls answered after more than ``CRM_TELEPHONY_EMERGENCY_ANSWER_S`` (300 s,
      ПП РФ № 416: an emergency call answered within 5 minutes), in the queues of
      ``CRM_TELEPHONY_EMERGENCY_QUEUES`` (empty: every queue, as any call may be an emergency);
    * ``agents``: each operator's user name, full name (``full_name``; the user name when the account
      has none), state (``talking``, ``available``, ``paused``, ``logged_off``), calls answered today
      and talk time;
    * ``surge``: the queue surge alert (:func:`crm.telephony.surge.detect`; ``notify`` lets a new surge
      notify the supervisors), or None."""
    cfg = current_app.config
    now = now or utcnow()
    start, end = day_start(local_date(now)), day_end(local_date(now))
    today = db.session.execute(select(TelephonyCall).where(
        TelephonyCall.direction == "in", TelephonyCall.queued_at >= start, TelephonyCall.queued_at < end)).scalars().all()
    stale = now - timedelta(seconds=int(cfg["CRM_TELEPHONY_STALE_WAIT_S"]))
    waiting = db.session.execute(select(TelephonyCall).where(
        TelephonyCall.direction == "in", TelephonyCall.state == "waiting", TelephonyCall.queued_at > stale,
        TelephonyCall.queued_at <= now)).scalars().all()
    answered = [c for c in today if c.answered_at is not None]
    abandoned = [c for c in today if c.state == "abandoned"]
    short_s = float(cfg["CRM_TELEPHONY_SHORT_ABANDON_S"])
    short = [c for c in abandoned if (c.abandoned_after_s or 0) < short_s]
    offered = len(answered) + len(abandoned) - len(short)
    sl_s = float(cfg["CRM_TELEPHONY_SL_S"])
    norm_s = float(cfg["CRM_TELEPHONY_EMERGENCY_ANSWER_S"])
    within = [c for c in answered if (c.wait_s or 0) <= sl_s]
    emergency_queues = set(cfg["CRM_TELEPHONY_EMERGENCY_QUEUES"] or ())
    over_norm = [c for c in answered if (c.wait_s or 0) > norm_s
                 and (not emergency_queues or c.queue in emergency_queues)]
    talking = {c.operator for c in db.session.execute(select(TelephonyCall).where(
        TelephonyCall.state == "answered", TelephonyCall.answered_at > stale)).scalars() if c.operator}
    pauses = {a.username: a.state for a in db.session.execute(select(AgentState)).scalars()}
    full_names = {u.username: u.full_name for u in users.active_with_roles("operator")}
    names = sorted(set(full_names) | {c.operator for c in answered if c.operator} | set(pauses) | talking)
    agents = []
    for name in names:
        mine = [c for c in answered if c.operator == name]
        state = "talking" if name in talking else pauses.get(name, "available")
        if name not in full_names:  # not an active operator now (another role, disabled): as the account says
            account = users.get_by_username(name)
            full_names[name] = account.full_name if account is not None else ""
        agents.append({"user": name, "full_name": full_names[name] or name, "state": state, "answered": len(mine),
                       "talk_s": round(sum(c.talk_s or 0 for c in mine), 3)})
    return {
        "date": local_date(now).isoformat(),
        "waiting": len(waiting),
        "longest_wait_s": max((_seconds(c.queued_at, now) for c in waiting), default=0.0),
        "offered": offered,
        "answered": len(answered),
        "abandoned": len(abandoned) - len(short),
        "short_abandons": len(short),
        "service_level": round(len(within) / offered, 4) if offered else None,
        "service_level_s": int(sl_s),
        "service_level_target": float(cfg["CRM_TELEPHONY_SL_TARGET"]),
        "asa_s": round(statistics.fmean(c.wait_s or 0 for c in answered), 3) if answered else None,
        "abandon_rate": round((len(abandoned) - len(short)) / offered, 4) if offered else None,
        "answered_over_norm": len(over_norm),
        "answered_over_norm_calls": [c.pbx_call_id for c in over_norm],
        "emergency_norm_s": int(norm_s),
        "callbacks_open": len(open_callbacks()),
        "agents": agents,
        "surge": surge.detect(now, waiting=len(waiting), notify=notify),
    }


def set_agent_state(username: str, state: str, at: datetime) -> None:
    """Record ``username``'s pause state (``available``, ``paused``, ``logged_off``) as of ``at``; an
    older report than the one kept changes nothing (no commit)."""
    row = db.session.get(AgentState, username[:80])
    if row is None:
        db.session.add(AgentState(username=username[:80], state=state, since=at))
    elif row.since <= at:
        row.state, row.since = state, at


def export_for_citizen(citizen_id: str) -> list[dict]:
    """The citizen's calls as the PBX reported them, for an access export (152-ФЗ ст. 14), oldest
    first: ``[{"direction", "queue", "queued_at", "answered_at", "ended_at" (ISO 8601 UTC or None),
    "state", "wait_s", "talk_s" (seconds), "number" (the citizen's own, as the PBX gave it),
    "recording_call_id", "callback_due_at", "callback_done_at"}]``. The operator is not named
    (staff are shown by role elsewhere in the export). Decrypting the numbers is logged by the export's
    ``dsr.export`` entry."""
    rows = db.session.execute(select(TelephonyCall).where(TelephonyCall.citizen_id == citizen_id)
                              .order_by(TelephonyCall.queued_at)).scalars().all()
    return [{"direction": c.direction, "queue": c.queue, "queued_at": _iso(c.queued_at),
             "answered_at": _iso(c.answered_at), "ended_at": _iso(c.ended_at), "state": c.state,
             "wait_s": c.wait_s, "talk_s": c.talk_s,
             "number": c.caller if c.caller_enc is not None else None,
             "recording_call_id": c.recording_call_id,
             "callback_due_at": _iso(c.callback_due_at), "callback_done_at": _iso(c.callback_done_at)}
            for c in rows]
