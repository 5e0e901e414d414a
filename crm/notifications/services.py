"""Citizen notifications: queue one message per event and channel, deliver it from a job, apply the
provider's delivery reports.

The one entry point for other features is :func:`notify` (and its shorthands
:func:`notify_registered`, :func:`notify_status`, :func:`notify_incident`)::

    notify(citizen_id, event="incident", key=f"incident:{incident.id}:{citizen_id}", urgent=True,
           text=incident.text, appeal_id=None)

For each channel of ``CRM_NOTIFY_CHANNELS`` it asks the consent of that channel's purpose
(:data:`PURPOSE_OF`: ``sms_notifications``, ``email_notifications``), renders the channel's
template (:mod:`crm.notifications.templates`), writes the message to the outbox
(:func:`crm.consent.sms.queue_message`, idempotent on ``key`` + channel) and queues
:func:`crm.notifications.jobs.deliver_job` — at once, or, for a non-urgent message inside quiet hours
(``CRM_NOTIFY_QUIET_HOURS``, 21:00–09:00 in ``CRM_TIMEZONE`` by default: the Russian practice of not
sending advertising and service messages at night), scheduled with RQ for the end of quiet hours
(``Queue.enqueue_at``; the worker runs RQ's scheduler). Urgent messages (an emergency outage) go at once.

:func:`deliver` (the job) asks the consent again right before sending (a withdrawal after queueing
cancels the message), defers the message again if it came due inside quiet hours, takes it with a
conditional UPDATE (two runs of the job never both send it), reads the recipient (logged), and hands
it to the transport. A transport failure leaves the message ``queued`` and re-raises, so RQ's
``Retry`` runs the job again after its interval; the last attempt marks it ``failed`` with the error.
A permanent refusal (a wrong number) fails at once, without retries.
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, timezone
from string import Formatter

from flask import current_app
from rq import get_current_job

from crm import jobs
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.consent import sms as outbox
from crm.consent.sms import OutgoingSms, TransportError
from crm.db import utcnow
from crm.db import db
from crm.i18n import lazy_gettext as _l, translate
from crm.notifications import templates
from crm.notifications.models import NotificationTemplate
from crm.notifications.transports import EmailTransport, OutboxEmail, OutgoingEmail
from crm.security import audit
from crm.security.permissions import require_role
from crm.timeutil import local_tz

log = logging.getLogger(__name__)

#: Channel → the purpose whose consent it needs.
PURPOSE_OF = {"sms": "sms_notifications", "email": "email_notifications"}
JOB = "crm.notifications.jobs.deliver_job"
ACTOR = "send_notification"
CHANNEL_LABELS = {"sms": "SMS", "email": "эл. почта"}


# --- configuration ----------------------------------------------------------------------------------

def email_transport(app=None) -> EmailTransport:
    """The app's e-mail transport (:class:`OutboxEmail` unless SMTP is configured)."""
    app = app or current_app
    return app.extensions.get("crm_email_transport") or OutboxEmail()


def set_email_transport(app, transport: EmailTransport) -> None:
    app.extensions["crm_email_transport"] = transport


def _parse_quiet(value: str | None) -> tuple[time, time] | None:
    """``"21:00-09:00"`` (also with seconds) → ``(start, end)``; None for "" or equal ends. Raises
    ValueError for anything else."""
    value = (value or "").strip()
    if not value:
        return None
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f"CRM_NOTIFY_QUIET_HOURS={value!r}: expected HH:MM-HH:MM")
    start_t, end_t = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    return None if start_t == end_t else (start_t, end_t)


def quiet_until(now: datetime | None = None, window: str | None = None) -> datetime | None:
    """When ``now`` (aware; default the present) falls inside quiet hours (``window``, default
    ``CRM_NOTIFY_QUIET_HOURS``, local time of ``CRM_TIMEZONE``; it may span midnight), the end of
    those quiet hours as aware UTC; else None."""
    span = _parse_quiet(current_app.config["CRM_NOTIFY_QUIET_HOURS"] if window is None else window)
    if span is None:
        return None
    start, end = span
    tz = local_tz()
    local = (now or utcnow()).astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # across midnight: 21:00-09:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(timezone.utc)


# --- queueing ---------------------------------------------------------------------------------------

