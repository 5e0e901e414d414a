"""``/api/v1/calls/{id}/evaluations``: a supervisor scores a transcribed call."""
from __future__ import annotations

from flask import g

from crm.api import ApiError, Blueprint, token_required, translates
from crm.calls import services as calls
from crm.i18n import lazy_gettext as _l
from crm.qa import services as qa
from crm.qa.schemas import EvaluationCreateSchema, EvaluationSchema

bp = Blueprint("api_qa", __name__, description="Quality control: evaluations of calls")


@translates(qa.EvaluationError)
def _evaluation_error(exc: qa.EvaluationError) -> ApiError:
    if exc.code == "not_transcribed":
        return ApiError(409, exc.code, str(exc))
    if exc.code in ("erased", "recording_destroyed"):
        return ApiError(410, exc.code, str(exc))
    if exc.code == "no_consent":
        return ApiError(403, exc.code, str(exc))
    return ApiError(400, "invalid_answers", str(exc))


@bp.route("/calls/<call_id>/evaluations", methods=["POST"])
@token_required("supervisor", "admin")
@bp.body(EvaluationCreateSchema)
@bp.response(201, EvaluationSchema)
@bp.errors({404: "unknown id", 409: "the call is not transcribed yet (code not_transcribed)",
            410: "the citizen's data were erased (code erased) or the call's recording destroyed after a "
                 "QA-consent withdrawal (code recording_destroyed): the call cannot be scored"})
def evaluation_create(body: dict, call_id: str):
    """Score a transcribed call against the active scorecard

    ``{"answers": {criterion: "yes"|"no"|"na", or "0".."N" for a scale criterion}, "comment"?}`` → 201 with
    the evaluation on the active scorecard version (score 0–100, ``scorecard_version``, ``revision``,
    ``operator_status``, ``respond_by``); 403 ``no_consent`` when the citizen has not consented to quality
    control by recording (or withdrew or refused it since; a call tied to no citizen likewise); 409 while the
    call is not transcribed; 410 once the citizen's data were erased (``erased``) or the recording and
    transcript destroyed (``recording_destroyed``); 400 when an answer is missing or
    invalid."""
    call = calls.get(call_id)
    if call is None:
        raise ApiError(404, "not_found", _l("звонок не найден"))
    ev = qa.evaluate(call, evaluator=g.api_user, answers=body["answers"], comment=body.get("comment"))
    return qa.as_dict(ev), 201
