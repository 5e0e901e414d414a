"""The citizen's status SMS after an appeal transition, on the ``sms_notifications`` consent.

:func:`after_transition` subscribes to the ``appeal.transitioned`` hook (:mod:`crm.appeals.hooks`);
it queues :func:`crm.appeals.jobs.send_status_sms`, which calls :func:`notify_status`. Consent is asked
(:func:`crm.consent.services.may_notify`) right before sending, so a withdrawal stops the messages
from its commit on, even for jobs already queued.
"""
from __future__ import annotations

import logging

from crm import jobs
from crm.appeals.catalog import STATUSES
from crm.appeals.models import Appeal
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.db import db
from crm.security import audit

log = logging.getLogger(__name__)
STATUS_PURPOSE = "sms_notifications"


def status_text(number: str, status: str, original_number: str | None = None) -> str:
    """The SMS text for appeal ``number`` now in ``status``; a duplicate names its original
    (``original_number``), where the work goes on."""
    if status == "duplicate" and original_number:
        return (f"Горячая линия ЖКХ: заявка № {number} объединена с заявкой № {original_number} "
                "по той же проблеме; работы ведутся по ней.")
    return f"Горячая линия ЖКХ: заявка № {number} — {STATUSES.get(status, status).lower()}."


def notify_status(appeal_id: str, event_id: str) -> str:
    """Send the status SMS for transition ``event_id`` of appeal ``appeal_id`` if the citizen's
    consent allows it now. Safe to run twice (one message per transition). Returns ``sent``,
    ``no_consent``, ``already_sent``, ``missing`` or ``no_phone``."""
    appeal = db.session.get(Appeal, appeal_id)
    if appeal is None:
        return "missing"
    if consent.sms_sent_for_event(event_id):
        return "already_sent"
    if not consent.may_notify(appeal.citizen_id, STATUS_PURPOSE):
        return "no_consent"
    event = next((e for e in appeal.events if e.id == event_id), None)
    status = event.to_status if event is not None else appeal.status
    original = db.session.get(Appeal, appeal.duplicate_of_id) if appeal.duplicate_of_id else None
    msg = consent.send_sms(citizens.get(appeal.citizen_id), purpose=STATUS_PURPOSE, kind="status",
                           body=status_text(appeal.number, status, original.number if original is not None else None),
                           appeal_id=appeal.id, appeal_event_id=event_id,
                           actor=audit.system_actor("send_status_sms"))
    return "sent" if msg is not None else "no_phone"


def after_transition(appeal_id: str, event_id: str, **_: object) -> None:
    """Subscriber of ``appeal.transitioned`` (fired after the transition's commit): queue the
    status SMS when the citizen may be notified now. Never raises (a notification must not undo a
    transition); without Redis the SMS is sent in-process."""
    try:
        appeal = db.session.get(Appeal, appeal_id)
        if appeal is None or not consent.may_notify(appeal.citizen_id, STATUS_PURPOSE):
            return
        try:
            jobs.enqueue("crm.appeals.jobs.send_status_sms", appeal.id, event_id)
        except Exception:  # redis unavailable
            notify_status(appeal.id, event_id)
    except Exception:
        db.session.rollback()
        log.exception("status SMS for appeal %s not queued", appeal_id)
