"""Every periodic job, in one place, and :func:`plant`, which puts them in RQ's schedule.

Each entry runs a declared job (:func:`crm.jobs.job`) every ``every`` seconds (a config key, so a
deployment can change it). :func:`plant` gives each entry one RQ job with a fixed id
(``<queue>-<name>``), first run one interval from now, and RQ 2's own repetition: ``Repeat``
schedules it again one interval after each success and ``Retry`` one interval after each failure
(the failure is kept as the job's latest result), both run by the scheduler of ``crm worker``
(``with_scheduler``). No job schedules itself.

The worker calls :func:`plant` at start and in its maintenance tasks: an entry whose job is
scheduled, queued or running with the same interval is left alone, so restarting workers (or
several workers) never duplicates a job; a missing, finished, failed or re-timed one is planted
again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import current_app
from rq import Repeat, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from crm import jobs
from crm.appeals.jobs import warn_clocks_job
from crm.calls.jobs import reconcile_calls
from crm.consent.jobs import retention_job
from crm.dpo.alerts import scan_job
from crm.notifications.jobs import release_due_job
from crm.qa.jobs import sampling_job
from crm.security.checkpoints import checkpoint_job
from crm.telephony.jobs import inbox_kick_job, surge_check_job

#: Runs (and retries) one planting allows; at one per 5 min, about nine years.
REPEATS = 1_000_000

_LIVE = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED)


@dataclass(frozen=True)
class Periodic:
    """One periodic job: ``name`` (the job id's suffix), the declared job ``func``, and the config
    key ``every`` giving its interval in seconds."""

    name: str
    func: Callable
    every: str

    def interval_s(self, app=None) -> int:
        return int((app or current_app).config[self.every])

    def job_id(self, app=None) -> str:
        return f"{jobs.queue(self.func.job_spec.queue, app).name}-{self.name}"


SCHEDULE: tuple[Periodic, ...] = (
    Periodic("reconcile-calls", reconcile_calls, "CRM_RECONCILE_EVERY_S"),
    Periodic("audit-checkpoint", checkpoint_job, "CRM_AUDIT_CHECKPOINT_EVERY_S"),
    Periodic("audit-alert-scan", scan_job, "CRM_AUDIT_ALERT_SCAN_EVERY_S"),
    Periodic("consent-retention", retention_job, "CRM_RETENTION_EVERY_S"),
    Periodic("qa-sampling", sampling_job, "CRM_QA_SAMPLING_EVERY_S"),
    Periodic("appeal-clock-warnings", warn_clocks_job, "CRM_CLOCK_WARN_EVERY_S"),
    Periodic("notifications-release", release_due_job, "CRM_NOTIFY_RELEASE_EVERY_S"),
    Periodic("queue-surge", surge_check_job, "CRM_QUEUE_SURGE_CHECK_EVERY_S"),
    Periodic("telephony-inbox", inbox_kick_job, "CRM_TELEPHONY_INBOX_KICK_EVERY_S"),
)


def _current(entry: Periodic, q) -> Job | None:
    try:
        return Job.fetch(entry.job_id(), connection=q.connection)
    except NoSuchJobError:
        return None


def plant(only: tuple[str, ...] | list[str] | None = None) -> dict[str, str]:
    """Reconcile RQ's schedule with :data:`SCHEDULE` (every entry, or the names in ``only``).

    Returns ``{name: "kept" | "planted"}``: ``kept`` when the entry's job is scheduled, queued,
    deferred or running with the configured interval; otherwise any old job of that id is deleted
    and a new one scheduled one interval from now. Needs an app context; raises redis errors when
    Redis is down."""
    out = {}
    for entry in SCHEDULE:
        if only is not None and entry.name not in only:
            continue
        spec = entry.func.job_spec
        q = jobs.queue(spec.queue)
        every = entry.interval_s()
        old = _current(entry, q)
        if old is not None and old.get_status(refresh=False) == JobStatus.STARTED:
            out[entry.name] = "kept"  # running now; a changed interval is taken at the next planting
            continue
        if (old is not None and old.get_status(refresh=False) in _LIVE and old.repeat_intervals == [every]
                and old.func_name == spec.name):
            out[entry.name] = "kept"
            continue
        if old is not None:
            old.delete()  # and out of every registry it sits in
        q.enqueue_in(timedelta(seconds=every), spec.name, job_id=entry.job_id(), job_timeout=spec.timeout_s,
                     result_ttl=spec.result_ttl_s, failure_ttl=spec.failure_ttl_s,
                     repeat=Repeat(times=REPEATS, interval=every), retry=Retry(max=REPEATS, interval=every))
        out[entry.name] = "planted"
    return out


def unplant() -> int:
    """Delete every periodic job of :data:`SCHEDULE` (tests; a deployment that stops them). Returns
    how many existed."""
    n = 0
    for entry in SCHEDULE:
        old = _current(entry, jobs.queue(entry.func.job_spec.queue))
        if old is not None:
            old.delete()
            n += 1
    return n


def status() -> list[dict]:
    """Each periodic job for the monitor: ``{"name", "func", "every_s", "job_id", "status" (RQ's,
    or "missing"), "next_at" (aware UTC or None), "last_ended_at", "error" (the latest failure's
    last line or None)}``. Needs an app context; raises redis errors when Redis is down."""
    rows = []
    for entry in SCHEDULE:
        q = jobs.queue(entry.func.job_spec.queue)
        job = _current(entry, q)
        status = job.get_status(refresh=False) if job is not None else None
        next_at = None
        if status == JobStatus.SCHEDULED:
            try:
                next_at = ScheduledJobRegistry(queue=q).get_scheduled_time(job.id)
            except NoSuchJobError:
                next_at = None
        rows.append({"name": entry.name, "func": entry.func.job_spec.name, "every_s": entry.interval_s(),
                     "job_id": entry.job_id(), "status": status.value if status else "missing", "next_at": next_at,
                     "last_ended_at": job.ended_at if job is not None else None,
                     "error": jobs.job_error(job) if job is not None else None})
    return rows
