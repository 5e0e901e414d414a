"""Background jobs of the consent package. Each takes ids and is safe to run twice."""
from __future__ import annotations

from crm.jobs import job, job_context
from crm.consent import retention, selfservice


@job(timeout_s=3600, result_ttl_s=86400)
def retention_job() -> dict:
    """Periodic job (crm.schedule, every ``CRM_RETENTION_EVERY_S``): one retention run
    (:func:`crm.consent.retention.run`). Returns the run's counts."""

    with job_context():
        row = retention.run()
        return {"run": row.id, "erased": row.erased, "deidentified": row.deidentified, "pending": row.pending}


@job(timeout_s=60, retries=5, retry_intervals_s=(5, 15, 30, 60, 120), result_ttl_s=3600)
def deliver_code_job(grant_id: str) -> str:
    """Send the one-time self-service code of grant ``grant_id``, or nothing for a decoy
    (:func:`crm.consent.selfservice.deliver_code`). A gateway failure raises, and RQ retries the
    job (5 times, over about 4 minutes: within the code's 10-minute life); when the last attempt
    fails, the sealed code and the grant's data key are deleted before the job fails."""
    from rq import get_current_job

    current = get_current_job()
    final = not (current is not None and current.retries_left)
    with job_context():
        return selfservice.deliver_code(grant_id, final=final)
