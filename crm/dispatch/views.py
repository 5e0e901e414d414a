"""Dispatch pages: «Нарушения сроков» (the supervisors' breach queue) and «Уведомления»."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.appeals import services as appeals
from crm.dispatch import services
from crm.db import bounded_int
from crm.errors import CrmError, InvalidInput
from crm.security.permissions import roles_required
from crm.security.redirects import local_target
from crm.timeutil import day_end, out_of_range

bp = Blueprint("dispatch", __name__)


@bp.app_context_processor
def dispatch_menu():
    """``unread_notifications()`` for the menu's badge (one count query, only when the menu asks)."""
    def unread() -> int:
        return services.unread_count(current_user) if current_user.is_authenticated else 0
    return {"unread_notifications": unread}


@bp.get("/breaches")
@roles_required(*services.SUPERVISORS)
def breach_list():
    """The breach queue: not yet acknowledged (default), acknowledged (``?status=acknowledged``) or all."""
    status = request.args.get("status") if request.args.get("status") in ("open", "acknowledged", "all") else "open"
    acknowledged = {"open": False, "acknowledged": True, "all": None}[status]
    rows = [services.breach_view(b) for b in services.breaches(acknowledged=acknowledged)]
    return render_template("dispatch/breaches.html", breaches=rows, status=status)


@bp.post("/breaches/<int:breach_id>/acknowledge")
@roles_required(*services.SUPERVISORS)
def breach_acknowledge(breach_id: int):
    try:
        services.acknowledge(current_user, breach_id)
        flash(_("Нарушение принято в работу."), "success")
    except CrmError as exc:
        flash(str(exc), "error")
    return redirect(local_target(request.form.get("next"), url_for("dispatch.breach_list")))


@bp.get("/notifications")
@roles_required("supervisor", "admin", "executor")
def notification_list():
    rows = services.notifications_for(current_user)
    return render_template("dispatch/notifications.html",
                           notifications=[(n, services.notification_text(n)) for n in rows])


@bp.post("/notifications/<int:notification_id>/read")
@roles_required("supervisor", "admin", "executor")
def notification_read(notification_id: int):
    try:
        services.mark_read(current_user, notification_id)
    except CrmError as exc:
        flash(str(exc), "error")
    return redirect(url_for("dispatch.notification_list"))


@bp.post("/appeals/<appeal_id>/assign")
@roles_required(*services.DISPATCHERS)
def appeal_assign(appeal_id: str):
    """The appeal page's «Передать исполнителю» form (:func:`crm.appeals.services.assign`)."""
    appeal = appeals.get(appeal_id) or abort(404)
    executor_id = bounded_int(request.form.get("executor_id"), low=1)  # a number past INTEGER: 500 before
    try:
        if executor_id is None:
            raise appeals.AppealError(_("Выберите исполнителя."), "executor_id")
        appeals.assign(appeal, executor_id, user_id=current_user.id)
        flash(_("Обращение передано исполнителю."), "success")
    except appeals.AppealError as exc:
        flash(str(exc), "error")
    return redirect(url_for("appeals.appeal_detail", appeal_id=appeal.id))


# --- the executor's steps and the supervisors' decision ---------------------------------------------

def _back(appeal_id: str):
    return redirect(url_for("appeals.appeal_detail", appeal_id=appeal_id))


@bp.post("/appeals/<appeal_id>/work/<step>")
@roles_required("executor")
def executor_step(appeal_id: str, step: str):
    """The executor's buttons on the appeal page: ``accept``, ``progress``, ``done``, ``extension``."""
    appeal = appeals.get_for(current_user, appeal_id) or abort(404)
    comment = request.form.get("comment") or ""
    try:
        if step == "accept":
            services.accept(current_user, appeal, comment or None)
            flash(_("Обращение принято в работу."), "success")
        elif step == "progress":
            services.report_progress(current_user, appeal, comment)
            flash(_("Отчёт о ходе работ записан."), "success")
        elif step == "done":
            services.report_done(current_user, appeal, comment)
            flash(_("Работы отмечены выполненными."), "success")
        elif step == "extension":
            raw = (request.form.get("until") or "").strip()
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                raise InvalidInput(_("Укажите новый срок (дату)."), field="until") from None
            if (err := out_of_range(day)) is not None:  # year 1 overflowed the UTC conversion: 500
                raise err
            until = day_end(day)
            services.request_extension(current_user, appeal, until, request.form.get("reason") or "")
            flash(_("Запрос о продлении срока отправлен руководителю."), "success")
        else:
            abort(404)
    except CrmError as exc:
        flash(str(exc), "error")
    return _back(appeal.id)


@bp.post("/appeals/<appeal_id>/work/address")
@roles_required("executor")
def executor_address(appeal_id: str):
    """«Показать адрес для выполнения работ»: the appeal page with the address (the read logged)."""
    appeal = appeals.get_for(current_user, appeal_id) or abort(404)
    try:
        found = services.address_for_work(current_user, appeal)
    except CrmError as exc:
        flash(str(exc), "error")
        return _back(appeal.id)
    flash(_("Адрес для выполнения работ: %(address)s", address=", ".join(
        x for x in (found["address"], found["apartment"] and _("кв. %(n)s", n=found["apartment"])) if x)
        or "—"), "info")
    return _back(appeal.id)


@bp.post("/extension-requests/<int:request_id>/decision")
@roles_required(*services.SUPERVISORS)
def extension_decide(request_id: int):
    row = services.get_extension(request_id) or abort(404)
    approve = request.form.get("approve") == "1"
    try:
        services.decide_extension(current_user, request_id, approve=approve, comment=request.form.get("comment"))
        flash(_("Срок продлён.") if approve else _("В продлении отказано."), "success")
    except CrmError as exc:
        flash(str(exc), "error")
    return _back(row.appeal_id)


@bp.get("/executors")
@roles_required(*services.SUPERVISORS)
def executor_stats():
    """«Исполнители»: each executor's load and lateness."""
    return render_template("dispatch/executors.html", rows=services.executor_stats(),
                           window=services.STATS_WINDOW_DAYS)
