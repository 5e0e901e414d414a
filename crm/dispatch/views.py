"""Dispatch pages: «Нарушения сроков» (the supervisors' breach queue) and «Уведомления»."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.dispatch import services
from crm.errors import CrmError
from crm.security.permissions import roles_required
from crm.security.redirects import local_target

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