def notify(citizen_id: str, *, event: str, key: str, appeal_id: str | None = None, urgent: bool = False,
           variant: str | None = None, channels: tuple[str, ...] | None = None, now: datetime | None = None,
           **values) -> list:
    """Queue the citizen's notification of ``event`` (``registered``, ``status``, ``incident``) on each
    channel (``channels``, default ``CRM_NOTIFY_CHANNELS``) whose purpose the citizen consents to now
    and whose recipient (phone, e-mail) is on record. ``key`` names the event (e.g.
    ``appeal_event:<id>``): the message's idempotency key is ``key:channel``, so calling again (a
    job run twice) queues nothing new. ``variant`` picks a more specific template (the status code);
    ``values`` fill it (:func:`crm.notifications.templates.render`). ``urgent`` ignores quiet hours.

    Returns the outbox rows made or found (one per channel notified; none without consent). Commits
    each row before its job is queued; never raises for Redis being down (the message is then sent in
    this process)."""
    citizen = citizens.get(citizen_id) if citizen_id else None
    if citizen is None or citizen.erased_at is not None:
        return []
    cfg = current_app.config
    out = []
    for channel in (channels or tuple(cfg["CRM_NOTIFY_CHANNELS"])):
        purpose = PURPOSE_OF.get(channel)
        if purpose is None:
            raise ValueError(f"unknown channel {channel!r}")
        if not consent.may_notify(citizen_id, purpose) or not outbox.has_recipient(citizen, channel):
            continue
        rendered = templates.render(event, channel, variant=variant, overrides=template_overrides(), **values)
        later = None if urgent else quiet_until(now)
        msg, created = outbox.queue_message(citizen, channel=channel, purpose=purpose, kind=event, text=rendered.text,
                                            shown=rendered.shown, subject=rendered.subject,
                                            event_key=f"{key}:{channel}", appeal_id=appeal_id, urgent=urgent,
                                            scheduled_for=later)
        out.append(msg)
        if created:
            _enqueue(msg.id, later)
    return out


def _enqueue(message_id: str, at: datetime | None) -> None:
    """Queue the delivery job, at ``at`` (aware UTC) when deferred; without Redis, deliver now in
    this process (a deferred message then waits for the next :func:`release_due`)."""
    try:
        if at is not None:
            jobs.enqueue_at(at, JOB, message_id, job_id=_job_id(message_id, at))
        else:
            jobs.enqueue(JOB, message_id)
    except LookupError:
        raise
    except Exception:  # redis unavailable
        log.warning("notification %s: queue unavailable, delivering in-process", message_id)
        if at is None:
            try:
                deliver(message_id, final=True)
            except Exception:  # noqa: BLE001 - recorded on the message; a notification never undoes its cause
                log.warning("notification %s not delivered", message_id)


def _job_id(message_id: str, at: datetime) -> str:
    """One scheduled job per message and due time (planting it twice replaces, never doubles)."""
    return f"{current_app.config['CRM_QUEUE_PREFIX']}notify-{message_id}-{int(at.timestamp())}"


def notify_registered(appeal_id: str, citizen_id: str, number: str) -> list:
    """The appeal number, sent at registration (event ``registered``, key ``appeal_registered:<id>``)."""
    return notify(citizen_id, event="registered", key=f"appeal_registered:{appeal_id}", appeal_id=appeal_id,
                  number=number)


def notify_status(appeal_id: str, citizen_id: str, event_id: str, *, number: str, status: str,
                  status_label: str, comment: str | None = None, original_number: str | None = None) -> list:
    """A status change of an appeal (event ``status``, variant the new ``status`` code, key
    ``appeal_event:<event_id>``). ``comment`` must be the citizen-facing comment only (visibility
    ``citizen``): it is sent. ``status_label`` is the status in words, lower case."""
    return notify(citizen_id, event="status", variant=status, key=f"appeal_event:{event_id}", appeal_id=appeal_id,
                  number=number, status=status_label, comment=comment or "", original_number=original_number or "")


def notify_incident(citizen_id: str, incident_id: str | int, text: str, *, urgent: bool,
                    appeal_id: str | None = None) -> list:
    """An outage or emergency in the citizen's building (event ``incident``, key
    ``incident:<incident_id>:<citizen_id>``; pass a different ``incident_id`` such as ``"5:closed"``
    for a second message about the same incident). ``urgent`` (an emergency outage) ignores quiet
    hours. ``text`` is the incident's text as operators read it (no personal data)."""
    return notify(citizen_id, event="incident", key=f"incident:{incident_id}:{citizen_id}", appeal_id=appeal_id,
                  urgent=urgent, text=text)


# --- delivery ---------------------------------------------------------------------------------------

