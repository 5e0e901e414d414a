"""Background jobs of the appeals package. Each takes ids and is safe to run twice."""
from __future__ import annotations

from crm.appeals import notifications, services
from crm.jobs import job, job_context


@job(timeout_s=60, retries=2, retry_intervals_s=(30, 120), result_ttl_s=3600)
def send_status_sms(appeal_id: str, event_id: str) -> str:
    """Queue the citizen's status messages (SMS, e-mail) of one appeal transition if consent allows it
    at this moment (:func:`crm.appeals.notifications.notify_status`). Returns its outcome."""
    with job_context():
        return notifications.notify_status(appeal_id, event_id)


@job(timeout_s=60, retries=2, retry_intervals_s=(30, 120), result_ttl_s=3600)
def send_registration_notice(appeal_id: str) -> str:
    """Queue the citizen's message with the new appeal's number if consent allows it at this moment
    (:func:`crm.appeals.notifications.notify_registration`). Returns its outcome."""
    with job_context():
        return notifications.notify_registration(appeal_id)


@job(timeout_s=600, result_ttl_s=3600)
def warn_clocks_job() -> dict:
    """Periodic job (crm.schedule, every ``CRM_CLOCK_WARN_EVERY_S``): record the 50/80/100 % warnings of
    the appeals' clocks (:func:`crm.appeals.services.warn_clocks`). Returns its counts."""
    with job_context():
        return services.warn_clocks()
