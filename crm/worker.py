"""The RQ worker process (top layer: it builds the app and plants the schedule).

``crm worker`` starts the embedded Redis when ``REDIS_URL`` is unset, mends calls left by a crash,
writes a checkpoint of the access log, plants the periodic jobs (:mod:`crm.schedule`), queues the
re-keying of recordings stored before migration 0018 when there are any, and runs
:class:`Worker` on every queue with RQ's scheduler (which runs scheduled, retried and repeated
jobs). ``rq worker -w crm.worker.Worker`` works too: the worker makes its app on the first job.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import click
import redis
from flask import Flask, current_app, has_app_context
from flask.cli import with_appcontext
from rq import SimpleWorker

from crm import create_app, jobs, schedule
from crm.db import db
from crm.calls.services import reconcile, shared_key_recordings
from crm.security.checkpoints import write_checkpoint
from crm.telephony import inbox as telephony_inbox

log = logging.getLogger(__name__)


def remember_failure(job, exc_type, exc_value, tb) -> bool:
    """RQ exception handler: keep the latest failure in ``job.meta["last_failure"]`` (``{"at": ISO
    UTC, "error": "Type: message"}``). A job that RQ retries (the periodic ones, a transcription)
    gets no failed result of its own, so this is where the monitor finds why it failed. Returns
    True: the next handler (RQ's default) runs too."""
    job.meta["last_failure"] = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                "error": f"{exc_type.__name__}: {exc_value}"[:500]}
    job.save_meta()
    return True


class Worker(SimpleWorker):
    """A non-forking RQ worker whose jobs run in its Flask app's context.

    Non-forking: the Whisper model is loaded in this process on the first job and reused
    (CTranslate2 is not fork-safe, pitfalls.md). ``app``: the app whose context jobs run in (default:
    the current app, else one made with :func:`crm.create_app` on the first job). ``plant_schedule``:
    also reconcile the periodic jobs in RQ's maintenance tasks (every ``maintenance_interval`` s)."""

    def __init__(self, *args, app: Flask | None = None, plant_schedule: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.push_exc_handler(remember_failure)
        self.app = app
        self.plant_schedule = plant_schedule

    def _app(self) -> Flask:
        if self.app is None:
            self.app = current_app._get_current_object() if has_app_context() else create_app()
        return self.app

    def work(self, burst: bool = False, *args, **kwargs):
        self._burst = burst
        return super().work(burst, *args, **kwargs)

    def subscribe(self):
        """RQ's command channel (``rq.command``: shutdown, kill the running job) — not for a burst
        worker, which ends by itself: RQ's listener thread waits up to 60 s for its subscription
        (``run_in_thread(sleep_time=60)``), so a burst worker that found its job at once could take a
        minute to stop."""
        if getattr(self, "_burst", False):
            self.pubsub_thread = None
            return
        super().subscribe()

    def execute_job(self, job, queue):
        with self._app().app_context():
            return super().execute_job(job, queue)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        if self.plant_schedule:
            with self._app().app_context():
                try:
                    schedule.plant()
                except Exception:  # noqa: BLE001 - the worker keeps working; the next round tries again
                    log.exception("planting the periodic jobs failed")


def make_worker(app: Flask, *, plant_schedule: bool = False, queues: tuple[str, ...] | None = None) -> Worker:
    """A :class:`Worker` over ``queues`` of ``app`` (default: every one, :data:`crm.jobs.QUEUES`, in
    that order of priority). Raises ValueError for an unknown queue name."""
    names = tuple(queues or jobs.QUEUES)
    unknown = [q for q in names if q not in jobs.QUEUES]
    if unknown:
        raise ValueError(f"unknown queue(s) {', '.join(unknown)}; the queues are {', '.join(jobs.QUEUES)}")
    return Worker([jobs.queue(q, app) for q in names], connection=jobs.redis_connection(app), app=app,
                  plant_schedule=plant_schedule)


def run(burst: bool = False, echo=click.echo, queues: tuple[str, ...] | None = None) -> None:
    """Start a worker for the current app (see the module docstring). ``burst``: exit when the
    queues are empty, without writing a checkpoint or planting the schedule. ``queues``: serve only
    these (e.g. ``("telephony",)``: a worker that keeps the PBX's events flowing while the others
    transcribe); such a worker does none of the start-up work (reconciling crashed calls — another
    worker's running transcription would look crashed —, the checkpoint, the schedule)."""
    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        jobs.start_embedded(Path(app.instance_path))
    if queues:
        worker = make_worker(app, queues=queues)
        db.session.remove()
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
        return
    counts = reconcile()
    if any(counts.values()):
        echo(f"reconciled calls left by a crash: {counts}")
    if not burst:
        try:  # one at start, so a fresh install (or a restart after a crash) is anchored at once
            write_checkpoint()
        except Exception as exc:  # noqa: BLE001 - the schedule retries; the worker must start
            echo(f"checkpoint at start failed: {exc}", err=True)
        planted = schedule.plant()
        echo("periodic jobs: " + ", ".join(f"{name} {state}" for name, state in planted.items()))
        if shared_key_recordings(1):  # stored before migration 0018, under the citizen's key: one key each
            jobs.enqueue("crm.calls.jobs.rekey_recordings_job", job_id=f"{app.config['CRM_QUEUE_PREFIX']}rekey-recordings")
            echo("recordings stored before migration 0018 are being re-keyed in the background")
    # End the start-up checks' transaction before the loop: on SQLite every transaction begins IMMEDIATE
    # (crm.db), so one left open here would hold the write lock for the worker's whole life.
    db.session.remove()
    make_worker(app, plant_schedule=not burst).work(burst=burst, with_scheduler=True, logging_level="INFO")


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
@click.option("--queues", default="", metavar="NAMES",
              help="comma-separated queues to serve only (telephony, transcription, default); "
                   "e.g. --queues telephony for a worker that builds the PBX's events while others transcribe")
@with_appcontext
def worker_cmd(burst, queues):
    """Run an RQ worker for the telephony, transcription and default queues (in that order), with RQ's
    scheduler (retries, the periodic jobs of crm.schedule, which it plants at start)."""
    names = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = [q for q in names if q not in jobs.QUEUES]
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}; one of {', '.join(jobs.QUEUES)}",
                                 param_hint="--queues")
    run(burst=burst, queues=names or None)


