"""The buildings register (table ``buildings``). No personal data."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, db, utcnow


class Building(db.Model):
    """``address`` as last imported (for display), ``address_key`` its normalised form
    (:func:`crm.buildings.address.normalize_address`, unique: what makes an import idempotent),
    ``fias_id`` the ФИАС/ГАР object GUID (lower case, unique when given), ``entrances`` and
    ``apartments`` (optional counts)."""

    __tablename__ = "buildings"
    __table_args__ = (
        CheckConstraint("entrances IS NULL OR entrances > 0", name="entrances"),
        CheckConstraint("apartments IS NULL OR apartments >= 0", name="apartments"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(300))
    address_key: Mapped[str] = mapped_column(String(300), unique=True)
    fias_id: Mapped[str | None] = mapped_column(String(36), unique=True, nullable=True)
    entrances: Mapped[int | None] = mapped_column(Integer, nullable=True)
    apartments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
