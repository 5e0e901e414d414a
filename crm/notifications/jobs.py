"""Background jobs of the notifications package. Each takes ids and is safe to run twice."""
from __future__ import annotations

from crm.jobs import job, job_context
from crm.notifications import services


#: Delivery retries: RQ's Retry after 30 s, 2 min, 10 min and 30 min (then the message is ``failed``).
RETRY_INTERVALS_S = (30, 120, 600, 1800)


@job(timeout_s=60, retries=len(RETRY_INTERVALS_S), retry_intervals_s=RETRY_INTERVALS_S, result_ttl_s=3600)
def deliver_job(message_id: str) -> str:
    """Deliver one queued notification (:func:`crm.notifications.services.deliver`). A transport
    failure raises, so RQ retries with backoff; the last try marks the message ``failed``."""
    with job_context():
        return services.deliver(message_id)


@job(timeout_s=120)
def release_due_job() -> int:
    """Periodic (``notifications-release`` in :mod:`crm.schedule`, every ``CRM_NOTIFY_RELEASE_EVERY_S``):
    queue the deferred messages whose time has come but whose own RQ job is gone (deferred while Redis
    was down, or its scheduled job lost); :func:`crm.notifications.services.release_due`. A message is
    taken for sending once, so one also queued by its own job is still sent once. Returns how many."""
    with job_context():
        return services.release_due()
