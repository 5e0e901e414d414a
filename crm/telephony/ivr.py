"""The IVR's lookups: short Russian sentences for text-to-speech, with nothing the caller did not give.

The PBX's voice menu calls these with the token of an ``ivr`` account (a role that may do nothing
else). An appeal is found by the number the caller keyed in, or by the caller's own number (their
open appeals); the answer names the appeal's number and its status, and a resolution date while it
is open — never a name, an address or what the appeal is about. The outage at the caller's house is
the incidents register's announcement (crm.incidents), the house found through the caller's appeals
or address. Every lookup is in the access log
(``ivr.lookup``), found or not. The sentences are Russian whatever the API's language: the IVR
speaks Russian.
"""
from __future__ import annotations

from datetime import datetime

from crm.appeals import services as appeals
from crm.appeals.services import ACTIVE_STATUSES
from crm.citizens import services as citizens
from crm.citizens.phones import InvalidPhone, normalise_phone
from crm.db import db
from crm.incidents import services as incidents
from crm.i18n import lazy_gettext as _l
from crm.security import audit
from crm.telephony.services import TelephonyError
from crm.timeutil import local_date, local_tz

#: How the IVR says each status (a phrase after «Обращение номер N …»).
STATUS_PHRASES = {
    "received": "принято и ожидает передачи исполнителю",
    "consulted": "закрыто: вам дана консультация",
    "escalated": "передано исполнителю",
    "in_progress": "в работе у исполнителя",
    "resolved": "выполнено, ожидает закрытия",
    "closed": "закрыто",
    "rejected": "отклонено",
    "duplicate": "объединено с другим обращением по той же проблеме",
}
#: The answer to a lookup by phone that found no open appeal: the same for a number nobody has, a
#: citizen without appeals and one whose appeals are all closed (no enumeration of who is a citizen
#: or what they appealed; issue 13).
NO_OPEN_APPEALS = ("Открытых обращений по вашему номеру телефона не найдено. Если вы знаете номер обращения, "
                   "введите его, или дождитесь ответа оператора.")
#: The answer of an outage lookup that found none: the same for a number nobody has (or several
#: citizens share), a citizen whose address is unknown and one at whose house nothing is registered.
NO_OUTAGE = "По вашему номеру телефона действующих отключений не найдено. Оставайтесь на линии, оператор ответит."
_MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
           "ноября", "декабря")


def spoken_date(moment: datetime) -> str:
    """``12 декабря`` (the day in ``CRM_TIMEZONE``)."""
    day = local_date(moment)
    return f"{day.day} {_MONTHS[day.month - 1]}"


def spoken_number(number: str) -> str:
    """An appeal number as the IVR reads it: ``2026-000042`` → ``2026 дробь 42``."""
    year, _, seq = number.partition("-")
    return f"{year} дробь {int(seq)}" if seq.isdigit() else number


def _sentence(appeal) -> str:
    phrase = STATUS_PHRASES.get(appeal.status, appeal.status)
    text = f"Обращение номер {spoken_number(appeal.number)} {phrase}."
    if appeal.status in ACTIVE_STATUSES and appeal.resolve_by is not None:
        text += f" Срок выполнения — до {spoken_date(appeal.resolve_by)}."
    return text


def _phone(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except InvalidPhone as exc:
        raise TelephonyError(exc.args[0], "invalid_phone") from None


def appeal_status(*, number: str | None = None, phone: str | None = None) -> dict:
    """``{"text", "found"}``: the status of the appeal numbered ``number``, or of the open appeals of
    the citizen whose phone is ``phone`` (the newest named; how many are open; no open appeal at all is
    :data:`NO_OPEN_APPEALS`, whether the number is a citizen's or not and whatever closed appeals they
    have). Logged
    (``ivr.lookup``); commits. Raises :class:`TelephonyError` (``number_or_phone``) for neither or
    both, (``invalid_phone``) for a number that is not a Russian phone."""
    if bool(number) == bool(phone):
        raise TelephonyError(_l("укажите либо номер обращения (number), либо телефон (phone)"), "number_or_phone")
    if number:
        appeal = appeals.by_number(number.strip())
        if appeal is None:
            audit.record("ivr.lookup", purpose="appeal_processing", outcome="not_found", detail="appeal_status:number")
            db.session.commit()
            return {"text": "Обращение с таким номером не найдено. Проверьте номер или дождитесь ответа оператора.",
                    "found": False}
        audit.record("ivr.lookup", citizen_id=appeal.citizen_id, appeal_id=appeal.id, fields=["status"],
                     purpose="appeal_processing", detail="appeal_status:number")
        db.session.commit()
        return {"text": _sentence(appeal), "found": True}
    e164 = _phone(phone)
    found = citizens.find_by_phone(e164, purpose="appeal_processing")
    open_ = sorted((a for c in found for a in appeals.for_citizen(c.id) if a.status in ACTIVE_STATUSES),
                   key=lambda a: a.created_at, reverse=True)
    if not open_:
        # the same answer for a number nobody has, a citizen without appeals and one whose appeals are
        # all closed: a lookup by phone tells no more than that there is no open appeal (issue 13)
        audit.record("ivr.lookup", purpose="appeal_processing", outcome="not_found", detail="appeal_status:phone")
        db.session.commit()
        return {"text": NO_OPEN_APPEALS, "found": False}
    subject = open_[0]
    audit.record("ivr.lookup", citizen_id=subject.citizen_id, appeal_id=subject.id, fields=["status"],
                 purpose="appeal_processing", detail="appeal_status:phone")
    db.session.commit()
    head = "" if len(open_) == 1 else f"Открытых обращений по вашему номеру: {len(open_)}. Последнее: "
    text = _sentence(subject)
    return {"text": head + (text[0].lower() + text[1:] if head else text), "found": True}


def outage(*, phone: str) -> dict:
    """``{"text", "found"}``: the outage active at the caller's house (:func:`crm.incidents.services.active_for`),
    the caller found by the phone blind index and their house by their newest appeal's building (else
    their address, decrypted for the match and logged as crm.citizens does). The sentence is the
    incident's own announcement (what operators read to callers) and its announced end; nothing about
    the caller. No outage is :data:`NO_OUTAGE` whether the number is known or not. Logged (``ivr.lookup``); commits. Raises :class:`TelephonyError` (``invalid_phone``)."""
    e164 = _phone(phone)
    found = citizens.find_by_phone(e164, purpose="appeal_processing")
    if len(found) != 1:
        audit.record("ivr.lookup", purpose="appeal_processing", outcome="not_found", detail="outage")
        db.session.commit()
        return {"text": NO_OUTAGE, "found": False}
    citizen = found[0]
    building_id = next((a.building_id for a in appeals.for_citizen(citizen.id) if a.building_id), None)
    if building_id is not None:
        active = incidents.active_for(building_id=building_id)
    else:
        address = citizens.address_for_matching(citizen, purpose="appeal_processing")
        active = incidents.active_for(address=address) if address else []
    audit.record("ivr.lookup", citizen_id=citizen.id, purpose="appeal_processing",
                 outcome="ok" if active else "not_found", detail="outage")
    db.session.commit()
    if not active:
        return {"text": NO_OUTAGE, "found": False}
    incident = active[0]
    text = incident.text.strip().rstrip(".") + "."
    if incident.ends_at is not None:
        text += f" Ориентировочное время восстановления — {spoken_date(incident.ends_at)}, {incident.ends_at.astimezone(local_tz()):%H:%M}."
    return {"text": text, "found": True}
