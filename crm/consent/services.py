"""Consent events: grant, refuse, withdraw; questions other packages ask (``has_consent``)."""
from __future__ import annotations

from crm.citizens.models import Citizen
from crm.consent.models import ConsentEvent, Purpose
from crm.consent.texts import DEFAULT_VERSION, PURPOSES, TEXTS, text_hash
from crm.db import db, utcnow
from crm.security import audit

CHANNELS = ("call", "web", "paper", "api")


class ConsentError(ValueError):
    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


def ensure_purposes() -> None:
    """Insert the built-in purposes that are missing (idempotent)."""
    for code, name, basis, needs, cats, days in PURPOSES:
        if db.session.get(Purpose, code) is None:
            db.session.add(Purpose(code=code, name_ru=name, legal_basis=basis, requires_consent=needs,
                                   data_categories=cats, retention_days=days))
    db.session.commit()


def record(citizen: Citizen, purpose: str, *, text_version: str | None = None, channel: str = "call",
           given: bool = True, operator_id: int | None = None, evidence_call_id: str | None = None,
           evidence_offset_s: float | None = None, commit: bool = True) -> ConsentEvent:
    """Record a consent (or a refusal when ``given`` is False). Raises :class:`ConsentError` for an
    unknown purpose, text version or channel, or an erased citizen."""
    if db.session.get(Purpose, purpose) is None:
        raise ConsentError(f"неизвестная цель обработки «{purpose}»", "purpose")
    version = text_version or DEFAULT_VERSION.get(purpose)
    if (purpose, version) not in TEXTS:
        raise ConsentError(f"неизвестная версия текста согласия «{version}»", "text_version")
    if channel not in CHANNELS:
        raise ConsentError(f"неизвестный канал «{channel}»", "channel")
    if citizen.erased_at is not None:
        raise ConsentError("данные заявителя уничтожены: согласие не может быть получено", "citizen_id", "erased")
    event = ConsentEvent(citizen_id=citizen.id, purpose_code=purpose, text_version=version,
                         text_hash=text_hash(purpose, version), channel=channel, given=given,
                         operator_id=operator_id, evidence_call_id=evidence_call_id,
                         evidence_offset_s=evidence_offset_s, at=utcnow())
    db.session.add(event)
    audit.record("consent.grant" if given else "consent.refuse", citizen_id=citizen.id, purpose=purpose,
                 call_id=evidence_call_id)
    if commit:
        db.session.commit()
    return event


def withdraw(event: ConsentEvent, *, channel: str = "api", user_id: int | None = None) -> ConsentEvent:
    """Withdraw a consent. Always accepted; withdrawing twice keeps the first time."""
    if event.withdrawn_at is None:
        event.withdrawn_at = utcnow()
        event.withdrawn_channel = channel
        event.withdrawn_by = user_id
    audit.record("consent.withdraw", citizen_id=event.citizen_id, purpose=event.purpose_code)
    db.session.commit()
    return event


def has_consent(citizen_id: str, purpose: str) -> bool:
    """True when the latest event for (citizen, purpose) is a given, unwithdrawn consent."""
    latest = db.session.execute(db.select(ConsentEvent).where(
        ConsentEvent.citizen_id == citizen_id, ConsentEvent.purpose_code == purpose)
        .order_by(ConsentEvent.at.desc()).limit(1)).scalar_one_or_none()
    return bool(latest and latest.given and latest.withdrawn_at is None)


def for_citizen(citizen_id: str) -> list[ConsentEvent]:
    return list(db.session.execute(db.select(ConsentEvent).where(ConsentEvent.citizen_id == citizen_id)
                                   .order_by(ConsentEvent.at)).scalars())


def get(consent_id: str) -> ConsentEvent | None:
    return db.session.get(ConsentEvent, consent_id)


def as_dict(e: ConsentEvent) -> dict:
    return {"id": e.id, "citizen_id": e.citizen_id, "purpose": e.purpose_code, "text_version": e.text_version,
            "text_hash": e.text_hash, "channel": e.channel, "status": e.status, "at": e.at.isoformat(),
            "withdrawn_at": e.withdrawn_at.isoformat() if e.withdrawn_at else None,
            "evidence_call_id": e.evidence_call_id}
