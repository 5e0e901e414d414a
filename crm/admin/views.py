"""``/admin/jobs``: queues, workers with their heartbeats, periodic, running and failed jobs (RQ's
registries, :func:`crm.jobs.overview`), with retry of failed jobs. Administrators only."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from redis import RedisError

from crm import jobs, schedule
from crm.i18n import N_, Labels
from crm.security.permissions import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: RQ's job and worker states in Russian (translated where shown: :class:`crm.i18n.Labels`).
STATUS_RU = {"queued": N_("в очереди"), "started": N_("выполняется"), "scheduled": N_("запланировано"),
             "deferred": N_("ожидает"), "finished": N_("выполнено"), "failed": N_("ошибка"),
             "stopped": N_("остановлено"), "canceled": N_("отменено"), "missing": N_("не запланировано"),
             "busy": N_("занят"), "idle": N_("свободен"), "suspended": N_("приостановлен")}
QUEUE_RU = {"transcription": N_("расшифровка"), "default": N_("общая")}


@bp.get("/jobs")
@roles_required("admin")
def job_monitor():
    try:
        overview, periodic, error = jobs.overview(), schedule.status(), None
    except RedisError as exc:
        overview, periodic, error = None, [], f"{type(exc).__name__}: {exc}"
    return render_template("admin/jobs.html", ov=overview, periodic=periodic, error=error, status_ru=Labels(STATUS_RU),
                           queue_ru=Labels(QUEUE_RU)), 200 if error is None else 503


@bp.post("/jobs/<job_id>/retry")
@roles_required("admin")
def job_retry(job_id: str):
    try:
        jobs.retry(job_id)
        flash(_("Задание %(job)s снова поставлено в очередь.", job=job_id), "ok")
    except LookupError:
        flash(_("Задания %(job)s нет среди заданий с ошибкой.", job=job_id), "error")
    return redirect(url_for("admin.job_monitor"))


@bp.post("/jobs/retry-all")
@roles_required("admin")
def job_retry_all():
    n = jobs.retry_all()
    flash(_("Снова поставлено в очередь заданий: %(count)s.", count=n), "ok")
    return redirect(url_for("admin.job_monitor"))