def _final_attempt() -> bool:
    """Whether a failure now is the last one: outside RQ, or the job has no retries left."""
    job = get_current_job()
    return job is None or not job.retries_left


def deliver(message_id: str, *, final: bool | None = None, now: datetime | None = None) -> str:
    """Send one queued message (the delivery job). Returns the outcome: ``sent``, ``logged``,
    ``deferred`` (quiet hours), ``cancelled`` (no consent or no recipient any more), ``missing``, or the
    status it already has (``sent``, ``sending`` …: a second run sends nothing). ``final``: whether a
    failure is the last try (default: from the RQ job's retries left). A transport failure is
    recorded on the message and re-raised (RQ retries the job), except a permanent one or the final
    try, which mark it ``failed`` (final tries re-raise, so the job shows as failed in the monitor)."""
    msg = outbox.get(message_id)
    if msg is None:
        return "missing"
    if msg.status not in ("queued", "scheduled"):
        return msg.status
    if not msg.urgent:
        later = quiet_until(now)
        if later is not None:  # came due inside quiet hours (queued at 20:59, or a backlog)
            outbox.defer(msg, later)
            _enqueue(msg.id, later)
            return "deferred"
    taken = outbox.claim(message_id)
    if taken is None:
        return outbox.get(message_id).status
    msg = taken
    if not consent.may_notify(msg.citizen_id, msg.purpose):
        outbox.cancel(msg, "нет действующего согласия на момент отправки")
        return "cancelled"
    try:
        citizen = citizens.get(msg.citizen_id)
        text = msg.sealed_body
        to = outbox.read_recipient(msg, citizen, actor=audit.system_actor(ACTOR))
        if to is None or text is None:
            outbox.cancel(msg, "у заявителя нет адреса для этого канала")
            return "cancelled"
        if msg.channel == "sms":
            gw = outbox.gateway()
            provider_id = gw.deliver(OutgoingSms(to, text, msg.id))
            name, sends = gw.name, gw.sends
        else:
            tr = email_transport()
            provider_id = tr.deliver(OutgoingEmail(to, msg.subject or "", text, msg.id))
            name, sends = tr.name, tr.sends
    except Exception as exc:
        last = True if isinstance(exc, TransportError) and exc.permanent else (
            _final_attempt() if final is None else final)
        outbox.release(msg, outbox.safe_error(exc), final=last)
        log.warning("notification %s (%s) not delivered, attempt %s%s", msg.id, msg.channel, msg.attempts,
                    "" if not last else ", final")
        if isinstance(exc, TransportError) and exc.permanent:
            return "failed"
        raise
    outbox.mark_sent(msg, provider=name, provider_message_id=provider_id, sent=sends)
    return "sent" if sends else "logged"


def release_due(now: datetime | None = None) -> int:
    """Queue every ``scheduled`` message whose time has come (a safety net for messages deferred
    while Redis was down). Returns how many were queued."""
    n = 0
    for msg in outbox.due(now or utcnow()):
        _enqueue(msg.id, None)
        n += 1
    return n


def apply_report(provider: str, provider_message_id: str, status: str, code: str | None = None):
    """A provider's delivery report (the callback): see :func:`crm.consent.sms.apply_delivery_status`."""
    return outbox.apply_delivery_status(provider, provider_message_id, status, code)


# --- the templates, edited by supervisors -------------------------------------------------------------

EDITORS = ("supervisor", "admin")
MAX_SMS = 500  # characters: about seven SMS segments in Cyrillic
MAX_EMAIL = 5000


class TemplateError(ValueError):
    """A template edit refused (Russian message); ``field``: ``subject`` or ``body``."""

    def __init__(self, message: str, field: str = "body"):
        super().__init__(message)
        self.field = field


def template_overrides() -> dict:
    """The texts in force beside the built-in ones: the deployment's ``CRM_NOTIFY_TEMPLATES``, then the
    supervisors' edits (which win). ``{key: body}`` for SMS, ``{key: (subject, body)}`` for e-mail."""
    out = dict(current_app.config["CRM_NOTIFY_TEMPLATES"] or {})
    for row in db.session.execute(db.select(NotificationTemplate)).scalars():
        out[row.key] = (row.subject or "", row.body) if row.key.endswith(":email") else row.body
    return out


