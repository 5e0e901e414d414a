"""The outbox: every message to a citizen (SMS and e-mail), the SMS gateway interface, and delivery status.

Every message is a row of the outbox (``sms_outbox``: channel, masked recipient, text with secrets
and comments masked, purpose, status — the DPO's page, the appeal page and the tests read it).
Two ways in:

* :func:`send` — an SMS sent at once, inside the caller's job or request: the self-service link and
  one-time code (sent because the citizen asked for them, to exercise their rights, not on consent).
* :func:`queue_message` then :func:`claim` / :func:`mark_sent` / :func:`release` — a notification
  delivered by a background job with retries (:mod:`crm.notifications`): status, registration,
  incident messages, which rest on consent (``sms_notifications``, ``email_notifications``), asked
  right before sending, so a withdrawal stops them from its commit on, even for jobs already queued.

The gateway is the app's :class:`SmsGateway` (``app.extensions["crm_sms_gateway"]``, installed by
:mod:`crm.notifications` from ``CRM_SMS_PROVIDER``). Without one, :class:`OutboxGateway` delivers
nothing: the row is the whole "delivery" and says so — status ``logged`` («в журнале (не
отправлено)»), never ``sent``. A message is ``sent`` only when a real provider or SMTP server accepted
it, and ``delivered`` only when the provider's callback says so.

Message texts are never written to the application log; the access log records that the phone or
e-mail address was read (``sms.send``, ``email.send``), never the text.

A message that carries a secret (a one-time code, a self-service link) names it in ``secret``: the
gateway gets the real text once, at :func:`send`, while the outbox keeps it with the secret replaced
by :data:`MASK` — the code and the link live on only as HMACs (:mod:`crm.consent.selfservice`), so
nobody who reads the database, its backups or the DPO's outbox page can sign in as the citizen.
A queued notification keeps its whole text sealed (``body_enc``, AES-GCM under the citizen's data
key, shredded by erasure) only until it has left, and its readable ``body`` with the citizen-facing
comment masked. Viewing the outbox is logged (``sms.outbox_view``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from crm.citizens.phones import mask_phone
from crm.consent.models import SmsMessage
from crm.db import db, utcnow
from crm.i18n import N_
from crm.security import audit
from crm.security.permissions import require_role

log = logging.getLogger(__name__)
STATUS_PURPOSE = "sms_notifications"
MASK = "***"
CHANNELS = ("sms", "email")

#: Status → Russian label. ``logged`` is the development outbox: written, never sent.
STATUS_LABELS = {"logged": N_("в журнале (не отправлено)"), "queued": N_("в очереди"),
                 "scheduled": N_("отложено (тихие часы)"), "sending": N_("отправляется"),
                 "sent": N_("отправлено"), "delivered": N_("доставлено"), "failed": N_("не доставлено"),
                 "cancelled": N_("отменено (нет согласия)")}
#: Statuses after which a message never changes again on our side (a callback may still move
#: ``sent`` to ``delivered`` or ``failed``).
FINAL = frozenset({"logged", "delivered", "failed", "cancelled"})
#: Order of the delivery states: a late callback never moves a message back.
_RANK = {"queued": 0, "scheduled": 0, "sending": 1, "sent": 2, "delivered": 3, "failed": 3}


@dataclass
class OutgoingSms:
    """What a gateway delivers: ``to`` in E.164 (``+79123456789``) and the text."""

    to: str
    body: str
    message_id: str


class TransportError(RuntimeError):
    """A transport did not take the message. ``permanent``: trying again cannot help (a refused
    number, wrong credentials), so no retry; else (network, timeout, 5xx) the job retries. The
    message is safe to store and show: no credentials, numbers or texts."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class SmsGateway:
    """Interface of an SMS provider adapter. ``deliver`` sends one message and returns the provider's
    message id (str, matched by its delivery callback) or None; it raises :class:`TransportError`.
    ``name`` is stored as the message's ``provider``; ``sends`` is False only for the outbox."""

    name = "gateway"
    sends = True

    def deliver(self, sms: OutgoingSms) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError


class OutboxGateway(SmsGateway):
    """The development backend: the outbox row is the whole "delivery" (status ``logged``)."""

    name = "outbox"
    sends = False

    def deliver(self, sms: OutgoingSms) -> str | None:
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


def mask_email(address: str) -> str:
    """``ivanov@mail.ru`` → ``iv***@mail.ru``."""
    local, _, domain = (address or "").partition("@")
    if not domain:
        return MASK
    return f"{local[:2]}{MASK}@{domain}"


