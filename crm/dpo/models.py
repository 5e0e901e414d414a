"""Tables of the DPO's package: alerts about unusual access found in the access log."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, utcnow


class AccessAlert(db.Model):
    """Unusual access found in the access log (:mod:`crm.dpo.alerts`), for the DPO to review.

    ``key`` names what was found (rule, staff member, citizen, hour or day) so a scan run twice
    updates the alert instead of adding a second one. ``first_seq``..``last_seq`` are the access-log
    entries behind it; ``count`` how many. Acknowledging sets the ``ack_*`` columns and is itself
    logged (``audit.alert_ack``). Holds ids, never personal values."""

    __tablename__ = "access_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(30), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str | None] = mapped_column(String(80))
    citizen_id: Mapped[str | None] = mapped_column(UUIDStr, index=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ack_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ack_by: Mapped[int | None] = mapped_column(Integer)
    ack_comment: Mapped[str | None] = mapped_column(Text)
