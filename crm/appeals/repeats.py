"""Repeats before saving (issue 14, point 6) and the two rates built on repeats.

While the operator fills in a new appeal, :func:`candidates` lists the appeals on the same problem
that are still open or recent (``CRM_REPEAT_WINDOW_DAYS``, 30 by default; design.md, "repeat
appeal"): the same topic and the same house (the buildings register's id, or the citizen's own
``building`` blind index), or the same citizen. The operator then links the new appeal to one of
them as its repeat (``repeat_of``), or attaches the call to it (:func:`attach_call`) instead of
opening another appeal. Nothing is decrypted: a candidate is its number, status, dates and how it
matched; a look-up is logged as ``appeal.search`` (``detail`` ``repeat_candidates``), naming the
citizen whose new appeal it serves.

:func:`repeat_rate` and :func:`first_contact_resolution` are the KPI's building blocks over a period.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO, Mapping

from flask import current_app
from sqlalchemy import and_, exists, func, literal, or_, select

from crm.appeals.catalog import TOPICS
from crm.appeals.models import Appeal
from crm.appeals.services import (ACTIVE_STATUSES, NOT_A_PREDECESSOR, AppealError, _record_consents, check_predecessor,
                                  get, window_start)
from crm.buildings import services as buildings
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.db import atomic, db, utcnow
from crm.errors import NotFound
from crm.i18n import lazy_gettext as _l
from crm.security import audit, blind_index
from crm.security.permissions import require_role

#: Who takes appeals in (and so asks for repeat candidates and attaches calls).
INTAKE_ROLES = ("operator", "admin")


@dataclass
class Candidate:
    """One appeal the new one may repeat: ``appeal`` (nothing decrypted), ``same_citizen`` and
    ``same_building`` (how it matched), ``open`` (still being worked on)."""

    appeal: Appeal
    same_citizen: bool
    same_building: bool
    open: bool

    def as_dict(self) -> dict:
        a = self.appeal
        return {"id": a.id, "number": a.number, "status": a.status, "topic": a.topic, "category": a.category,
                "created_at": a.created_at.isoformat(), "open": self.open, "same_citizen": self.same_citizen,
                "same_building": self.same_building, "building_id": a.building_id}


def resolve_building(building_id: int | None, address: str | None) -> int | None:
    """The register's house of a picked ``building_id`` (an unknown id: None), else of a typed
    ``address`` in any usual spelling (:func:`crm.buildings.services.find`: ул./улица, д./дом, case,
    ё/е … do not matter), else None."""
    if building_id is not None:
        b = buildings.get(building_id)
        return b.id if b is not None else None
    if address and address.strip():
        b = buildings.find(address)
        return b.id if b is not None else None
    return None


def candidates(user, *, citizen_id: str, topic: str, building_id: int | None = None, address: str | None = None,
               now: datetime | None = None, limit: int = 10) -> list[Candidate]:
    """The open or recent appeals a new appeal of ``citizen_id`` on ``topic`` may repeat, open ones
    first, then newest first; at most ``limit``.

    Matches: the same ``topic`` and either the same citizen, or the same house — the register's
    ``building_id`` (or the house of the typed ``address``), or the citizen's own ``building`` blind
    index (appeals made from the same written address). *Open*: in :data:`ACTIVE_STATUSES`; *recent*:
    created within the repeat window (:func:`window_start`), whatever its status; duplicates and
    rejected appeals are never offered. ``user``: an operator or admin (raises
    :class:`crm.security.permissions.PermissionDenied`). Raises :class:`AppealError` for an unknown
    topic, :class:`crm.errors.NotFound` for an unknown citizen. Logged and committed."""
    require_role(user, *INTAKE_ROLES)
    if topic not in TOPICS:
        raise AppealError(_l("неизвестная тематика «%(topic)s»", topic=str(topic)[:40]), "topic")
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise NotFound(_l("заявитель не найден"), code="citizen_not_found", field="citizen_id")
    now = now or utcnow()
    house = resolve_building(building_id, address)
    same_citizen = Appeal.citizen_id == citizen.id
    building_conds = []
    if house is not None:
        building_conds.append(Appeal.building_id == house)
    keys = blind_index.row_values("building", citizen) if citizen.erased_at is None else []
    if keys:
        building_conds.append(Appeal.building_key.in_(keys))
    same_building = or_(*building_conds) if building_conds else None
    is_open = Appeal.status.in_(ACTIVE_STATUSES)
    who = or_(same_citizen, same_building) if same_building is not None else same_citizen
    rows = db.session.execute(
        select(Appeal, same_citizen, same_building if same_building is not None else literal(False), is_open)
        .where(Appeal.topic == topic, Appeal.status.not_in(NOT_A_PREDECESSOR),
               or_(is_open, Appeal.created_at >= window_start(now)), who)
        .order_by(is_open.desc(), Appeal.created_at.desc(), Appeal.id).limit(max(1, min(int(limit), 50)))).all()
    found = [Candidate(a, bool(c), bool(b), bool(o)) for a, c, b, o in rows]
    audit.record("appeal.search", citizen_id=citizen.id, purpose="appeal_processing",
                 detail="repeat_candidates" + (";building" if house is not None else ""),
                 outcome="ok" if found else "not_found")
    db.session.commit()
    return found


@dataclass
class Attached:
    """What :func:`attach_call` did: the existing ``appeal``, the ``call`` now in it (or None), the
    consent ``events`` and ``consent_error`` as :func:`crm.appeals.services.register_appeal` has them."""

    appeal: Appeal
    call: object | None
    consents: list
    consent_error: str | None


@atomic
def attach_call(user, appeal_id: str, *, citizen_id: str, call_id: str | None = None,
                recording: tuple[BinaryIO, str] | None = None, consents: Mapping[str, bool] | None = None,
                consent_offset_s: float | None = None) -> Attached:
    """Instead of opening another appeal, put this call into the existing appeal ``appeal_id`` of the
    same problem: the call ``call_id`` already stored for the citizen (the telephony's recording), or
    a ``recording`` uploaded on the form, and the consent answers given on it. One transaction; the
    transcription is queued after the commit. Logged as ``call.create`` (an upload) or ``call.attach``.

    ``user``: an operator or admin. The appeal may be another citizen's (the same house, chosen among
    the candidates) but must be open or recent, not rejected or a duplicate. Raises
    :class:`AppealError`, :class:`crm.errors.NotFound`, :class:`crm.calls.services.CallError`."""
    require_role(user, *INTAKE_ROLES)
    appeal = get(appeal_id)
    citizen = citizens.get(citizen_id)
    if appeal is None or citizen is None:
        raise NotFound(_l("обращение не найдено"), code="not_found", field="appeal_id")
    if appeal.status in NOT_A_PREDECESSOR or not (appeal.status in ACTIVE_STATUSES
                                                 or appeal.created_at >= window_start(utcnow())):
        raise AppealError(_l("к обращению № %(number)s звонок не добавить: оно закрыто давно или отклонено",
                             number=appeal.number), "appeal_id", "not_attachable")
    answers = {str(p): bool(g) for p, g in sorted((consents or {}).items())}
    staged = calls.stage_upload(*recording) if recording is not None else None
    call, stored = None, None
    try:
        if call_id:
            call = calls.attach_to_appeal(call_id, appeal, citizen_id=citizen.id, user_id=user.id)
        elif staged is not None:
            call = stored = calls.add_staged(staged, appeal=appeal, operator_id=user.id)
        events, consent_error = _record_consents(citizen, answers, appeal=appeal, call=call, operator_id=user.id,
                                                 offset_s=consent_offset_s)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if stored is not None:
            calls.remove_stored(stored)
        raise
    finally:
        if staged is not None:
            staged.discard()
    if stored is not None:
        calls.enqueue_transcription(stored)
    return Attached(appeal, call, events, consent_error)


# --- rates -------------------------------------------------------------------------------------------

def repeat_rate(start: datetime, end: datetime) -> dict:
    """Repeats among the appeals created in ``[start, end)`` (aware UTC): ``{"appeals", "repeats",
    "repeat_rate"}``, the rate 0–1 (None without appeals). A repeat is an appeal linked to an earlier
    one (``repeat_of``: found at registration, or linked by the operator); duplicates are left out
    (merged into their original, they are not appeals of their own)."""
    total, repeats = db.session.execute(
        select(func.count(), func.count(Appeal.repeat_of_id))
        .where(Appeal.created_at >= start, Appeal.created_at < end, Appeal.status != "duplicate")).one()
    return {"appeals": total, "repeats": repeats, "repeat_rate": round(repeats / total, 4) if total else None}


def first_contact_resolution(start: datetime, end: datetime) -> dict:
    """First-contact resolution of the appeals created in ``[start, end)``, counting repeats: of the
    appeals worked on (rejected and duplicates left out), those closed at the first contact
    (``first_contact``, set by the «консультация дана» step, :func:`crm.appeals.services.fcr_rate`)
    that no later appeal names as its predecessor (``repeat_of``: the citizen had to call again about
    the same problem). ``{"appeals", "resolved_first_contact", "fcr"}``; ``fcr`` None without appeals."""
    later = Appeal.__table__.alias("later")
    repeated = exists().where(later.c.repeat_of_id == Appeal.id)
    counted = and_(Appeal.created_at >= start, Appeal.created_at < end, Appeal.status.not_in(NOT_A_PREDECESSOR))
    total, fcr = db.session.execute(select(
        func.count(), func.count().filter(and_(Appeal.first_contact.is_(True), ~repeated)))
        .select_from(Appeal).where(counted)).one()
    return {"appeals": total, "resolved_first_contact": fcr, "fcr": round(fcr / total, 4) if total else None}
