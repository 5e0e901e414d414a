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

A message that carries a secret (a one-time code, a self-service link) names it in ``secret``: the
gateway gets the real text once, at :func:`send`, while the outbox keeps it with the secret replaced
by :data:`MASK` — the code and the link live on only as HMACs (:mod:`crm.consent.selfservice`), so
nobody who reads the database, its backups or the DPO's outbox page can sign in as the citizen.
A gateway that queues messages for later must hold the text itself, not re-read it from the outbox.
Viewing the outbox is logged (``sms.outbox_view``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app

from crm.consent.models import SmsMessage
from crm.db import db, utcnow
from crm.security import audit
from crm.security.permissions import require_role
from crm.citizens.phones import mask_phone

log = logging.getLogger(__name__)
STATUS_PURPOSE = "sms_notifications"
MASK = "***"


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


def masked(body: str, secret: str | None) -> str:
    """``body`` as the outbox keeps it: every occurrence of ``secret`` replaced by :data:`MASK`."""
    return body.replace(secret, MASK) if secret else body


def send(citizen, *, purpose: str, kind: str, body: str, appeal_id: str | None = None,
         appeal_event_id: str | None = None, actor: audit.Actor | None = None,
         secret: str | None = None) -> SmsMessage | None:
    """Send ``body`` to the citizen's phone: outbox row, gateway, access-log entry ``sms.send``
    (fields ``phone``; never the text). ``secret`` (a one-time code, a link token), which must occur
    in ``body``, reaches the gateway only: the outbox row holds ``body`` with it masked. Returns the
    outbox row, or None when the citizen has no readable phone (erased). Commits; a gateway error
    marks the row ``failed`` and is re-raised."""

    if secret is not None and (not secret or secret not in body):
        raise ValueError("the secret must occur in the message text")
    if citizen is None or citizen.erased_at is not None or citizen.phone_enc is None:
        return None
    phone = citizen.phone
    msg = SmsMessage(citizen_id=citizen.id, purpose=purpose, kind=kind, appeal_id=appeal_id,
                     appeal_event_id=appeal_event_id, to_masked=mask_phone(phone), body=masked(body, secret),
                     status="sent", created_at=utcnow())
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


def outbox_view(*, user, limit: int = 300) -> list[SmsMessage]:
    """The outbox for the DPO's page (newest first, texts with secrets masked), logged as
    ``sms.outbox_view`` (one entry: the masked numbers and texts of ``len(rows)`` messages were
    shown). Raises ``PermissionDenied`` unless ``user`` is a DPO. Commits."""
    require_role(user, "dpo")
    rows = outbox(limit=limit)
    audit.record("sms.outbox_view", fields=["phone"], purpose=audit.REPORT_PURPOSE,
                 detail=f"{len(rows)} messages, {len({m.citizen_id for m in rows if m.citizen_id})} citizens")
    db.session.commit()
    return rows
