"""Background jobs of the CSAT package. Each takes ids and plain values and is safe to run twice."""
from __future__ import annotations

from crm.csat import services
from crm.jobs import job, job_context


@job(timeout_s=60, retries=2, retry_intervals_s=(30, 120), result_ttl_s=3600)
def send_survey_job(appeal_id: str, cycle: int, base_url: str | None) -> str:
    """Send the satisfaction survey of closure ``cycle`` of appeal ``appeal_id`` if the citizen's
    ``csat_survey`` consent allows it at this moment (:func:`crm.csat.services.send_survey`). Returns
    its outcome; a gateway failure raises, and RQ retries the job."""
    with job_context():
        return services.send_survey(appeal_id, cycle, base_url)
