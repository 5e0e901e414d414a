"""The administrators' calendar overrides (table ``calendar_overrides``): one row per day that the
holidays package gets wrong for this hotline — a regional holiday, a working day, a shortened day.
No personal data."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, db, utcnow


class CalendarOverride(db.Model):
    """``day`` (local date, the key), ``kind`` (``holiday``, ``working``, ``shortened``), ``hours``
    (a shortened day's length in hours; NULL: one hour less, ТК РФ ст. 95), ``note`` (why: the
    decree, the regional law), who set it and when."""

    __tablename__ = "calendar_overrides"
    __table_args__ = (
        CheckConstraint("kind IN ('holiday', 'working', 'shortened')", name="kind"),
        CheckConstraint("hours IS NULL OR (hours > 0 AND hours <= 24)", name="hours"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    note: Mapped[str | None] = mapped_column(String(300), nullable=True)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
