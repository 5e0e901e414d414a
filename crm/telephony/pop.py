"""The screen pop (issue 16, point 2): when an operator answers, their open browser shows the caller.

Delivery. The PBX's ``answer`` event names the operator (``user``, an active staff account: see
:func:`crm.telephony.services._operator_name`). After the event is committed, :func:`sync` stores a
*pending pop* for that operator alone in Redis — the key ``<prefix>crm:telephony:pop:<user id>``
holding the call record's id, with a TTL of ``CRM_TELEPHONY_POP_TTL_S`` (a lost hang-up lets it
expire) — and clears the pop of anyone who answered the call before (a transfer) or of the operator
once the call is over. Nothing personal is in Redis: only ids. Every web worker reads the same key,
so any number of gunicorn workers and hosts serve it; no state lives in a process.

The operator's pages poll :func:`pending` every ``CRM_TELEPHONY_POP_POLL_S`` seconds (a short
JSON poll: it holds no worker, which a server-sent event stream on gunicorn's sync workers would, one
per open tab). :func:`pending` checks the key against the database — the call is still ``answered``
and this user is its operator — so a stale or misdirected key never shows anything, and a user can
only ever see their own pop.

The card (:func:`card`) is read when the page shows it: the citizen found through the phone blind
index (the record's citizen, or a fresh look-up when the caller was registered after the phone
rang), their open appeals, the active incidents at their house (crm.incidents), and their consents.
Showing it is a read of personal data: each display is logged (``citizen.view`` by crm.citizens and
``telephony.pop``, with the call record's id).

Appeals registered by the operator while the call is ``answered`` are linked to the call record
(:func:`link_registered_appeal`, subscribed to ``appeal.registered``).

An intake opened from the pop carries a **call reference** (:func:`intake_reference`): the card's «Новое
обращение» link adds it, the operator page keeps it through the phone search and the new-citizen form, and
the appeal form sends it back as a hidden field (``call_ref``). It is the call record's id and the
operator's user id, signed with the application's ``SECRET_KEY`` (itsdangerous, with the moment it was
made). So an appeal submitted after the hang-up — the operator finishing the form during the wrap-up, or
already on the next call — is linked to the call the form was opened from, if :func:`referenced_call`
accepts the reference: its signature holds (nothing forged or altered), it is this operator's (a
reference copied from a colleague's form links nothing), the call exists, this operator answered it
(its operator, or one who had it before a transfer), the reference was made while the call was being
answered, and the call is still answered or ended no more than ``CRM_TELEPHONY_WRAPUP_S`` (30 min) before
the appeal was registered. Why 30 minutes: after-call work on a hotline takes seconds to a few minutes;
half an hour leaves room for a long write-up interrupted by the next calls, yet a tab left open for
hours and then used for another caller's appeal no longer claims the old call. A form that carries a
reference is linked by it alone: a refused one links nothing (the operator's *current* call is not
taken instead — the form was about another one). Linking twice is impossible (a unique key; a re-sent
form is a replay of its first submission and registers nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import redis
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm import jobs
from crm.appeals import services as appeals
from crm.appeals.services import ACTIVE_STATUSES
from crm.citizens import services as citizens
from crm.citizens.phones import mask_phone
from crm.consent import services as consent
from crm.db import db, utcnow
from crm.incidents import services as incidents
from crm.security import audit
from crm.telephony.models import TelephonyCall, TelephonyCallAppeal, TelephonyEvent
from crm.users import services as users

#: Deletes KEYS[1] only while it still holds ARGV[1] (the call id): clearing one call's pop never
#: removes a newer call's pop of the same operator.
_CLEAR_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
#: Channels of an appeal that the call it was registered during is evidence of.
LINKED_CHANNELS = ("phone",)


def _key(user_id: int) -> str:
    return f"{current_app.config['CRM_QUEUE_PREFIX']}crm:telephony:pop:{int(user_id)}"


def _ttl_s() -> int:
    return int(current_app.config["CRM_TELEPHONY_POP_TTL_S"])


@dataclass(frozen=True)
class Popped:
    """What :func:`sync` needs of a call record, read before its commit (the record is not reloaded)."""

    id: str
    pbx_call_id: str
    state: str
    operator_id: int | None
    answered_at: object


def _answerers(call) -> set[int]:
    """Ids of the staff accounts that answered ``call`` (its ``answer`` events' users)."""
    names = {u for u in db.session.execute(select(TelephonyEvent.user).where(
        TelephonyEvent.pbx_call_id == call.pbx_call_id, TelephonyEvent.type == "answer",
        TelephonyEvent.user.is_not(None))).scalars()}
    found = (users.get_by_username(n) for n in names)
    return {u.id for u in found if u is not None}


def _live(call, now=None) -> bool:
    """True while ``call`` is answered and its answer is younger than the pop's TTL."""
    now = now or utcnow()
    return (call.state == "answered" and call.operator_id is not None and call.answered_at is not None
            and call.answered_at > now - timedelta(seconds=_ttl_s()))


def sync(call: Popped) -> None:
    """Bring the pending pops in step with ``call`` after one of its events was committed: its
    operator's pop while it is answered, no pop (of this call) for anyone else who answered it, nor
    for the operator once it is over. A Redis failure is logged and changes nothing else: the call
    record stands, the page finds no pop. A call nobody answered has no pop to give or clear: nothing
    is asked of the database or Redis (most events of a busy webhook)."""
    if call.answered_at is None:
        return
    try:
        conn = jobs.redis_connection()
        current = call.operator_id if _live(call) else None
        if current is not None:
            conn.set(_key(current), call.id, ex=_ttl_s())
        for user_id in _answerers(call) - {current}:
            conn.eval(_CLEAR_IF, 1, _key(user_id), call.id)
    except redis.RedisError as exc:
        current_app.logger.warning("screen pop of call record %s not updated: %s", call.id, exc)


def pending(user) -> TelephonyCall | None:
    """The call record whose pop waits for ``user`` (a signed-in staff account), or None.

    The Redis key is only a pointer: the record must still be ``answered`` by ``user`` (checked in
    the database), else the key is cleared and None returned. Nothing is decrypted or logged."""
    try:
        conn = jobs.redis_connection()
        raw = conn.get(_key(user.id))
    except redis.RedisError as exc:
        current_app.logger.warning("screen pop not readable: %s", exc)
        return None
    if not raw:
        return None
    call_id = raw.decode() if isinstance(raw, bytes) else str(raw)
    call = db.session.get(TelephonyCall, call_id)
    if call is None or not _live(call) or call.operator_id != user.id:
        try:
            conn.eval(_CLEAR_IF, 1, _key(user.id), call_id)
        except redis.RedisError:
            pass
        return None
    return call


@dataclass
class Person:
    """One citizen on the card: the masked card of crm.citizens, open appeals, incidents, consents."""

    citizen: dict
    appeals: list = field(default_factory=list)
    incidents: list = field(default_factory=list)
    consents: list = field(default_factory=list)


@dataclass
class Card:
    """What the pop shows: the call record, the caller's number masked, the citizens (none: a new
    caller; several: a number several citizens share) and the appeals already linked to the call."""

    call: TelephonyCall
    number_masked: str
    people: list[Person]
    linked: list = field(default_factory=list)

    @property
    def new_caller(self) -> bool:
        return not self.people

    @property
    def citizen_id(self) -> str | None:
        """The one citizen the intake opens for, or None (new caller, or several: the search page)."""
        return self.people[0].citizen["id"] if len(self.people) == 1 else None


def _house_incidents(citizen, own: list) -> list:
    """The incidents active at the citizen's house: the building of their newest appeal that has one,
    else their address (decrypted for the match and logged by crm.citizens)."""
    building_id = next((a.building_id for a in own if a.building_id), None)
    if building_id is not None:
        return incidents.active_for(building_id=building_id)
    address = citizens.address_for_matching(citizen, purpose="appeal_processing")
    return incidents.active_for(address=address) if address else []


def _latest_consents(citizen_id: str) -> list:
    """The latest consent event of each purpose (given, refused, withdrawn or expired), by purpose."""
    latest = {}
    for event in consent.for_citizen(citizen_id):  # oldest first: the last one per purpose wins
        latest[event.purpose_code] = event
    return [latest[code] for code in sorted(latest)]


def card(call: TelephonyCall, user) -> Card:
    """The pop's card of ``call`` for ``user`` (who must be its operator: see :func:`pending`).

    The citizen is the record's own, else looked up again through the phone blind index (a caller
    registered after the phone rang; several citizens sharing the number are all shown). Each
    citizen shown is logged (``citizen.view``, masked phone) and the display itself too
    (``telephony.pop``, detail ``call <record id>``). Commits."""
    people: list = []
    if call.citizen_id is not None:
        found = [c for c in [citizens.get(call.citizen_id)] if c is not None]
    elif call.caller_valid and call.caller_enc is not None:
        found = citizens.find_by_phone(call.caller, purpose="appeal_processing")
    else:
        found = []
    for citizen in found[:5]:
        shown = citizens.view(citizen, purpose="appeal_processing", commit=False)
        person = Person(shown)
        if not shown.get("erased"):
            own = appeals.for_citizen(citizen.id)  # newest first
            person.appeals = [a for a in own if a.status in ACTIVE_STATUSES]
            person.incidents = _house_incidents(citizen, own)
            person.consents = _latest_consents(citizen.id)
        people.append(person)
        audit.record("telephony.pop", citizen_id=citizen.id, fields=["full_name", "phone"],
                     purpose="appeal_processing", detail=f"call {call.id}")
    if not people:
        audit.record("telephony.pop", fields=["phone"], purpose="appeal_processing", outcome="not_found",
                     detail=f"call {call.id}")
    masked = mask_phone(call.caller) if call.caller_valid and call.caller_enc is not None else (
        call.caller if call.caller_enc is not None else "—")
    linked = linked_appeals(call.id)
    db.session.commit()
    return Card(call, masked, people, linked)


def caller_for_intake(call_id: str, user) -> str | None:
    """The caller's number (E.164) to prefill the intake opened from the pop, or None: only for the
    operator who answered the call, within the pop's TTL, and for a valid number. Logged
    (``telephony.reveal``, detail ``intake <record id>``); commits."""
    call = db.session.get(TelephonyCall, str(call_id or "")[:36])
    if call is None or call.operator_id is None or call.operator_id != getattr(user, "id", None):
        return None
    if call.answered_at is None or call.answered_at <= utcnow() - timedelta(seconds=_ttl_s()):
        return None
    if not call.caller_valid or call.caller_enc is None:
        return None
    audit.record("telephony.reveal", citizen_id=call.citizen_id, fields=["phone"], purpose="appeal_processing",
                 detail=f"intake {call.id}")
    db.session.commit()
    return call.caller


def current_call(operator_id: int, at) -> TelephonyCall | None:
    """The call ``operator_id`` is on at ``at``: their latest call record still ``answered``, answered
    before ``at`` (give or take ``CRM_TELEPHONY_WINDOW_S``: the PBX's clock is not ours) and within the
    pop's TTL (an older one lost its hang-up), or None."""
    skew = timedelta(seconds=float(current_app.config["CRM_TELEPHONY_WINDOW_S"]))
    return db.session.execute(select(TelephonyCall).where(
        TelephonyCall.operator_id == operator_id, TelephonyCall.state == "answered",
        TelephonyCall.answered_at <= at + skew, TelephonyCall.answered_at > at - timedelta(seconds=_ttl_s()))
        .order_by(TelephonyCall.answered_at.desc(), TelephonyCall.id).limit(1)).scalar_one_or_none()


def _references() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="crm.telephony.pop intake call")


