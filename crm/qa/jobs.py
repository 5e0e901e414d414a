"""Background jobs of the QA package. Each takes plain values and is safe to run twice."""
from __future__ import annotations

from datetime import date


def run_sampling(day: str | None = None, seed: int | None = None) -> dict[str, int]:
    """Fill the review queues for the periods containing ``day`` (``YYYY-MM-DD``; default today in
    ``CRM_TIMEZONE``): :func:`crm.qa.services.run_sampling`. Idempotent for a period, so it can run
    daily (e.g. ``jobs.enqueue("crm.qa.jobs.run_sampling")`` from a scheduler or cron); returns
    ``{rule kind: calls added}``."""
    from crm.jobs import job_context
    from crm.qa import services

    with job_context():
        return services.run_sampling(date.fromisoformat(day) if day else None, seed=seed)


SAMPLING_EVERY_S = 3600


def sampling_job() -> dict[str, int]:
    """Periodic job: run the sampling rules for today's periods (idempotent), then schedule itself
    again in ``CRM_QA_SAMPLING_EVERY_S`` seconds (default hourly; fixed job id: one schedule)."""
    added = run_sampling()
    from crm.jobs import job_context

    with job_context():
        schedule_sampling()
    return added


def schedule_sampling() -> None:
    """Put the next sampling run on the default queue (called at worker start)."""
    from datetime import timedelta

    from flask import current_app

    from crm import jobs

    q = jobs.queue("default")
    every = int(current_app.config.get("CRM_QA_SAMPLING_EVERY_S") or SAMPLING_EVERY_S)
    q.enqueue_in(timedelta(seconds=every), "crm.qa.jobs.sampling_job", job_id=q.name + "-qa-sampling",
                 result_ttl=3600, job_timeout=1800)
