"""The citizen's notifications about an appeal: its number at registration, each status change with the
citizen-facing comment. Sent by SMS and e-mail, each on its own consent (``sms_notifications``,
``email_notifications``), through :mod:`crm.notifications.services`.

:func:`after_transition` subscribes to ``appeal.transitioned`` and :func:`after_registration` to
``appeal.registered`` (:mod:`crm.appeals.hooks`); each queues a job (:mod:`crm.appeals.jobs`) that
calls :func:`notify_status` / :func:`notify_registration`, which write one message per channel to the
outbox and queue its delivery. Consent is asked when the messages are queued and again right before
each is sent, so a withdrawal stops them from its commit on, even for jobs already queued. Only a
comment of visibility ``citizen`` goes out; an internal one never does.
"""
from __future__ import annotations

import logging

from crm import jobs
from crm.appeals.catalog import STATUSES
from crm.appeals.models import Appeal
from crm.consent import services as consent
from crm.db import db
from crm.notifications import services as notify
from crm.notifications import templates
from crm.security import audit

log = logging.getLogger(__name__)
STATUS_PURPOSE = "sms_notifications"
PURPOSES = tuple(notify.PURPOSE_OF.values())


def status_text(number: str, status: str, original_number: str | None = None, comment: str | None = None) -> str:
    """The SMS text for appeal ``number`` now in ``status`` (with the citizen-facing ``comment``); a
    duplicate names its original (``original_number``), where the work goes on."""
    return templates.render("status", "sms", variant=status, number=number,
                                   status=STATUSES.get(status, status).lower(), comment=comment or "",
                                   original_number=original_number or "").text


def _may_notify(citizen_id: str) -> bool:
    return any(consent.may_notify(citizen_id, p) for p in PURPOSES)


def notify_status(appeal_id: str, event_id: str) -> str:
    """Queue the citizen's messages for transition ``event_id`` of appeal ``appeal_id`` on the channels
    they consent to now. Safe to run twice (one message per transition and channel). Returns
    ``queued``, ``no_consent``, ``already_sent`` (an SMS of the older outbox), ``missing`` or
    ``no_recipient``."""
    appeal = db.session.get(Appeal, appeal_id)
    if appeal is None:
        return "missing"
    if consent.sms_sent_for_event(event_id):
        return "already_sent"
    if not _may_notify(appeal.citizen_id):
        return "no_consent"
    event = next((e for e in appeal.events if e.id == event_id), None)
    status = event.to_status if event is not None else appeal.status
    comment = None
    if event is not None and event.visibility == "citizen" and event.comment_enc is not None:
        comment = event.comment
        audit.record("appeal.view", citizen_id=appeal.citizen_id, appeal_id=appeal.id, fields=["comment"],
                     purpose=STATUS_PURPOSE, detail=f"notification {event_id}",
                     actor=audit.system_actor("send_status_sms"))
        db.session.commit()
    original = db.session.get(Appeal, appeal.duplicate_of_id) if appeal.duplicate_of_id else None
    rows = notify.notify_status(appeal.id, appeal.citizen_id, event_id, number=appeal.number, status=status,
                                status_label=STATUSES.get(status, status).lower(), comment=comment,
                                original_number=original.number if original is not None else None)
    return "queued" if rows else "no_recipient"


def notify_registration(appeal_id: str) -> str:
    """Queue the appeal's number for its citizen (``registered``), on the channels they consent to.
    Safe to run twice. Returns ``queued``, ``no_consent``, ``missing`` or ``no_recipient``."""
    appeal = db.session.get(Appeal, appeal_id)
    if appeal is None:
        return "missing"
    if not _may_notify(appeal.citizen_id):
        return "no_consent"
    return "queued" if notify.notify_registered(appeal.id, appeal.citizen_id, appeal.number) else "no_recipient"


def _queue(job: str, fallback, *args) -> None:
    try:
        jobs.enqueue(job, *args)
    except Exception:  # redis unavailable
        fallback(*args)


def after_transition(appeal_id: str, event_id: str, **_: object) -> None:
    """Subscriber of ``appeal.transitioned`` (fired after the transition's commit): queue the status
    notification when the citizen may be notified now. Never raises (a notification must not undo a
    transition); without Redis the messages are queued in-process."""
    try:
        appeal = db.session.get(Appeal, appeal_id)
        if appeal is None or not _may_notify(appeal.citizen_id):
            return
        _queue("crm.appeals.jobs.send_status_sms", notify_status, appeal.id, event_id)
    except Exception:
        db.session.rollback()
        log.exception("status notification for appeal %s not queued", appeal_id)


def after_registration(appeal_id: str, **_: object) -> None:
    """Subscriber of ``appeal.registered`` (fired after the new appeal's commit): queue the message
    with its number. Never raises."""
    try:
        appeal = db.session.get(Appeal, appeal_id)
        if appeal is None or not _may_notify(appeal.citizen_id):
            return
        _queue("crm.appeals.jobs.send_registration_notice", notify_registration, appeal.id)
    except Exception:
        db.session.rollback()
        log.exception("registration notification for appeal %s not queued", appeal_id)
