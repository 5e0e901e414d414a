"""SMS: the gateway interface and the outbox.

There is no SMS provider yet. Every message goes through :func:`send`, which writes it to the
outbox table (``sms_outbox``: masked number, text, purpose — the DPO's page and the tests read it)
and hands it to the configured :class:`SmsGateway`. The default, :class:`OutboxGateway`, delivers
nothing further; a provider adapter implements ``deliver`` and is installed with
:func:`set_gateway` in ``create_app`` or an instance hook.

Status notifications rest on consent (``sms_notifications``): :mod:`crm.appeals.notifications` asks
:func:`crm.consent.services.may_notify` right before sending, so a withdrawal stops them from its
commit on, even for jobs already queued. One-time codes and self-service links are sent because the
citizen asked for them (to exercise their rights), not on consent. Message texts are never written
to the application log; the access log records that the phone was read, never the text.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app

from crm.consent.models import SmsMessage
from crm.db import db, utcnow
from crm.security import audit
from crm.citizens.phones import mask_phone

log = logging.getLogger(__name__)
STATUS_PURPOSE = "sms_notifications"


@dataclass
class OutgoingSms:
    """What a gateway delivers: ``to`` in E.164 (``+79123456789``) and the text."""

    to: str
    body: str
    message_id: str


class SmsGateway:
    """Interface of an SMS provider adapter. ``deliver`` sends one message or raises."""

    def deliver(self, sms: OutgoingSms) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class OutboxGateway(SmsGateway):
    """The default: the outbox row is the whole delivery (no provider is connected)."""

    def deliver(self, sms: OutgoingSms) -> None:
        return None


def gateway(app=None) -> SmsGateway:
    """The app's gateway (:class:`OutboxGateway` unless one was installed)."""
    app = app or current_app
    return app.extensions.get("crm_sms_gateway") or OutboxGateway()


def set_gateway(app, gw: SmsGateway) -> None:
    app.extensions["crm_sms_gateway"] = gw


def send(citizen, *, purpose: str, kind: str, body: str, appeal_id: str | None = None,
         appeal_event_id: str | None = None, actor: audit.Actor | None = None) -> SmsMessage | None:
    """Send ``body`` to the citizen's phone: outbox row, gateway, access-log entry ``sms.send``
    (fields ``phone``; never the text). Returns the outbox row, or None when the citizen has no
    readable phone (erased). Commits; a gateway error marks the row ``failed`` and is re-raised."""

    if citizen is None or citizen.erased_at is not None or citizen.phone_enc is None:
        return None
    phone = citizen.phone
    msg = SmsMessage(citizen_id=citizen.id, purpose=purpose, kind=kind, appeal_id=appeal_id,
                     appeal_event_id=appeal_event_id, to_masked=mask_phone(phone), body=body, status="sent",
                     created_at=utcnow())
    db.session.add(msg)
    audit.record("sms.send", citizen_id=citizen.id, fields=["phone"], purpose=purpose, appeal_id=appeal_id,
                 detail=f"{kind} {msg.id}", actor=actor)
    db.session.commit()
    try:
        gateway().deliver(OutgoingSms(phone, body, msg.id))
    except Exception:
        msg.status = "failed"
        db.session.commit()
        log.warning("SMS %s (%s) not delivered", msg.id, kind)  # the id only: never the number or text
        raise
    return msg


def outbox(limit: int = 200, citizen_id: str | None = None) -> list[SmsMessage]:
    """Outbox rows, newest first."""
    q = db.select(SmsMessage).order_by(SmsMessage.created_at.desc()).limit(limit)
    if citizen_id:
        q = q.where(SmsMessage.citizen_id == citizen_id)
    return list(db.session.execute(q).scalars())
