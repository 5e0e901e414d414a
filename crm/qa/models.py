from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.security.fields import Encrypted


class Scorecard(db.Model):
    """A versioned scorecard. ``criteria`` is a list of ``{code, label, weight, critical}``; editing
    a scorecard creates a new version (same ``name``), evaluations keep theirs."""

    __tablename__ = "scorecards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)
    criteria: Mapped[list] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Evaluation(db.Model):
    """A supervisor's evaluation of a call. ``answers`` maps criterion code → ``yes``/``no``/``na``;
    ``score`` is 0–100. The comment may quote the call, so it is ciphertext."""

    __tablename__ = "evaluations"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("scorecards.id"))
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    owner_id: Mapped[str] = mapped_column(UUIDStr)
    answers: Mapped[dict] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    comment_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    comment = Encrypted("comment_enc")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), "owner_id": kwargs.pop("owner_id"), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.owner_id