def send(citizen, *, purpose: str, kind: str, body: str, appeal_id: str | None = None,
         appeal_event_id: str | None = None, actor: audit.Actor | None = None,
         secret: str | None = None, to: str | None = None) -> SmsMessage | None:
    """Send ``body`` to the citizen's phone now: outbox row, gateway, access-log entry ``sms.send``
    (fields ``phone``; never the text). ``secret`` (a one-time code, a link token), which must occur
    in ``body``, reaches the gateway only: the outbox row holds ``body`` with it masked. ``to``: another
    number of the citizen's (E.164) instead of the current one — the number a rectification replaced,
    told of the change. Returns the outbox row (status ``sent`` when the provider took it, ``logged``
    without a provider), or None when the citizen has no readable phone (erased). Commits; a gateway
    error marks the row ``failed`` and is re-raised."""

    if secret is not None and (not secret or secret not in body):
        raise ValueError("the secret must occur in the message text")
    if citizen is None or citizen.erased_at is not None or citizen.phone_enc is None:
        return None
    phone = to or citizen.phone
    gw = gateway()
    msg = SmsMessage(citizen_id=citizen.id, purpose=purpose, kind=kind, appeal_id=appeal_id, channel="sms",
                     appeal_event_id=appeal_event_id, to_masked=mask_phone(phone), body=masked(body, secret),
                     status="sending" if gw.sends else "logged", provider=gw.name, created_at=utcnow(),
                     status_at=utcnow())
    db.session.add(msg)
    audit.record("sms.send", citizen_id=citizen.id, fields=["phone"], purpose=purpose, appeal_id=appeal_id,
                 detail=f"{kind} {msg.id}", actor=actor)
    db.session.commit()
    if not gw.sends:
        return msg
    try:
        provider_id = gw.deliver(OutgoingSms(phone, body, msg.id))
    except Exception as exc:
        msg.status, msg.status_at = "failed", utcnow()
        msg.last_error = safe_error(exc)
        db.session.commit()
        log.warning("SMS %s (%s) not delivered", msg.id, kind)  # the id only: never the number or text
        raise
    msg.status, msg.sent_at, msg.status_at = "sent", utcnow(), utcnow()
    msg.provider_message_id = str(provider_id) if provider_id else None
    db.session.commit()
    return msg


def safe_error(exc: BaseException) -> str:
    """What is stored and shown of a transport failure: a :class:`TransportError`'s own message
    (written to hold no secret), else only the exception's class (a library's message may quote a
    URL with credentials or the recipient)."""
    if isinstance(exc, TransportError):
        return str(exc)[:300]
    return f"{type(exc).__name__}"[:300]


# --- notifications delivered by jobs (crm.notifications) -------------------------------------------

def by_event(event_key: str) -> SmsMessage | None:
    """The message already made for ``event_key`` (one per event and channel), or None."""
    return db.session.execute(db.select(SmsMessage).where(SmsMessage.event_key == event_key)).scalar_one_or_none()


def has_recipient(citizen, channel: str) -> bool:
    """Whether ``citizen`` (not erased) has a phone (``sms``) or an e-mail address (``email``) on
    record, without decrypting it."""
    if citizen is None or citizen.erased_at is not None:
        return False
    return (citizen.phone_enc if channel == "sms" else citizen.email_enc) is not None


def queue_message(citizen, *, channel: str, purpose: str, kind: str, text: str, shown: str,
                  event_key: str, subject: str | None = None, appeal_id: str | None = None,
                  urgent: bool = False, scheduled_for: datetime | None = None) -> tuple[SmsMessage, bool]:
    """Write a notification to the outbox for a delivery job: ``text`` (the whole message) sealed in
    ``body_enc``, ``shown`` (the text with the citizen-facing comment masked) in ``body``; status
    ``scheduled`` with ``scheduled_for`` (aware UTC) when deferred, else ``queued``. Idempotent on
    ``event_key``: returns ``(row, False)`` for the row already made. Commits. Raises ValueError
    for an unknown channel."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    existing = by_event(event_key)
    if existing is not None:
        return existing, False
    now = utcnow()
    msg = SmsMessage(citizen_id=citizen.id, purpose=purpose, kind=kind, appeal_id=appeal_id, channel=channel,
                     subject=subject, body=shown, event_key=event_key, urgent=urgent,
                     status="scheduled" if scheduled_for else "queued", scheduled_for=scheduled_for,
                     created_at=now, status_at=now)
    msg.sealed_body = text
    db.session.add(msg)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # a concurrent twin made it first (event_key is unique)
        db.session.rollback()
        return by_event(event_key), False
    return msg, True


def get(message_id: str) -> SmsMessage | None:
    return db.session.get(SmsMessage, message_id)


def claim(message_id: str) -> SmsMessage | None:
    """Take a queued or scheduled message for sending: ``sending``, one more attempt, in one
    conditional UPDATE, so two runs of its job never both send it. Returns the row, or None when it
    is not waiting (already sent, sending, cancelled, final). Commits."""
    now = utcnow()
    done = db.session.execute(sa.update(SmsMessage).where(
        SmsMessage.id == message_id, SmsMessage.status.in_(("queued", "scheduled")))
        .values(status="sending", attempts=SmsMessage.attempts + 1, status_at=now))
    db.session.commit()
    if done.rowcount != 1:
        return None
    msg = db.session.get(SmsMessage, message_id)
    db.session.refresh(msg)
    return msg


def read_recipient(msg: SmsMessage, citizen, *, actor: audit.Actor | None = None) -> str | None:
    """The message's recipient, decrypted (E.164 phone or e-mail address), with ``to_masked`` set and
    the read logged (``sms.send`` / ``email.send``, field ``phone`` / ``email``, never the text). None
    when the citizen has none any more (erased, removed). No commit: the caller's."""
    if not has_recipient(citizen, msg.channel):
        return None
    if msg.channel == "sms":
        value = citizen.phone
        msg.to_masked = mask_phone(value)
        audit.record("sms.send", citizen_id=citizen.id, fields=["phone"], purpose=msg.purpose,
                     appeal_id=msg.appeal_id, detail=f"{msg.kind} {msg.id}", actor=actor)
    else:
        value = citizen.email
        msg.to_masked = mask_email(value)
        audit.record("email.send", citizen_id=citizen.id, fields=["email"], purpose=msg.purpose,
                     appeal_id=msg.appeal_id, detail=f"{msg.kind} {msg.id}", actor=actor)
    return value


