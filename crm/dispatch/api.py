"""``/api/v1/breaches`` (the supervisors' breach queue) and ``/api/v1/notifications`` (staff
notifications). The services own the transactions."""
from __future__ import annotations

from flask import g

from crm.api import ApiError, Blueprint, token_required
from crm.appeals import services as appeals
from crm.dispatch import services
from crm.i18n import lazy_gettext as _l
from crm.executors.schemas import SuggestionListSchema
from crm.appeals.schemas import AppealSummarySchema
from crm.dispatch.schemas import (BreachListSchema, BreachQuerySchema, BreachSchema, CommentSchema,
                                  ExtensionCreateSchema, ExtensionDecisionSchema, ExtensionListSchema, ExtensionSchema,
                                  NotificationListSchema, NotificationQuerySchema, NotificationSchema,
                                  RequiredCommentSchema, WorkAddressSchema, ExecutorStatsListSchema,
                                  ExecutorStatsSchema)

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


def _appeal(appeal_id: str):
    """The appeal the caller may see (an executor's account: only its executor's), or 404."""
    appeal = appeals.get_for(g.api_user, appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", _l("обращение не найдено"))
    return appeal


@bp.route("/appeals/<appeal_id>/executor-suggestions", methods=["GET"])
@token_required(*services.DISPATCHERS, session_ok=True)
@bp.response(200, SuggestionListSchema)
@bp.errors({404: "unknown appeal"})
def executor_suggestions(appeal_id: str):
    """The executors to hand the appeal over to, best first

    As Doma's auto-assignment: an active executor that serves the appeal's topic (or any topic) and its
    building (or any building); naming the topic and the building ranks first, the emergency dispatch
    next for an emergency, then the less loaded. `suggested_id` is the one the appeal page preselects."""
    ranked = services.suggestions(_appeal(appeal_id))
    return {"items": [services.suggestion_view(s) for s in ranked],
            "suggested_id": ranked[0].executor.id if ranked else None}


# --- the executor's workflow -----------------------------------------------------------------------

def _summary(appeal) -> dict:
    data = appeals.as_dict(appeal)
    data.pop("description", None)
    return data


_STEP_ERRORS = {404: "unknown appeal, or not handed over to the caller's executor",
                409: "the appeal's status does not allow it (code bad_transition)"}


@bp.route("/appeals/<appeal_id>/accept", methods=["POST"])
@token_required("executor")
@bp.body(CommentSchema)
@bp.response(200, AppealSummarySchema)
@bp.errors(_STEP_ERRORS)
def appeal_accept(body: dict, appeal_id: str):
    """The executor accepts the appeal (escalated → in_progress)"""
    return _summary(services.accept(g.api_user, _appeal(appeal_id), body.get("comment")))


@bp.route("/appeals/<appeal_id>/progress", methods=["POST"])
@token_required("executor")
@bp.body(RequiredCommentSchema)
@bp.response(200, AppealSummarySchema)
@bp.errors(_STEP_ERRORS)
def appeal_progress(body: dict, appeal_id: str):
    """The executor reports progress

    A history entry of kind `note` (encrypted comment); it counts as a status update (the 24-hour clock
    restarts)."""
    appeal = _appeal(appeal_id)
    services.report_progress(g.api_user, appeal, body["comment"])
    return _summary(appeal)


@bp.route("/appeals/<appeal_id>/done", methods=["POST"])
@token_required("executor")
@bp.body(RequiredCommentSchema)
@bp.response(200, AppealSummarySchema)
@bp.errors(_STEP_ERRORS)
def appeal_done(body: dict, appeal_id: str):
    """The executor reports the work done (→ resolved)

    The operator then tells the citizen and closes the appeal; the supervisors are notified."""
    return _summary(services.report_done(g.api_user, _appeal(appeal_id), body["comment"]))


@bp.route("/appeals/<appeal_id>/extension-requests", methods=["POST"])
@token_required("executor")
@bp.body(ExtensionCreateSchema)
@bp.response(201, ExtensionSchema)
@bp.errors({**_STEP_ERRORS, 400: "until not later than resolve_by or too far (invalid_until)",
            409: "a request already pending (code pending), or the appeal not in work (bad_transition)"})
def extension_create(body: dict, appeal_id: str):
    """The executor asks for more time, with a reason

    A supervisor approves (resolve_by moves to `until`; the clocks with a legal extension, 59-ФЗ's
    answer, run with it) or rejects it: POST /extension-requests/{id}/decision."""
    row = services.request_extension(g.api_user, _appeal(appeal_id), body["until"], body["reason"])
    return services.extension_view(row), 201


@bp.route("/appeals/<appeal_id>/extension-requests", methods=["GET"])
@token_required("executor", *services.SUPERVISORS, "operator")
@bp.response(200, ExtensionListSchema)
@bp.errors({404: "unknown appeal"})
def extension_list(appeal_id: str):
    """The appeal's extension requests, newest first"""
    return {"items": [services.extension_view(r) for r in services.extension_requests(appeal_id=_appeal(appeal_id).id)]}


@bp.route("/extension-requests", methods=["GET"])
@token_required(*services.SUPERVISORS)
@bp.response(200, ExtensionListSchema)
def extension_pending():
    """The extension requests waiting for a decision"""
    return {"items": [services.extension_view(r) for r in services.extension_requests(status="pending")]}


@bp.route("/extension-requests/<int:request_id>/decision", methods=["POST"])
@token_required(*services.SUPERVISORS)
@bp.body(ExtensionDecisionSchema)
@bp.response(200, ExtensionSchema)
@bp.errors({404: "unknown request", 409: "decided already (code decided), or the appeal no longer in work",
            400: "a rejection without a reason (invalid_comment)"})
def extension_decide(body: dict, request_id: int):
    """Approve or reject an extension request"""
    row = services.decide_extension(g.api_user, request_id, approve=body["approve"], comment=body.get("comment"))
    return services.extension_view(row)


@bp.route("/appeals/<appeal_id>/address", methods=["POST"])
@token_required("executor")
@bp.response(200, WorkAddressSchema)
@bp.errors({404: "unknown appeal, or not handed over to the caller's executor", 409: "the citizen's data were erased"})
def appeal_address(appeal_id: str):
    """The address the executor needs for the work

    A POST because it is a logged read: `citizen.reveal` of the address and apartment, purpose
    `appeal_processing`, detail `executor_work`. Nothing else of the citizen is shown."""
    return services.address_for_work(g.api_user, _appeal(appeal_id))


# --- each executor's load and lateness -------------------------------------------------------------

@bp.route("/executors/stats", methods=["GET"])
@token_required(*services.SUPERVISORS, session_ok=True)
@bp.response(200, ExecutorStatsListSchema)
def executor_stats_list():
    """Every executor's load and lateness, by name

    Open: appeals in its hands; overdue: of those, past their resolution deadline; the 30-day figures:
    appeals whose resolution deadline fell in the last 30 days and the share not resolved by it."""
    return {"items": services.executor_stats()}


@bp.route("/executors/<int:executor_id>/stats", methods=["GET"])
@token_required(*services.SUPERVISORS, session_ok=True)
@bp.response(200, ExecutorStatsSchema)
@bp.errors({404: "unknown executor"})
def executor_stats_one(executor_id: int):
    """One executor's load and lateness"""
    rows = services.executor_stats(executor_id=executor_id)
    if not rows:
        raise ApiError(404, "not_found", _l("исполнитель не найден"))
    return rows[0]