def editable_templates() -> list[dict]:
    """Every template for the supervisors' page, in :data:`templates.TEMPLATES` order: ``{"key",
    "channel", "subject", "body" (in force), "default_subject", "default_body", "edited" (a
    supervisor's text is in force), "updated_at"}``."""
    rows = {r.key: r for r in db.session.execute(db.select(NotificationTemplate)).scalars()}
    config = current_app.config["CRM_NOTIFY_TEMPLATES"] or {}
    out = []
    for key, builtin in templates.TEMPLATES.items():
        default = config.get(key, builtin)
        d_subject, d_body = (default[0], default[1]) if isinstance(default, (tuple, list)) else (None, default)
        row = rows.get(key)
        out.append({"key": key, "channel": key.rsplit(":", 1)[1],
                    "subject": (row.subject if row else d_subject), "body": row.body if row else d_body,
                    "default_subject": d_subject, "default_body": d_body, "edited": row is not None,
                    "updated_at": row.updated_at if row else None})
    return out


def _check_text(text: str, field: str, limit: int) -> str:
    text = (text or "").strip().replace("\r\n", "\n")
    if not text:
        raise TemplateError(_l("текст шаблона не может быть пустым"), field)
    if len(text) > limit:
        raise TemplateError(_l("текст шаблона длиннее %(limit)s знаков", limit=limit), field)
    try:
        names = {name for _, name, _, _ in Formatter().parse(text) if name is not None}
    except ValueError:
        raise TemplateError(_l("в шаблоне непарная фигурная скобка: подстановки пишутся как {number}"), field) from None
    unknown = sorted(n for n in names if n not in templates.PLACEHOLDERS)
    if unknown:
        raise TemplateError(_l("неизвестные подстановки: %(names)s; допустимы: %(allowed)s",
                               names=", ".join("{" + n + "}" for n in unknown),
                               allowed=", ".join("{" + n + "}" for n in templates.PLACEHOLDERS)), field)
    return text


def update_template(key: str, *, body: str, subject: str | None = None, user) -> NotificationTemplate:
    """A supervisor's text for template ``key`` (an e-mail template needs ``subject``). Checked: not
    empty, not too long (:data:`MAX_SMS`, :data:`MAX_EMAIL`), only known placeholders
    (:data:`templates.PLACEHOLDERS`). Logged as ``notification.template_update``. Commits. Raises
    :class:`TemplateError`, ``PermissionDenied`` unless ``user`` is a supervisor or admin, KeyError
    for an unknown key."""
    require_role(user, *EDITORS)
    if key not in templates.TEMPLATES:
        raise KeyError(key)
    email = key.endswith(":email")
    body = _check_text(body, "body", MAX_EMAIL if email else MAX_SMS)
    subject = _check_text(subject or "", "subject", 200) if email else None
    row = db.session.get(NotificationTemplate, key) or NotificationTemplate(key=key)
    row.body, row.subject, row.updated_by, row.updated_at = body, subject, user.id, utcnow()
    db.session.add(row)
    audit.record("notification.template_update", detail=key)
    db.session.commit()
    return row


def reset_template(key: str, *, user) -> bool:
    """Back to the built-in text of ``key`` (logged as ``notification.template_update``, detail
    ``<key> reset``). Returns False when it was not edited. Commits."""
    require_role(user, *EDITORS)
    edited = db.session.get(NotificationTemplate, key)
    if edited is None:
        return False
    db.session.delete(edited)
    audit.record("notification.template_update", detail=f"{key} reset")
    db.session.commit()
    return True


# --- reading ----------------------------------------------------------------------------------------

def status_label(status: str) -> str:
    return translate(outbox.STATUS_LABELS.get(status, status))


def as_dict(msg) -> dict:
    """A message for the appeal page and API: ``{"id", "channel", "kind", "purpose", "status",
    "status_label", "to" (masked), "text" (comment masked), "created_at", "scheduled_for", "sent_at",
    "delivered_at", "attempts", "error"}`` (times ISO 8601 UTC or None)."""
    iso = lambda v: v.astimezone(timezone.utc).isoformat() if v else None  # noqa: E731
    return {"id": msg.id, "channel": msg.channel, "kind": msg.kind, "purpose": msg.purpose, "status": msg.status,
            "status_label": status_label(msg.status), "to": msg.to_masked, "text": msg.body,
            "created_at": iso(msg.created_at), "scheduled_for": iso(msg.scheduled_for), "sent_at": iso(msg.sent_at),
            "delivered_at": iso(msg.delivered_at), "attempts": msg.attempts or 0, "error": msg.last_error}


def for_appeal(appeal_id: str) -> list[dict]:
    """The notifications about one appeal, oldest first (:func:`as_dict`; nothing is decrypted)."""
    return [as_dict(m) for m in outbox.for_appeal(appeal_id)]
