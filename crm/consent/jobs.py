"""Background jobs of the consent package. Each takes ids and is safe to run twice."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from crm.jobs import job_context

RETENTION_EVERY_S = 86400


def retention_job(reschedule: bool = True) -> dict:
    """Periodic job: one retention run (:func:`crm.consent.retention.run`), then schedule itself
    again in ``CRM_RETENTION_EVERY_S`` seconds (default daily; fixed job id: one schedule).
    Returns the run's counts."""
    from crm.consent import retention

    with job_context():
        try:
            row = retention.run()
            return {"run": row.id, "erased": row.erased, "deidentified": row.deidentified, "pending": row.pending}
        finally:
            if reschedule:
                schedule_retention()


def schedule_retention() -> None:
    """Put the next retention run on the default queue (call at worker start, like
    :func:`crm.calls.jobs.schedule_reconcile`)."""
    from crm import jobs

    q = jobs.queue("default")
    every = int(current_app.config.get("CRM_RETENTION_EVERY_S") or RETENTION_EVERY_S)
    q.enqueue_in(timedelta(seconds=every), "crm.consent.jobs.retention_job", job_id=q.name + "-consent-retention",
                 result_ttl=86400, job_timeout=3600)
