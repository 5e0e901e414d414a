from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow


class Purpose(db.Model):
    """A processing purpose with its legal basis (152-ФЗ ст. 6) and retention period."""

    __tablename__ = "purposes"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_ru: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text)
    requires_consent: Mapped[bool] = mapped_column(Boolean)
    data_categories: Mapped[str] = mapped_column(String(300), default="")
    retention_days: Mapped[int] = mapped_column(Integer, default=1825)


class ConsentEvent(db.Model):
    """A consent given (append-only). Withdrawal is recorded by setting ``withdrawn_at`` /
    ``withdrawn_by`` once, never by deleting. ``text_hash`` is SHA-256 of the exact consent text."""

    __tablename__ = "consent_events"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), index=True)
    purpose_code: Mapped[str] = mapped_column(ForeignKey("purposes.code"), index=True)
    text_version: Mapped[str] = mapped_column(String(40))
    text_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))  # call, web, paper, api
    evidence_call_id: Mapped[str | None] = mapped_column(UUIDStr)
    evidence_offset_s: Mapped[float | None] = mapped_column(Float)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    given: Mapped[bool] = mapped_column(Boolean, default=True)  # False records an explicit refusal
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_channel: Mapped[str | None] = mapped_column(String(20))
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    @property
    def status(self) -> str:
        if not self.given:
            return "refused"
        return "withdrawn" if self.withdrawn_at else "active"
