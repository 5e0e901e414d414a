from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.security.fields import Encrypted


class AppealCounter(db.Model):
    """Per-year counter for human appeal numbers (``2026-000042``)."""

    __tablename__ = "appeal_counters"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Appeal(db.Model):
    """An appeal (обращение). The description is ciphertext under the citizen's data key; the
    statistical columns (category, topic, building key, dates, status) survive an erasure.
    ``building_key``: the citizen's ``building`` blind index in the slot lookups read when the appeal
    was made; re-keyed when that index's old key is dropped, except for erased citizens (see
    :func:`crm.security.rotation.index_drop`)."""

    __tablename__ = "appeals"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    category: Mapped[str] = mapped_column(String(20), index=True)
    topic: Mapped[str] = mapped_column(String(30), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True, default="received")
    description_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    building_key: Mapped[str | None] = mapped_column(String(32), index=True)
    #: the house in the buildings register (crm.buildings) the operator picked at intake, if any
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    #: the executor (crm.executors) the appeal is handed over to, if any
    executor_id: Mapped[int | None] = mapped_column(ForeignKey("executors.id"), index=True)
    repeat_of_id: Mapped[str | None] = mapped_column(ForeignKey("appeals.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    escalate_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    update_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # a form's or API client's idempotency key: a double-clicked form or a retried POST makes one appeal
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    description = Encrypted("description_enc")
    events: Mapped[list["AppealEvent"]] = relationship(order_by="AppealEvent.at", back_populates="appeal")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.citizen_id


class AppealEvent(db.Model):
    """One row of an appeal's history: a transition (who, when, from, to) with an optional comment."""

    __tablename__ = "appeal_events"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id"), index=True)
    citizen_id: Mapped[str] = mapped_column(UUIDStr)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    comment_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    comment = Encrypted("comment_enc")
    appeal: Mapped[Appeal] = relationship(back_populates="events")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), "citizen_id": kwargs.pop("citizen_id"), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.citizen_id


class AppealClockWarning(db.Model):
    """A warning given once per appeal, clock, cycle and level: 50, 80 or 100 per cent of the clock's
    time used (design.md, "Appeal lifecycle"); written by the periodic scan
    (:func:`crm.appeals.services.warn_clocks`), which announces each only once. No personal data."""

    __tablename__ = "appeal_clock_warnings"
    __table_args__ = (UniqueConstraint("appeal_id", "code", "cycle", "level"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    cycle: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
