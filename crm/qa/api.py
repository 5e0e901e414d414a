"""``/api/v1/calls/{id}/evaluations``: a supervisor scores a transcribed call."""
from __future__ import annotations

from flask import g

from crm.api import ApiError, bp, token_required
from crm.api.openapi import check_body
from crm.calls import services as calls
from crm.db import db
from crm.errors import api_error
from crm.qa import services as qa


@bp.errorhandler(qa.EvaluationError)
def _evaluation_error(exc: qa.EvaluationError):
    db.session.rollback()
    if exc.code == "not_transcribed":
        return api_error(409, exc.code, str(exc))
    return api_error(400, "invalid_answers", str(exc))


@bp.post("/calls/<call_id>/evaluations")
@token_required("supervisor", "admin")
def evaluation_create(call_id: str):
    """``{"answers": {criterion: "yes"|"no"|"na", or "0".."N" for a scale criterion}, "comment"?}``
    → 201 with the evaluation on the active scorecard version (score 0–100, ``scorecard_version``,
    ``revision``, ``operator_status``, ``respond_by``); 409 while the call is not transcribed; 400
    when an answer is missing or invalid."""
    call = calls.get(call_id)
    if call is None:
        raise ApiError(404, "not_found", "звонок не найден")
    body = check_body("EvaluationCreate")
    ev = qa.evaluate(call, evaluator=g.api_user, answers=body["answers"], comment=body.get("comment"))
    return qa.as_dict(ev), 201
