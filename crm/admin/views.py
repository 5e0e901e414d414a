"""``/admin/jobs``: queues, workers with their heartbeats, periodic, running and failed jobs (RQ's
registries, :func:`crm.jobs.overview`), with retry of failed jobs; ``/admin/calendar``: the working
calendar's overrides (:mod:`crm.clocks.services`). Administrators only."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from redis import RedisError
from wtforms import DateField, FloatField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from crm import jobs, schedule
from crm.clocks import services as clock_calendar
from crm.errors import InvalidInput, NotFound
from crm.i18n import N_, Labels
from crm.security.permissions import roles_required
from crm.security.inputs import year_in_range

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


# --- /admin/calendar: the working calendar's overrides (crm.clocks.services) -----------------------

#: The kinds of day an administrator may set, as the page names them (translated where shown).
DAY_KINDS = {"holiday": N_("нерабочий (праздничный) день"), "working": N_("рабочий день (перенос)"),
             "shortened": N_("сокращённый рабочий день")}


class OverrideForm(FlaskForm):
    """One day of the calendar: what it is, a shortened day's length, and why."""

    day = DateField(_l("Дата"), validators=[DataRequired(message=_l("Укажите дату")), year_in_range])
    kind = SelectField(_l("Что это за день"), choices=[(k, _l(v)) for k, v in DAY_KINDS.items()])
    hours = FloatField(_l("Часов (для сокращённого дня; пусто — на час меньше)"),
                       validators=[Optional(), NumberRange(min=0.25, max=24)])
    note = StringField(_l("Основание (постановление, региональный закон)"), validators=[Optional(), Length(max=300)])


@bp.route("/calendar", methods=["GET", "POST"])
@roles_required("admin")
def calendar_page():
    """The overrides on top of the production calendar (the ``holidays`` package): list, add or
    replace a day (POST), each change logged by the service."""
    form = OverrideForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                clock_calendar.set_override(current_user, form.day.data, form.kind.data, hours=form.hours.data,
                                            note=form.note.data)
            except InvalidInput as exc:
                getattr(form, exc.field or "kind", form.kind).errors.append(str(exc))
            else:
                flash(_("%(day)s: %(kind)s.", day=form.day.data.strftime("%d.%m.%Y"), kind=_(DAY_KINDS[form.kind.data])),
                      "success")
                return redirect(url_for("admin.calendar_page"))
        status = 422
    return render_template("admin/calendar.html", form=form, overrides=clock_calendar.overrides(),
                           kinds=Labels(DAY_KINDS)), status


@bp.post("/calendar/<day>/remove")
@roles_required("admin")
def calendar_remove(day: str):
    try:
        when = date.fromisoformat(day)
    except ValueError:
        abort(404)
    try:
        clock_calendar.remove_override(current_user, when)
    except NotFound:
        flash(_("Для %(day)s нет особой отметки.", day=when.strftime("%d.%m.%Y")), "error")
    else:
        flash(_("Отметка для %(day)s снята: действует производственный календарь.", day=when.strftime("%d.%m.%Y")),
              "success")
    return redirect(url_for("admin.calendar_page"))
