"""Telephony pages: «Обратные звонки» (the callback worklist: operators, supervisors, administrators)
«Очередь звонков» (the live queue board: supervisors, administrators) and «Журнал звонков» (the
caller log: supervisors, administrators)."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.errors import CrmError
from crm.i18n import N_
from crm.security.permissions import roles_required
from crm.telephony import inbox, pop, services, surge
from crm.users import services as users

bp = Blueprint("telephony", __name__)

CALLBACK_ROLES = ("operator", "supervisor", "admin")
POP_ROLES = ("operator", "admin")
BOARD_ROLES = ("supervisor", "admin")
OUTCOMES_RU = {"reached": N_("дозвонились"), "no_answer": N_("не ответил"), "busy": N_("занято"),
               "wrong_number": N_("неверный номер")}
AGENT_STATES_RU = {"talking": N_("разговаривает"), "available": N_("свободен"), "paused": N_("на перерыве"),
                   "logged_off": N_("не в сети")}


def call_origin(call_id: str, source: str | None) -> tuple[str, str]:
    """``(where it came from, the PBX's own call id)`` for people: the webhook without a source
    («АТС»), a named PBX, the simulator, or Asterisk's queue_log imported by ``crm telephony
    import-queue-log`` (its calls are keyed ``<source>:<uniqueid>``: the prefix is shown as the origin,
    not as part of the id)."""
    if source and call_id.startswith(f"{source}:"):
        return _("журнал очереди АТС (%(source)s)", source=source), call_id[len(source) + 1:]
    if source == "simulator":
        return _("симулятор"), call_id
    if source:
        return _("АТС «%(source)s»", source=source), call_id
    return _("АТС"), call_id


@bp.app_context_processor
def telephony_labels():
    """The outcome and agent-state labels in the request's language, for the pages and the board's script."""
    return {"call_origin": call_origin, "OUTCOMES_RU": {k: _(v) for k, v in OUTCOMES_RU.items()},
            "AGENT_STATES_RU": {k: _(v) for k, v in AGENT_STATES_RU.items()},
            "CALL_STATES_RU": {k: _(v) for k, v in CALL_STATES_RU.items()},
            "DIRECTIONS_RU": {k: _(v) for k, v in DIRECTIONS_RU.items()}}


def _worklist(revealed: dict[str, str] | None = None):
    inbox.settle(1.0)  # abandons the PBX reported a moment ago are on the list
    items = [services.callback_dict(c) for c in services.open_callbacks()]
    return render_template("telephony/callbacks.html", items=items, revealed=revealed or {},
                           outcomes=services.ATTEMPT_OUTCOMES)


@bp.get("/telephony/callbacks")
@roles_required(*CALLBACK_ROLES)
def callback_page():
    """The worklist: abandoned calls to call back, earliest deadline first; no number until revealed."""
    return _worklist()


@bp.post("/telephony/callbacks/<call_id>/reveal")
@roles_required(*CALLBACK_ROLES)
def callback_reveal(call_id: str):
    """Show the caller's number of one worklist item, to dial it; logged (``telephony.reveal``).
    404 for a call that is not on the worklist: never abandoned, or already called back."""
    call = services.by_id(call_id)
    if call is None or call.callback_due_at is None or call.callback_done_at is not None:
        abort(404)
    return _worklist({call.id: services.reveal_caller(call, current_user)})


@bp.post("/telephony/callbacks/<call_id>/attempt")
@roles_required(*CALLBACK_ROLES)
def callback_attempt(call_id: str):
    """Log a callback attempt with its outcome; «дозвонились» clears the item. Logged."""
    call = services.by_id(call_id)
    if call is None:
        abort(404)
    try:
        services.log_attempt(call, request.form.get("outcome", ""), user=current_user)
        flash(_("Попытка обратного звонка записана."), "success")
    except CrmError as exc:
        flash(str(exc), "error")
    return redirect(url_for("telephony.callback_page"))


@bp.get("/telephony/queue")
@roles_required(*BOARD_ROLES)
def queue_page():
    """The queue board; its script refreshes the figures from GET /api/v1/telephony/queue every 5 s."""
    inbox.settle(1.0)
    board = services.queue_board()
    surge.with_links(board["surge"])
    board["date_ru"] = date.fromisoformat(board["date"]).strftime("%d.%m.%Y")  # dd.mm.yyyy, as Russian pages write dates
    return render_template("telephony/queue.html", board=board)


CALL_STATES_RU = {"waiting": N_("ждёт ответа"), "answered": N_("идёт разговор"), "abandoned": N_("потерян"),
                  "ended": N_("завершён")}
DIRECTIONS_RU = {"in": N_("входящий"), "out": N_("исходящий")}
LOG_PAGE_SIZE = 50


def _log_row(call) -> dict:
    """A caller-log row: the record as the API gives it, the operator's full name, the linked appeals."""
    row = services.as_dict(call)
    account = users.get_by_username(call.operator) if call.operator else None
    row["operator_name"] = (account.full_name or account.username) if account is not None else call.operator
    row["appeals"] = pop.linked_appeals(call.id)
    return row


@bp.get("/telephony/calls")
@roles_required(*BOARD_ROLES)
def call_log_page():
    """«Журнал звонков»: the PBX's calls newest first, filtered by the GET form, keyset-paged (``cursor``).
    No number is shown; like the queue board, viewing is not logged (nothing personal is decrypted)."""
    inbox.settle(1.0)
    params = {k: (request.args.get(k) or "").strip() for k in services.LOG_FILTERS if (request.args.get(k) or "").strip()}
    try:
        page = services.call_log(**services.log_filters(params), limit=LOG_PAGE_SIZE, cursor=request.args.get("cursor") or None)
    except CrmError as exc:
        return render_template("telephony/calls.html", rows=[], page=None, params=params, filter_error=str(exc),
                               states=CALL_STATES_RU, directions=DIRECTIONS_RU), 400
    return render_template("telephony/calls.html", rows=[_log_row(c) for c in page.items], page=page, params=params,
                           filter_error=None, states=CALL_STATES_RU, directions=DIRECTIONS_RU)


@bp.get("/telephony/pop")
@roles_required(*POP_ROLES)
def pop_poll():
    """The signed-in operator's pending screen pop, polled by ``pop.js`` every few seconds:
    ``{"call": <call record id> | null, "card": <the card's URL> | null, "poll_s"}``. Only ids: nothing
    is decrypted or logged; a pop is only ever the requesting user's own (:func:`crm.telephony.pop.pending`)."""
    call = pop.pending(current_user)
    resp = jsonify({"call": call.id if call else None, "card": url_for("telephony.pop_card") if call else None,
                    "poll_s": current_app.config["CRM_TELEPHONY_POP_POLL_S"]})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/telephony/pop/card")
@roles_required(*POP_ROLES)
def pop_card():
    """The requesting operator's screen pop card (an HTML fragment the page inserts; its ``data-call``
    names the call record): the caller, their open appeals, the incidents at their house, their
    consents, and «Новое обращение» (Enter). 404 when no pop waits for this user: there is no way to
    ask for another's. Each display is logged (``telephony.pop``)."""
    call = pop.pending(current_user)
    if call is None:
        abort(404)
    card = pop.card(call, current_user)
    ref = pop.intake_reference(call, current_user)  # the appeal is linked to this call even after the hang-up
    intake = url_for("appeals.appeal_new", citizen_id=card.citizen_id, call_ref=ref) if card.citizen_id \
        else url_for("appeals.operator_home", call=call.id, call_ref=ref)
    return render_template("telephony/_pop.html", card=card, intake=intake)
