"""Background jobs of the QA package. Each takes plain values and is safe to run twice."""
from __future__ import annotations

from datetime import date


def run_sampling(day: str | None = None, seed: int | None = None) -> dict[str, int]:
    """Fill the review queues for the periods containing ``day`` (``YYYY-MM-DD``; default today in
    ``CRM_TIMEZONE``): :func:`crm.qa.services.run_sampling`. Idempotent for a period, so it can run
    daily (e.g. ``jobs.enqueue("crm.qa.jobs.run_sampling")`` from a scheduler or cron); returns
    ``{rule kind: calls added}``."""
    from crm.calls.jobs import job_context
    from crm.qa import services

    with job_context():
        return services.run_sampling(date.fromisoformat(day) if day else None, seed=seed)
