"""``/api/v1/appeals``: register an appeal (finding or registering its citizen), read it, move it
along its lifecycle. The services write the history and the access log."""
from __future__ import annotations

from flask import g, request
from sqlalchemy.exc import IntegrityError

from crm.api import ApiError, Blueprint, translates, token_required
from crm.appeals import services as appeals
from crm.appeals.schemas import AppealCreatedSchema, AppealCreateSchema, AppealSchema, AppealSummarySchema, TransitionSchema
from crm.citizens import services as citizens
from crm.db import db
from crm.security.blind_index import normalise_name

OPERATORS = ("operator", "admin")

bp = Blueprint("api_appeals", __name__, description="Appeals: register, read, move along the lifecycle")


@translates(appeals.AppealError)
def _appeal_error(exc: appeals.AppealError) -> ApiError:
    if exc.code == "invalid":
        return ApiError(400, f"invalid_{exc.field or 'appeal'}", str(exc))
    return ApiError(409, exc.code, str(exc))  # erased, bad_transition


def _summary(appeal) -> dict:
    """The appeal without its (encrypted) description: nothing is decrypted, nothing to log."""
    data = appeals.as_dict(appeal)
    data.pop("description", None)
    return data


def _citizen_for(body: dict):
    """``(citizen, registered, duplicates)``: the citizen of ``citizen_id``, or the one with
    ``citizen.phone`` and the same name (case, spaces and ё/е ignored), else a new one
    (``registered``: added to the session, committed with the appeal) — then ``duplicates`` are the
    ids of the existing citizens with that phone (another name), which the look-up logged as
    ``citizen.search``; empty otherwise."""
    if ("citizen" in body) == ("citizen_id" in body):
        raise ApiError(400, "invalid_citizen", "укажите либо «citizen», либо «citizen_id»")
    if "citizen_id" in body:
        citizen = citizens.get(body["citizen_id"])
        if citizen is None:
            raise ApiError(404, "citizen_not_found", "заявитель не найден")
        return citizen, False, []
    data = citizens.CitizenData(**{k: body["citizen"].get(k) for k in
                                   ("full_name", "phone", "email", "address", "apartment")})
    name = normalise_name(data.full_name)
    same_phone = citizens.find_by_phone(data.phone)
    for found in same_phone:
        if normalise_name(found.full_name) == name:
            return found, False, []
    return citizens.register(data, commit=False), True, [c.id for c in same_phone]


def _create(body: dict, key: str | None):
    """``(appeal, possible_duplicates)``: see :func:`_citizen_for` for the second."""
    citizen, registered, duplicates = _citizen_for(body)
    appeal = appeals.create(citizen, category=body["category"], topic=body["topic"],
                            description=body["description"], channel=body.get("channel") or "api",
                            operator_id=g.api_user.id, submission_key=key)
    if registered and appeal.citizen_id != citizen.id:
        # A concurrent twin made the appeal after our look-up; the service returned it without
        # committing, so the citizen registered here is not wanted.
        db.session.rollback()
    return appeal, [cid for cid in duplicates if cid != appeal.citizen_id]


@bp.route("/appeals", methods=["POST"])
@token_required(*OPERATORS)
@bp.body(AppealCreateSchema)
@bp.response(201, AppealCreatedSchema, description=(
    "created (or, with a repeated Idempotency-Key, the appeal made the first time); `possible_duplicates` "
    "lists other citizens with the same phone"))
@bp.errors({404: "citizen_id unknown", 409: "the citizen's data were erased (code erased)"})
@bp.doc(parameters=[{
    "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 64},
    "description": "a retried POST with the same key returns the same appeal"}])
def appeal_create(body: dict):
    """Register an appeal

    Sets the SLA clocks and `repeat_of` (same citizen or building and topic within the repeat window).
    The description is not echoed back; GET /appeals/{id} returns it and logs the read. A `citizen` whose
    phone already belongs to citizens of other names is registered as a new citizen, and their ids are
    returned in `possible_duplicates` so the client can warn or offer to use one of them (`citizen_id`)
    next time. A retried POST with the same `Idempotency-Key` gets the appeal made the first time,
    without `possible_duplicates`, and looks up, registers and decrypts nothing."""
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key and len(key) > 64:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key длиннее 64 символов")
    appeal, duplicates = appeals.by_submission_key(key), None
    if appeal is None:
        try:
            appeal, duplicates = _create(body, key)
        except IntegrityError:
            # A concurrent request with the same key committed between the service's look-up and
            # our insert (the key is unique): take the appeal it made.
            db.session.rollback()
            appeal = appeals.by_submission_key(key)
            if appeal is None:
                raise
    data = _summary(appeal)
    if duplicates is not None:
        data["possible_duplicates"] = duplicates
    return data, 201, {"Location": f"{bp.url_prefix}/appeals/{appeal.id}"}


@bp.route("/appeals/<appeal_id>", methods=["GET"])
@token_required(*OPERATORS, "supervisor")
@bp.response(200, AppealSchema)
@bp.errors({404: "unknown id"})
def appeal_get(appeal_id: str):
    """An appeal with its citizen card (masked) and history; the read is logged"""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", "обращение не найдено")
    return appeals.view(appeal)


@bp.route("/appeals/<appeal_id>/transitions", methods=["POST"])
@token_required(*OPERATORS)
@bp.body(TransitionSchema)
@bp.response(200, AppealSummarySchema)
@bp.errors({404: "unknown id", 409: "the lifecycle table does not allow this transition (code bad_transition)"})
def appeal_transition(body: dict, appeal_id: str):
    """Move an appeal along its lifecycle"""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", "обращение не найдено")
    appeal = appeals.transition(appeal, body["status"], user_id=g.api_user.id, comment=body.get("comment"))
    return _summary(appeal)
