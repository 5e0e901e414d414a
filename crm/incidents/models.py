"""Incidents, what they cover and what is linked to them; surge proposals. No personal data: appeals,
calls and citizens are referred to by id."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import UTCDateTime, db, utcnow


class Incident(db.Model):
    """An outage or mass incident. ``scope``: ``buildings`` (the rows of :class:`IncidentBuilding`),
    ``street`` or ``district`` (``area_key``: the normalised street or district, matched as whole words
    in a building's normalised address; ``area`` as typed). ``topic``: an appeals' topic code;
    ``kind``: ``planned`` or ``emergency``. ``starts_at``; ``ends_at`` the announced end (optional);
    ``closed_at`` when a supervisor closed it, with ``closing_text`` (the citizens' comment).
    ``text``: what operators read to callers."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("kind IN ('planned', 'emergency')", name="kind"),
        CheckConstraint("scope IN ('buildings', 'street', 'district')", name="scope"),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(30), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(20), default="buildings")
    area: Mapped[str | None] = mapped_column(String(300))
    area_key: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    closing_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    buildings: Mapped[list["IncidentBuilding"]] = relationship(cascade="all, delete-orphan")


class IncidentBuilding(db.Model):
    """A building of the register an incident of scope ``buildings`` covers."""

    __tablename__ = "incident_buildings"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), primary_key=True, index=True)


class IncidentAppeal(db.Model):
    """An appeal opened about the incident (``POST /appeals`` with ``incident_id``); one incident per appeal."""

    __tablename__ = "incident_appeals"
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IncidentCall(db.Model):
    """A call about the incident attached to it instead of opening an appeal: the caller
    (``citizen_id``), the operator, when, and the telephony's recording (``call_id``) when there is one."""

    __tablename__ = "incident_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IncidentProposal(db.Model):
    """A surge of appeals on one building and topic (:mod:`crm.incidents.surge`) proposed to the
    supervisors as an incident: ``pending`` until one ``accepted`` (``incident_id``) or ``dismissed``
    it. ``appeals_count``: appeals seen in the surge; ``first_at``/``last_at`` the first and latest."""

    __tablename__ = "incident_proposals"
    __table_args__ = (CheckConstraint("status IN ('pending', 'accepted', 'dismissed')", name="status"),
                      UniqueConstraint("building_id", "topic", "first_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), index=True)
    topic: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    appeals_count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
