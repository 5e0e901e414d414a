"""``/admin/jobs``: queues, workers with their heartbeats, periodic, running and failed jobs (RQ's
registries, :func:`crm.jobs.overview`), with retry of failed jobs. Administrators only."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from redis import RedisError

from crm import jobs, schedule
from crm.security.permissions import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: RQ's job and worker states in Russian.
STATUS_RU = {"queued": "в очереди", "started": "выполняется", "scheduled": "запланировано", "deferred": "ожидает",
             "finished": "выполнено", "failed": "ошибка", "stopped": "остановлено", "canceled": "отменено",
             "missing": "не запланировано", "busy": "занят", "idle": "свободен", "suspended": "приостановлен"}
QUEUE_RU = {"transcription": "расшифровка", "default": "общая"}


@bp.get("/jobs")
@roles_required("admin")
def job_monitor():
    try:
        overview, periodic, error = jobs.overview(), schedule.status(), None
    except RedisError as exc:
        overview, periodic, error = None, [], f"{type(exc).__name__}: {exc}"
    return render_template("admin/jobs.html", ov=overview, periodic=periodic, error=error, status_ru=STATUS_RU,
                           queue_ru=QUEUE_RU), 200 if error is None else 503


@bp.post("/jobs/<job_id>/retry")
@roles_required("admin")
def job_retry(job_id: str):
    try:
        jobs.retry(job_id)
        flash(f"Задание {job_id} снова поставлено в очередь.", "ok")
    except LookupError:
        flash(f"Задания {job_id} нет среди заданий с ошибкой.", "error")
    return redirect(url_for("admin.job_monitor"))


@bp.post("/jobs/retry-all")
@roles_required("admin")
def job_retry_all():
    n = jobs.retry_all()
    flash(f"Снова поставлено в очередь заданий: {n}.", "ok")
    return redirect(url_for("admin.job_monitor"))
