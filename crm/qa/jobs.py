"""Background jobs of the QA package. Each takes plain values and is safe to run twice."""
from __future__ import annotations

from datetime import date

from crm.jobs import job, job_context
from crm.qa import services


@job(timeout_s=1800, result_ttl_s=3600)
def run_sampling(day: str | None = None, seed: int | None = None) -> dict[str, int]:
    """Fill the review queues for the periods containing ``day`` (``YYYY-MM-DD``; default today in
    ``CRM_TIMEZONE``): :func:`crm.qa.services.run_sampling`. Idempotent for a period, so it can run
    daily (e.g. ``jobs.enqueue("crm.qa.jobs.run_sampling")`` from a scheduler or cron); returns
    ``{rule kind: calls added}``."""

    with job_context():
        return services.run_sampling(date.fromisoformat(day) if day else None, seed=seed)


@job(timeout_s=1800, result_ttl_s=3600)
def sampling_job() -> dict[str, int]:
    """Periodic job (crm.schedule, every ``CRM_QA_SAMPLING_EVERY_S``): run the sampling rules for
    today's periods (idempotent). Returns ``{rule kind: calls added}``."""
    return run_sampling()
