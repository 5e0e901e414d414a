"""The CSAT survey of one closure of an appeal (:mod:`crm.csat.services`)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.security.fields import Encrypted


class CsatSurvey(db.Model):
    """One survey: the link sent after the appeal's closure number ``cycle`` (its ``reopen_count`` when it
    was closed; one survey per appeal and cycle), and the citizen's answer.

    The link's token is random (:func:`crm.csat.services.new_token`) and only its SHA-256 is kept
    (``token_hash``): the database, its backups and the SMS outbox (the token masked) cannot answer for the
    citizen. ``answered_at`` set = the answer is recorded and the link is dead; it is set by a conditional
    ``UPDATE … WHERE answered_at IS NULL``, so two submissions, even concurrent ones, record one answer.
    ``solved``, ``score`` (1–5) and ``first_time`` are statistics (they stay after the citizen's erasure);
    the free-text ``comment`` is ciphertext under the citizen's data key (erasure shreds it)."""

    __tablename__ = "csat_surveys"
    __table_args__ = (UniqueConstraint("appeal_id", "cycle", name="uq_csat_surveys_appeal_cycle"),
                      CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)", name="score"))
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id"), index=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), index=True)
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    #: the status the appeal was closed in (``closed`` or ``consulted``)
    closed_status: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sms_id: Mapped[str | None] = mapped_column(String(36))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    solved: Mapped[bool | None] = mapped_column(Boolean)
    score: Mapped[int | None] = mapped_column(SmallInteger)
    first_time: Mapped[bool | None] = mapped_column(Boolean)
    #: the answer re-opened the appeal («не решено»)
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)
    comment_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    comment = Encrypted("comment_enc")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.citizen_id
