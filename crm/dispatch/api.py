"""``/api/v1/breaches`` (the supervisors' breach queue) and ``/api/v1/notifications`` (staff
notifications). The services own the transactions."""
from __future__ import annotations

from flask import g

from crm.api import Blueprint, token_required
from crm.dispatch import services
from crm.dispatch.schemas import (BreachListSchema, BreachQuerySchema, BreachSchema, NotificationListSchema,
                                  NotificationQuerySchema, NotificationSchema)

bp = Blueprint("api_dispatch", __name__, description="Dispatch: the breach queue, staff notifications")


@bp.route("/breaches", methods=["GET"])
@token_required(*services.SUPERVISORS, session_ok=True)
@bp.query(BreachQuerySchema)
@bp.response(200, BreachListSchema)
def breach_list(args: dict):
    """The breach queue

    Appeals whose clock ran out (the worker's 100 % warning), one entry per appeal, clock and cycle,
    oldest breach first: by default those not yet acknowledged."""
    acknowledged = None if args.get("all") else bool(args.get("acknowledged"))
    return {"items": [services.breach_view(b) for b in services.breaches(acknowledged=acknowledged)]}


@bp.route("/breaches/<int:breach_id>/acknowledge", methods=["POST"])
@token_required(*services.SUPERVISORS)
@bp.response(200, BreachSchema)
@bp.errors({404: "unknown breach"})
def breach_acknowledge(breach_id: int):
    """Acknowledge a breach (take it off the queue)

    The first acknowledgement is kept (a second answers the same); logged as `breach.acknowledge`."""
    return services.breach_view(services.acknowledge(g.api_user, breach_id))


@bp.route("/notifications", methods=["GET"])
@token_required("supervisor", "admin", "executor", session_ok=True)
@bp.query(NotificationQuerySchema)
@bp.response(200, NotificationListSchema)
def notification_list(args: dict):
    """The caller's notifications, newest first

    Supervisors and administrators: the supervisors' (breaches, 80 % warnings of appeals with no
    executor, extension requests); an executor's account: its executor's (hand-overs, 80 % warnings,
    decisions on its extension requests)."""
    rows = services.notifications_for(g.api_user, unread_only=bool(args.get("unread")))
    return {"items": [services.notification_view(n) for n in rows], "unread": services.unread_count(g.api_user)}


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@token_required("supervisor", "admin", "executor")
@bp.response(200, NotificationSchema)
@bp.errors({404: "unknown notification, or another group's"})
def notification_read(notification_id: int):
    """Mark a notification read"""
    return services.notification_view(services.mark_read(g.api_user, notification_id))
