"""The dispatch tables: the breach queue and the staff notifications. No personal data: appeal ids,
clock codes, staff ids and times only (a notification's text is built when shown, from ``kind`` and
``params``, which hold an appeal number and codes)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, db, utcnow


class Breach(db.Model):
    """One breached clock cycle of an appeal on the supervisors' queue (design.md: "a breach
    escalates to the supervisor"). ``clock``: the clock's code (crm.clocks.deadlines), ``cycle``: its
    cycle (a re-opened appeal's new cycle is a new breach); ``breached_at``: when the clock ran out
    (UTC); ``escalated_at``: when it was put on the queue; ``acknowledged_by``/``_at``: the
    supervisor who took it. One row per appeal, clock and cycle (the unique key makes the escalation
    idempotent)."""

    __tablename__ = "breaches"
    __table_args__ = (UniqueConstraint("appeal_id", "clock", "cycle"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    clock: Mapped[str] = mapped_column(String(40))
    cycle: Mapped[int] = mapped_column(Integer)
    breached_at: Mapped[datetime] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)


class Notification(db.Model):
    """An in-app notification to a group of staff: every supervisor (``audience`` ``supervisor``) or
    the accounts of one executor (``executor``, ``executor_id``), so an account made later still sees
    it. ``kind`` and ``params`` (JSON: the appeal number, a clock code …) make its text when shown
    (:data:`crm.dispatch.services.NOTIFICATION_TEXTS`); ``key`` makes it idempotent (a job run twice
    notifies once); ``read_at``/``read_by``: the first of the group who marked it read."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("audience IN ('supervisor', 'executor')", name="audience"),
        CheckConstraint("audience = 'supervisor' OR executor_id IS NOT NULL", name="executor"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    audience: Mapped[str] = mapped_column(String(20), index=True)
    executor_id: Mapped[int | None] = mapped_column(ForeignKey("executors.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    appeal_id: Mapped[str | None] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    read_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class ExtensionRequest(db.Model):
    """An executor's request for more time on an appeal (issue 14, point 3): the new resolution
    deadline asked for (``until``, UTC) and its ``status`` — ``pending`` until a supervisor approves
    (the deadline moves: :func:`crm.appeals.services.extend`) or rejects it. The reason and the
    decision's words are history rows of the appeal (``request_event_id``, ``decision_event_id``),
    encrypted under the citizen's key like every comment; this row holds none."""

    __tablename__ = "extension_requests"
    __table_args__ = (CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    executor_id: Mapped[int | None] = mapped_column(ForeignKey("executors.id"), nullable=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    previous_due: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    request_event_id: Mapped[str | None] = mapped_column(ForeignKey("appeal_events.id", ondelete="SET NULL"), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_event_id: Mapped[str | None] = mapped_column(ForeignKey("appeal_events.id", ondelete="SET NULL"), nullable=True)