def mark_sent(msg: SmsMessage, *, provider: str, provider_message_id: str | None, sent: bool) -> SmsMessage:
    """The transport took the message: ``sent`` (``sent`` True: a real provider or SMTP server) or
    ``logged`` (the development outbox, nothing sent). The sealed text is cleared. Commits."""
    now = utcnow()
    msg.status = "sent" if sent else "logged"
    msg.provider, msg.provider_message_id = provider, (str(provider_message_id) if provider_message_id else None)
    msg.sent_at = now if sent else None
    msg.status_at, msg.last_error, msg.body_enc = now, None, None
    db.session.commit()
    return msg


def release(msg: SmsMessage, error: str, *, final: bool) -> SmsMessage:
    """A sending attempt failed with ``error`` (safe to show, :func:`safe_error`): ``failed`` when
    ``final`` (the sealed text is cleared), else back to ``queued`` for the job's next try. Commits."""
    msg.status = "failed" if final else "queued"
    msg.last_error, msg.status_at = error[:300], utcnow()
    if final:
        msg.body_enc = None
    db.session.commit()
    return msg


def defer(msg: SmsMessage, until: datetime) -> SmsMessage:
    """Put a waiting message (queued or scheduled, not taken for sending) back as ``scheduled`` for
    ``until`` (aware UTC). Commits."""
    msg.status, msg.scheduled_for, msg.status_at = "scheduled", until, utcnow()
    db.session.commit()
    return msg


def cancel(msg: SmsMessage, reason: str) -> SmsMessage:
    """The message must not go (no consent any more, no recipient): ``cancelled``, sealed text
    cleared, ``reason`` kept in ``last_error``. Commits."""
    msg.status, msg.last_error, msg.status_at, msg.body_enc = "cancelled", reason[:300], utcnow(), None
    db.session.commit()
    return msg


def apply_delivery_status(provider: str, provider_message_id: str, status: str,
                          error: str | None = None) -> SmsMessage | None:
    """A provider's delivery report for its message ``provider_message_id``: ``sent``,
    ``delivered`` or ``failed``. A report never moves a message back (a late «accepted» after
    «delivered» is ignored). Returns the row, or None when no message of ``provider`` has that id.
    Commits. Raises ValueError for another status."""
    if status not in ("sent", "delivered", "failed"):
        raise ValueError(f"unknown delivery status {status!r}")
    msg = db.session.execute(db.select(SmsMessage).where(
        SmsMessage.provider == provider, SmsMessage.provider_message_id == str(provider_message_id))
        .with_for_update()).scalars().first()
    if msg is None:
        db.session.rollback()
        return None
    if msg.status in ("logged", "cancelled") or _RANK.get(status, 0) <= _RANK.get(msg.status, 0):
        db.session.commit()
        return msg
    now = utcnow()
    msg.status, msg.status_at = status, now
    if status == "delivered":
        msg.delivered_at = now
    if status == "failed":
        msg.last_error = (error or "provider reported a failure")[:300]
    db.session.commit()
    return msg


def due(now: datetime) -> list[SmsMessage]:
    """``scheduled`` messages whose time (``scheduled_for``) is ``now`` or earlier."""
    return list(db.session.execute(db.select(SmsMessage).where(
        SmsMessage.status == "scheduled", SmsMessage.scheduled_for <= now)).scalars())


def for_appeal(appeal_id: str) -> list[SmsMessage]:
    """The messages about one appeal, oldest first."""
    return list(db.session.execute(db.select(SmsMessage).where(SmsMessage.appeal_id == appeal_id)
                                   .order_by(SmsMessage.created_at, SmsMessage.id)).scalars())


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
