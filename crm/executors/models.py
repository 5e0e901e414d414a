"""The executors directory (table ``executors``). Contacts are of organisations, not of citizens."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, db, utcnow

KINDS = ("emergency_dispatch", "management_company", "utility_supplier", "contractor")


class Executor(db.Model):
    """A service appeals are handed over to. ``kind``: one of :data:`KINDS`; ``topics``: the appeal
    topic codes (crm.appeals.catalog.TOPICS) it serves, a JSON list (empty: any); ``building_ids``: the
    houses of the buildings register it serves (empty: any)."""

    __tablename__ = "executors"
    __table_args__ = (
        CheckConstraint("kind IN ('emergency_dispatch', 'management_company', 'utility_supplier', 'contractor')",
                        name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    topics: Mapped[list] = mapped_column(JSON, default=list)
    #: the buildings (crm.buildings ids) it serves, a JSON list (empty: any)
    building_ids: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