def intake_reference(call: TelephonyCall, user) -> str:
    """The call reference an intake opened from ``call``'s pop carries (see the module): the record's id
    and ``user``'s id, signed and time-stamped; opaque, URL-safe, about 100 characters."""
    return _references().dumps({"c": call.id, "u": int(user.id)})


def referenced_call(ref: str | None, operator_id: int | None, at) -> TelephonyCall | None:
    """The call record ``ref`` (:func:`intake_reference`) names when an appeal of ``operator_id``
    registered at ``at`` (aware UTC) may be linked to it, else None — the checks are the module's: the
    signature, the operator, the call answered by them, the reference made while it was being answered,
    and the call still answered or ended at most ``CRM_TELEPHONY_WRAPUP_S`` before ``at``."""
    if not ref or operator_id is None:
        return None
    cfg = current_app.config
    wrapup = timedelta(seconds=float(cfg["CRM_TELEPHONY_WRAPUP_S"]))
    skew = timedelta(seconds=float(cfg["CRM_TELEPHONY_WINDOW_S"]))
    try:
        data, made = _references().loads(str(ref)[:400], max_age=_ttl_s() + int(wrapup.total_seconds()),
                                         return_timestamp=True)
        call_id, user_id = str(data["c"]), int(data["u"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if user_id != operator_id:
        return None
    call = db.session.get(TelephonyCall, call_id[:36])
    if call is None or call.answered_at is None:
        return None
    if operator_id != call.operator_id and operator_id not in _answerers(call):
        return None
    if made < call.answered_at - skew or (call.ended_at is not None and made > call.ended_at + skew):
        return None  # not made while the call was being answered
    if call.state == "answered":
        return call if _live(call, at) else None
    if call.state == "ended" and call.ended_at is not None:
        return call if call.ended_at >= at - wrapup else None
    return None


def link_registered_appeal(appeal_id: str, call_ref: str | None = None, **_: object) -> None:
    """``appeal.registered``: link an appeal taken by phone to its call. ``call_ref``: the reference of
    the intake opened from a screen pop (:func:`intake_reference`); with one, the call it names, if
    :func:`referenced_call` accepts it, else nothing. Without one, the call the operator is on (see
    :func:`current_call`); an appeal registered after the hang-up, by someone not on a call, or through
    another channel is left alone. Idempotent; commits."""
    appeal = appeals.get(appeal_id)
    if appeal is None or appeal.operator_id is None or appeal.channel not in LINKED_CHANNELS:
        return
    if call_ref:
        call = referenced_call(call_ref, appeal.operator_id, appeal.created_at)
        if call is None:
            current_app.logger.warning("appeal %s: its call reference was refused (forged, another operator's, "
                                       "or the call is over for more than the wrap-up); not linked", appeal.id)
    else:
        call = current_call(appeal.operator_id, appeal.created_at)
    if call is None:
        return
    try:
        with db.session.begin_nested():
            db.session.add(TelephonyCallAppeal(telephony_call_id=call.id, appeal_id=appeal.id,
                                               linked_at=utcnow()))
    except IntegrityError:
        pass  # linked already
    db.session.commit()


def linked_appeals(telephony_call_id: str) -> list:
    """The appeals linked to the call record, oldest link first (appeal rows)."""
    ids = db.session.execute(select(TelephonyCallAppeal.appeal_id).where(
        TelephonyCallAppeal.telephony_call_id == telephony_call_id)
        .order_by(TelephonyCallAppeal.linked_at, TelephonyCallAppeal.id)).scalars().all()
    return [a for a in (appeals.get(i) for i in ids) if a is not None]