def _when(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "—"


@click.command("status")
@click.option("--retry", "retry_id", metavar="JOB_ID", help="put the failed job JOB_ID back on its queue first")
@click.option("--retry-all", is_flag=True, help="put every failed job back on its queue first")
@with_appcontext
def status_cmd(retry_id, retry_all):
    """Queues (length, and RQ's started, scheduled, deferred and failed registries), workers (name,
    state, queues, last heartbeat, current job id), periodic, running and failed jobs (id, function,
    queue, time and the exception's class only: job arguments and error messages may hold personal
    data); the console twin of /admin/jobs. With --retry/--retry-all, failed jobs are requeued first.
    Exits 1 when Redis is down or JOB_ID is not a failed job."""
    try:
        if retry_id:
            try:
                job = jobs.retry(retry_id)
            except LookupError as exc:
                raise click.ClickException(str(exc))
            click.echo(f"requeued {job.id} on {job.origin}")
        if retry_all:
            click.echo(f"requeued {jobs.retry_all()} failed jobs")
        ov, periodic = jobs.overview(), schedule.status()
        backlog = telephony_inbox.backlog()
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis unavailable: {type(exc).__name__}: {exc}")
    click.echo("queues:")
    for q in ov["queues"]:
        click.echo(f"  {q['name']}: {q['queued']} queued, {q['started']} started, {q['scheduled']} scheduled, "
                   f"{q['deferred']} deferred, {q['failed']} failed")
    click.echo(f"telephony inbox: {backlog['waiting']} waiting, {backlog['processing']} being built, "
               f"{backlog['failed']} failed" + (" (crm telephony inbox --requeue-failed)" if backlog["failed"] else ""))
    click.echo("workers:")
    for w in ov["workers"]:
        click.echo(f"  {w['name']} ({w['state']}; {', '.join(w['queues'])}): last heartbeat "
                   f"{_when(w['last_heartbeat'])}{' STALE' if w['stale'] else ''}, current job {w['current_job'] or '—'}, "
                   f"{w['successful']} done, {w['failed']} failed")
    if not ov["workers"]:
        click.echo("  none (start one: crm worker)")
    click.echo("periodic jobs:")
    for p in periodic:
        click.echo(f"  {p['name']} every {p['every_s']} s: {p['status']}, next {_when(p['next_at'])}, "
                   f"last {_when(p['last_ended_at'])}"
                   + (f", last error: {jobs.error_class(p['error'])}" if p["error"] else ""))
    click.echo("running:" + ("" if ov["running"] else " none"))
    for j in ov["running"]:
        click.echo(f"  {j['id']} {j['func']} on {j['queue']} since {_when(j['started_at'])}")
    click.echo("failed:" + ("" if ov["failed"] else " none"))
    for j in ov["failed"]:
        click.echo(f"  {j['id']} {j['func']} on {j['queue']} at {_when(j['ended_at'])}: {j['error_class'] or '—'}")
    if ov["failed"]:
        click.echo("retry: crm status --retry JOB_ID | --retry-all")
