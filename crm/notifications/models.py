"""Tables of the notifications package: the supervisors' edits of the message templates.

The messages themselves are rows of the consent package's outbox (``sms_outbox``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, db, utcnow


class NotificationTemplate(db.Model):
    """A supervisor's text for one template (``key`` as in :data:`crm.notifications.templates.TEMPLATES`,
    e.g. ``status:resolved:sms``): ``body`` and, for e-mail, ``subject``. No row: the built-in text
    (or the deployment's ``CRM_NOTIFY_TEMPLATES``). Templates hold no personal data."""

    __tablename__ = "notification_templates"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
