"""Tables of the security package: wrapped data keys, the access log and its chain head."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow


class DataKey(db.Model):
    """One data-encryption key (DEK) per owner (a citizen, or a call with no citizen), wrapped by a KEK.

    Deleting the row crypto-shreds every ciphertext made under it."""

    __tablename__ = "data_keys"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(UUIDStr, unique=True)
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditHead(db.Model):
    """The single row holding the access log's chain head; updating it serialises appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AccessLogEntry(db.Model):
    """An append-only, hash-chained access-log entry. Holds ids, never personal values."""

    __tablename__ = "access_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # username, or "job:<name>"
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40), index=True)
    citizen_id: Mapped[str | None] = mapped_column(UUIDStr, index=True)
    fields: Mapped[str] = mapped_column(String(200), default="")
    purpose: Mapped[str | None] = mapped_column(String(40))
    appeal_id: Mapped[str | None] = mapped_column(UUIDStr)
    call_id: Mapped[str | None] = mapped_column(UUIDStr)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
