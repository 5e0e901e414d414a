"""Incidents: create, find the active ones for a house, link appeals, attach calls, close, the
ПП 354 recalculation flag. Other features reach incidents only through this module; the surge
proposals are :mod:`crm.incidents.surge`.

Services own the transaction: :func:`create`, :func:`attach_call` and :func:`close` commit;
:func:`link_appeal` writes into the caller's transaction (the appeal's registration)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from crm import hooks
from crm.buildings import services as buildings
from crm.buildings.address import normalize_address
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.db import atomic, db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.incidents.catalog import BASIS, KINDS, PERMITTED, REDUCTION_PER_HOUR, TOPICS
from crm.incidents.models import Incident, IncidentAppeal, IncidentBuilding, IncidentCall
from crm.security import audit
from crm.timeutil import local_tz

MAX_TEXT = 2000
MAX_ADDRESSES = 500


class IncidentError(ValueError):
    """Bad incident input or a step the incident's state refuses; ``field``, ``code`` (``invalid``,
    ``unknown_address``, ``not_found``, ``closed``) and the HTTP ``status`` the API answers with;
    ``details``: e.g. the addresses not found in the register."""

    def __init__(self, message, field: str | None = None, code: str = "invalid", status: int = 400,
                 details: list | None = None):
        super().__init__(message)
        self.field, self.code, self.status, self.details = field, code, status, details or []


def _aware(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # a local time without offset: the hotline's time zone
        moment = moment.replace(tzinfo=local_tz())
    return moment.astimezone(timezone.utc)


def _clean_text(text: str | None, field: str) -> str:
    text = (text or "").strip()
    if len(text) < 3:
        raise IncidentError(_l("напишите текст для операторов: что случилось и когда дадут услугу"), field)
    if len(text) > MAX_TEXT:
        raise IncidentError(_l("текст длиннее %(max)s символов", max=MAX_TEXT), field)
    return text


@atomic
def create(user, *, topic: str, text: str, starts_at: datetime, ends_at: datetime | None = None,
           kind: str = "emergency", addresses: list[str] | None = None, building_ids: list[int] | None = None,
           street: str | None = None, district: str | None = None, commit: bool = True) -> Incident:
    """Register an incident and commit. Covers the register's houses of ``addresses`` (any usual
    spelling, :func:`resolve_address`) and/or ``building_ids``, or every house of
    ``street`` or of ``district`` (matched as whole words in the normalised address: «ул. Ленина»
    covers «г. Москва, ул. Ленина, д. 5»). ``topic``: an appeals' topic code of
    :data:`crm.incidents.catalog.TOPICS`; ``kind``: ``planned`` or ``emergency``; ``starts_at`` and
    the announced ``ends_at`` (aware; naive ones are read in ``CRM_TIMEZONE``); ``text``: what
    operators read to callers (3–2000 characters). Logged as ``incident.create``.

    Raises :class:`IncidentError`: ``invalid`` (field named), ``unknown_address`` (422; ``details``
    lists the addresses not in the register — nothing is created)."""
    if topic not in TOPICS:
        raise IncidentError(_l("неизвестная тематика «%(topic)s»: %(known)s", topic=str(topic)[:30],
                               known=", ".join(TOPICS)), "topic")
    if kind not in KINDS:
        raise IncidentError(_l("неизвестный вид «%(kind)s»: planned (плановое) или emergency (аварийное)",
                               kind=str(kind)[:30]), "kind")
    text = _clean_text(text, "text")
    starts, ends = _aware(starts_at, "starts_at"), _aware(ends_at, "ends_at")
    if starts is None:
        raise IncidentError(_l("укажите начало отключения"), "starts_at")
    if ends is not None and ends <= starts:
        raise IncidentError(_l("окончание должно быть позже начала"), "ends_at")
    addresses = [a for a in (addresses or []) if a is not None]
    ids = list(building_ids or [])
    areas = [(s, v) for s, v in (("street", street), ("district", district)) if v and v.strip()]
    if len(areas) > 1 or (areas and (addresses or ids)):
        raise IncidentError(_l("укажите либо дома (addresses), либо улицу (street), либо район (district)"),
                            "addresses")
    incident = Incident(topic=topic, kind=kind, text=text, starts_at=starts, ends_at=ends,
                        created_by=getattr(user, "id", None))
    if areas:
        scope, area = areas[0]
        key = normalize_address(area)
        if not key or len(area) > 300:
            raise IncidentError(_l("не понять улицу или район «%(area)s»", area=area[:60]), scope)
        incident.scope, incident.area, incident.area_key = scope, " ".join(area.split()), key
    else:
        if not addresses and not ids:
            raise IncidentError(_l("укажите хотя бы один дом (addresses), улицу (street) или район (district)"),
                                "addresses")
        if len(addresses) + len(ids) > MAX_ADDRESSES:
            raise IncidentError(_l("не больше %(max)s домов в одном инциденте", max=MAX_ADDRESSES), "addresses")
        found, unknown = set(), []
        for raw in addresses:
            house = resolve_address(str(raw)) if isinstance(raw, str) else None
            if house is None:
                unknown.append(str(raw)[:300])
            else:
                found.add(house.id)
        for bid in ids:
            if buildings.get(bid) is None:
                unknown.append(f"id {bid}")
            else:
                found.add(bid)
        if unknown:
            raise IncidentError(_l("этих адресов нет в реестре домов: %(addresses)s. Проверьте адрес или "
                                   "добавьте дом в реестр (crm buildings import), либо укажите улицу (street)",
                                   addresses="; ".join(f"«{u}»" for u in unknown[:10])),
                                "addresses", "unknown_address", 422, unknown)
        incident.scope = "buildings"
        incident.buildings = [IncidentBuilding(building_id=b) for b in sorted(found)]
    db.session.add(incident)
    db.session.flush()
    audit.record("incident.create", detail=f"incident={incident.id};topic={topic};scope={incident.scope}")
    if commit:
        db.session.commit()
    return incident


def resolve_address(address: str | None):
    """The register's house of ``address``: the one whose normalised address is the same
    (:func:`crm.buildings.services.find`), else the only house whose normalised address holds every
    word of it whole («Ленина 5» is «г. Москва, ул. Ленина, д. 5», not «… д. 5а» nor «… д. 15»); None
    when there is none or more than one (two cities' «Ленина 5»)."""
    if not address or not address.strip():
        return None
    house = buildings.find(address)
    if house is not None:
        return house
    words = normalize_address(address).split()
    if not words:
        return None
    whole = [b for b in buildings.search(address, limit=50) if set(words) <= set(b.address_key.split())]
    return whole[0] if len(whole) == 1 else None


def get(incident_id) -> Incident | None:
    try:
        return db.session.get(Incident, int(incident_id))
    except (TypeError, ValueError):
        return None


def state(incident: Incident, now: datetime | None = None) -> str:
    """``closed``, ``upcoming`` (starts later) or ``active``."""
    now = now or utcnow()
    if incident.closed_at is not None:
        return "closed"
    return "upcoming" if incident.starts_at > now else "active"


def _covers_key(area_key: str, address_key: str) -> bool:
    """The area's words stand, in order and whole, in the address: «ул ленина» in «москва ул ленина 5»,
    not in «москва ул ленинская 5»."""
    return f" {area_key} " in f" {address_key} "


def upcoming_hours() -> float:
    return float(current_app.config["CRM_INCIDENT_UPCOMING_H"])


def active_for(*, building_id: int | None = None, address: str | None = None, topic: str | None = None,
               now: datetime | None = None) -> list[Incident]:
    """The open incidents that cover the house ``building_id`` (the register's id) or ``address`` (any
    spelling; a house not in the register still matches a street or district incident): started, or
    starting within ``CRM_INCIDENT_UPCOMING_H`` (24) hours; on ``topic`` when given. Newest first.
    A neighbouring house is not covered: buildings are matched by id, streets and districts as whole
    words of the normalised address."""
    now = now or utcnow()
    house = buildings.get(building_id) if building_id is not None else resolve_address(address)
    key = house.address_key if house is not None else normalize_address(address)
    if house is None and not key:
        return []
    stmt = sa.select(Incident).where(Incident.closed_at.is_(None),
                                     Incident.starts_at <= now + timedelta(hours=upcoming_hours()))
    if topic:
        stmt = stmt.where(Incident.topic == topic)
    by_house = sa.select(IncidentBuilding.incident_id).where(IncidentBuilding.building_id == house.id) \
        if house is not None else None
    conds = [Incident.scope != "buildings"]
    if by_house is not None:
        conds.append(Incident.id.in_(by_house))
    rows = db.session.execute(stmt.where(sa.or_(*conds)).order_by(Incident.starts_at.desc(), Incident.id.desc())
                              ).scalars().all()
    return [i for i in rows if i.scope == "buildings" or (key and _covers_key(i.area_key or "", key))]


def covers_building(incident: Incident, building_id: int | None) -> bool:
    """Whether ``incident`` covers the register's house ``building_id``."""
    if building_id is None:
        return False
    if incident.scope == "buildings":
        return any(b.building_id == building_id for b in incident.buildings)
    house = buildings.get(building_id)
    return house is not None and _covers_key(incident.area_key or "", house.address_key)


def building_addresses(incident: Incident) -> list[dict]:
    """``[{"id", "address"}]`` of the houses of a ``buildings`` incident, by address."""
    out = []
    for link in incident.buildings:
        house = buildings.get(link.building_id)
        if house is not None:
            out.append({"id": house.id, "address": house.address})
    return sorted(out, key=lambda h: h["address"])


def _open(incident_id, *, closing: bool = False) -> Incident:
    """The open incident ``incident_id``; raises :class:`IncidentError` ``not_found`` (404) or
    ``incident_closed`` (409, worded for a second close when ``closing``)."""
    incident = get(incident_id)
    if incident is None:
        raise IncidentError(_l("инцидент не найден"), "incident_id", "not_found", 404)
    if incident.closed_at is not None:
        at = incident.closed_at.astimezone(local_tz()).strftime("%d.%m.%Y %H:%M")
        message = (_l("инцидент уже закрыт %(at)s; заявителям сообщено при закрытии", at=at) if closing
                   else _l("инцидент закрыт %(at)s: к нему больше ничего не привязать", at=at))
        raise IncidentError(message, "incident_id", "incident_closed", 409)
    return incident


def link_appeal(incident_id, appeal_id: str) -> Incident:
    """Link the appeal ``appeal_id`` (being registered) to the open incident ``incident_id``, in the
    caller's transaction (no commit). Raises :class:`IncidentError` (``not_found`` 404,
    ``incident_closed`` 409)."""
    incident = _open(incident_id)
    db.session.add(IncidentAppeal(incident_id=incident.id, appeal_id=appeal_id))
    return incident


def unlinked(appeal_ids: list[str]) -> list[str]:
    """Of ``appeal_ids``, those not linked to any incident."""
    if not appeal_ids:
        return []
    taken = set(db.session.execute(sa.select(IncidentAppeal.appeal_id).where(IncidentAppeal.appeal_id.in_(appeal_ids)))
                .scalars())
    return [a for a in appeal_ids if a not in taken]


def incident_of_appeal(appeal_id: str) -> int | None:
    """The id of the incident the appeal was opened about, or None."""
    return db.session.execute(sa.select(IncidentAppeal.incident_id).where(IncidentAppeal.appeal_id == appeal_id)
                              ).scalar_one_or_none()


def appeal_ids(incident_id: int) -> list[str]:
    """The appeals linked to the incident, in the order they were linked."""
    return list(db.session.execute(sa.select(IncidentAppeal.appeal_id).where(IncidentAppeal.incident_id == incident_id)
                                   .order_by(IncidentAppeal.at, IncidentAppeal.appeal_id)).scalars())


def counts(incident_id: int) -> dict:
    """``{"appeals_count", "calls_count"}``: appeals opened about the incident, and calls attached to it
    instead of an appeal."""
    appeals = db.session.execute(sa.select(sa.func.count()).select_from(IncidentAppeal)
                                 .where(IncidentAppeal.incident_id == incident_id)).scalar_one()
    calls_n = db.session.execute(sa.select(sa.func.count()).select_from(IncidentCall)
                                 .where(IncidentCall.incident_id == incident_id)).scalar_one()
    return {"appeals_count": int(appeals), "calls_count": int(calls_n)}


def attached_call_ids(call_ids: list[str]) -> set[str]:
    """Of ``call_ids``, the telephony's recordings already attached to an incident."""
    if not call_ids:
        return set()
    return set(db.session.execute(sa.select(IncidentCall.call_id).where(IncidentCall.call_id.in_(call_ids))).scalars())


@dataclass
class Attached:
    """What :func:`attach_call` did: the ``row`` counted, the consent ``events`` recorded, and why the
    consent answers were not recorded (``consent_error``, the controller not configured) or None."""

    row: IncidentCall
    events: list
    consent_error: str | None = None


@atomic
def attach_call(user, incident_id, *, citizen_id: str, call_id: str | None = None,
                consents: dict[str, bool] | None = None) -> IncidentCall:
    """Count a caller's call on the open incident ``incident_id`` instead of opening an appeal, and
    commit. ``citizen_id``: the caller; ``call_id``: the telephony's recording of this call, when there
    is one (the caller's, not attached to an appeal or another incident). ``consents``: the answers to
    the consent questions asked on the call (``{purpose code: given}``), recorded in the same
    transaction with the recording as evidence (see :func:`attach_call_with_consents`). Logged as
    ``incident.call`` naming the citizen. Raises :class:`IncidentError` (``not_found``,
    ``incident_closed``, ``invalid``), :class:`crm.consent.services.ConsentError`."""
    return attach_call_with_consents(user, incident_id, citizen_id=citizen_id, call_id=call_id,
                                     consents=consents).row


@atomic
def attach_call_with_consents(user, incident_id, *, citizen_id: str, call_id: str | None = None,
                              consents: dict[str, bool] | None = None,
                              consent_offset_s: float | None = None) -> Attached:
    """:func:`attach_call`, returning :class:`Attached` (the consent events too). ``consent_offset_s``:
    where in the recording ``call_id`` the answers were given (seconds), kept as their evidence."""
    incident = _open(incident_id)
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise IncidentError(_l("заявитель не найден"), "citizen_id", "not_found", 404)
    if call_id:
        call = calls.get(call_id)
        if (call is None or call.citizen_id != citizen_id or call.appeal_id is not None
                or attached_call_ids([call_id])):
            raise IncidentError(_l("запись звонка не найдена среди ожидающих записей этого заявителя"), "call_id")
    row = IncidentCall(incident_id=incident.id, citizen_id=citizen_id, call_id=call_id or None,
                       operator_id=getattr(user, "id", None))
    db.session.add(row)
    audit.record("incident.call", citizen_id=citizen_id, call_id=call_id or None, purpose="appeal_processing",
                 detail=f"incident={incident.id}")
    events, consent_error = [], None
    answers = {str(p): bool(g) for p, g in sorted((consents or {}).items())}
    if answers and not consent.controller_configured():
        consent_error = str(consent.CONTROLLER_NOT_CONFIGURED)
    elif answers:
        for purpose, given in answers.items():
            events.append(consent.record(citizen, purpose, channel="call", given=given,
                                         operator_id=getattr(user, "id", None), evidence_call_id=call_id or None,
                                         evidence_offset_s=consent_offset_s if call_id else None, commit=False))
    db.session.commit()
    return Attached(row, events, consent_error)


@atomic
def close(user, incident_id, *, text: str, now: datetime | None = None) -> Incident:
    """Close the incident: fire ``incident.closing`` (``incident_id``, ``appeal_ids``, ``text``,
    ``user_id``) in the same transaction — :mod:`crm.appeals` resolves the linked appeals with ``text``
    as the citizen's comment —, commit once (the closing and the resolutions together, or nothing), then
    call what the subscribers returned (the status notifications, on each citizen's consent). ``text``:
    what the citizens are told (3–2000 characters). A second close is refused (``incident_closed``),
    so nobody is told twice. Logged as ``incident.close``."""
    incident = _open(incident_id, closing=True)
    text = _clean_text(text, "text")
    incident = db.session.execute(sa.select(Incident).where(Incident.id == incident.id).with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one()
    if incident.closed_at is not None:  # closed concurrently
        raise IncidentError(_l("инцидент уже закрыт"), "incident_id", "incident_closed", 409)
    incident.closed_at = now or utcnow()
    incident.closing_text = text
    incident.closed_by = getattr(user, "id", None)
    linked = appeal_ids(incident.id)
    audit.record("incident.close", detail=f"incident={incident.id};appeals={len(linked)}")
    after = hooks.fire("incident.closing", incident_id=incident.id, appeal_ids=linked, text=text,
                       user_id=getattr(user, "id", None))
    db.session.commit()
    for done in after:
        if callable(done):
            done()
    return incident


def activity_select():
    """``SELECT citizen_id, at`` of the calls attached to incidents (retention's last contact)."""
    return sa.select(IncidentCall.citizen_id, IncidentCall.at).where(IncidentCall.citizen_id.is_not(None))


def export_for_citizen(citizen_id: str) -> list[dict]:
    """The citizen's calls counted on incidents, for an access export (152-ФЗ ст. 14):
    ``[{"incident_id", "topic", "at" (ISO 8601 UTC), "call_id"}]``. No personal data of others."""
    rows = db.session.execute(sa.select(IncidentCall, Incident.topic).join(Incident, Incident.id == IncidentCall.incident_id)
                              .where(IncidentCall.citizen_id == citizen_id).order_by(IncidentCall.at)).all()
    return [{"incident_id": r.incident_id, "topic": topic, "at": r.at.isoformat(), "call_id": r.call_id}
            for r, topic in rows]


def listing(*, status: str | None = None, limit: int = 200) -> list[Incident]:
    """Incidents, open ones first then newest; ``status`` ``open`` or ``closed`` filters."""
    stmt = sa.select(Incident)
    if status == "open":
        stmt = stmt.where(Incident.closed_at.is_(None))
    elif status == "closed":
        stmt = stmt.where(Incident.closed_at.is_not(None))
    stmt = stmt.order_by(sa.case((Incident.closed_at.is_(None), 0), else_=1), Incident.starts_at.desc(),
                         Incident.id.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())


# --- ПП 354: permitted interruptions -----------------------------------------------------------------

def _hours(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds() / 3600)


def _month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    local = moment.astimezone(local_tz())
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start.astimezone(timezone.utc), nxt.astimezone(timezone.utc)


def _shares_coverage(a: Incident, b: Incident) -> bool:
    if a.scope == "buildings" and b.scope == "buildings":
        return bool({x.building_id for x in a.buildings} & {x.building_id for x in b.buildings})
    if a.scope != "buildings" and b.scope != "buildings":
        return _covers_key(a.area_key or "", b.area_key or "") or _covers_key(b.area_key or "", a.area_key or "")
    area, houses = (a, b) if a.scope != "buildings" else (b, a)
    return any(covers_building(area, x.building_id) for x in houses.buildings)


def _interval(incident: Incident, now: datetime) -> tuple[datetime, datetime]:
    """The outage as it happened: from the start to the closing (or now, while it lasts)."""
    end = incident.closed_at or now
    return incident.starts_at, max(incident.starts_at, end)


def recalculation(incident: Incident, now: datetime | None = None) -> dict:
    """Whether the outage exceeds the interruption ПП РФ № 354 Appendix 1 permits
    (:data:`crm.incidents.catalog.PERMITTED`), so the bill must be recalculated.

    Returns ``{"required": bool, "applies": bool, "basis", "permitted_once_h", "permitted_month_h",
    "duration_h", "month_total_h", "excess_h", "reduction_percent", "note"}``: ``duration_h`` this
    outage from its start to its closing (or now; hours); ``month_total_h`` the outages of the same
    service on the same houses in the calendar month (``CRM_TIMEZONE``) of its start, this one
    included, counted up to the month's end; ``excess_h`` the larger of the hours beyond the limit at
    a time and beyond the month's total; ``reduction_percent`` = 0.15 % × ``excess_h`` of the month's
    payment (Appendix 1). ``applies`` False for services outside Appendix 1 (lift, intercom …)."""
    now = now or utcnow()
    rule = PERMITTED.get(incident.topic)
    start, end = _interval(incident, now)
    duration = _hours(start, end)
    out = {"applies": rule is not None, "required": False, "basis": None, "permitted_once_h": None,
           "permitted_month_h": None, "duration_h": round(duration, 2), "month_total_h": None, "excess_h": 0.0,
           "reduction_percent": 0.0, "note": None}
    if rule is None or start > now:
        return out
    m_start, m_end = _month_bounds(start)
    others = db.session.execute(sa.select(Incident).where(
        Incident.topic == incident.topic, Incident.id != incident.id, Incident.starts_at < m_end,
        sa.or_(Incident.closed_at.is_(None), Incident.closed_at > m_start))).scalars().all()
    month = _hours(max(start, m_start), min(end, m_end))
    for other in others:
        if other.starts_at > now or not _shares_coverage(incident, other):
            continue
        a, b = _interval(other, now)
        month += _hours(max(a, m_start), min(b, m_end))
    excess = max(duration - rule.once_h if rule.once_h is not None else 0.0, month - rule.month_h, 0.0)
    out.update(required=excess > 0, basis=f"{BASIS}, {rule.clause}", permitted_once_h=rule.once_h,
               permitted_month_h=rule.month_h, month_total_h=round(month, 2), excess_h=round(excess, 2),
               reduction_percent=round(excess * REDUCTION_PER_HOUR * 100, 2), note=str(rule.note) if rule.note else None)
    return out


def view(incident: Incident, now: datetime | None = None) -> dict:
    """The incident as the API answers it (``GET /api/v1/incidents/{id}``)."""
    now = now or utcnow()
    data = {"id": incident.id, "topic": incident.topic, "kind": incident.kind, "scope": incident.scope,
            "street": incident.area if incident.scope == "street" else None,
            "district": incident.area if incident.scope == "district" else None,
            "buildings": building_addresses(incident) if incident.scope == "buildings" else [],
            "text": incident.text, "starts_at": incident.starts_at, "ends_at": incident.ends_at,
            "closed_at": incident.closed_at, "closing_text": incident.closing_text,
            "status": state(incident, now), "created_at": incident.created_at,
            "recalculation": recalculation(incident, now)}
    data.update(counts(incident.id))
    return data


def brief(incident: Incident, now: datetime | None = None) -> dict:
    """What the intake shows: ``{"id", "text", "topic", "kind", "status", "starts_at", "ends_at", "scope"}``."""
    return {"id": incident.id, "text": incident.text, "topic": incident.topic, "kind": incident.kind,
            "status": state(incident, now), "starts_at": incident.starts_at, "ends_at": incident.ends_at,
            "scope": incident.scope}
