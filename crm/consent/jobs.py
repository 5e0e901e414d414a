"""Background jobs of the consent package. Each takes ids and is safe to run twice."""
from __future__ import annotations

from crm.jobs import job, job_context
from crm.consent import retention


@job(timeout_s=3600, result_ttl_s=86400)
def retention_job() -> dict:
    """Periodic job (crm.schedule, every ``CRM_RETENTION_EVERY_S``): one retention run
    (:func:`crm.consent.retention.run`). Returns the run's counts."""

    with job_context():
        row = retention.run()
        return {"run": row.id, "erased": row.erased, "deidentified": row.deidentified, "pending": row.pending}
