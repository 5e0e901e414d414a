"""``/api/v1/appeals``: register an appeal (finding or registering its citizen), read it, move it
along its lifecycle. The services write the history and the access log."""
from __future__ import annotations

from flask import g, request
from sqlalchemy.exc import IntegrityError

from crm.api import ApiError, bp, token_required
from crm.api.openapi import check_body
from crm.appeals import services as appeals
from crm.citizens import services as citizens
from crm.db import db
from crm.errors import api_error
from crm.security.blind_index import normalise_name

OPERATORS = ("operator", "admin")


@bp.errorhandler(appeals.AppealError)
def _appeal_error(exc: appeals.AppealError):
    db.session.rollback()
    if exc.code == "invalid":
        return api_error(400, f"invalid_{exc.field or 'appeal'}", str(exc))
    return api_error(409, exc.code, str(exc))  # erased, bad_transition


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


@bp.post("/appeals")
@token_required(*OPERATORS)
def appeal_create():
    """201 with the appeal summary and ``possible_duplicates``: when the request registered a new
    citizen, the ids of the existing citizens with the same phone (the operator's form warns about
    them instead; clients keep working and may offer a merge). A retried POST with the same
    ``Idempotency-Key`` gets the appeal made the first time, without ``possible_duplicates``, and
    looks up, registers and decrypts nothing."""
    body = check_body("AppealCreate")
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


@bp.get("/appeals/<appeal_id>")
@token_required(*OPERATORS, "supervisor")
def appeal_get(appeal_id: str):
    """The appeal with description, citizen card (masked) and history; the read is logged."""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", "обращение не найдено")
    return appeals.view(appeal)


@bp.post("/appeals/<appeal_id>/transitions")
@token_required(*OPERATORS)
def appeal_transition(appeal_id: str):
    """``{"status", "comment"?}`` → 200 with the appeal summary; 409 when the lifecycle forbids it."""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", "обращение не найдено")
    body = check_body("Transition")
    appeal = appeals.transition(appeal, body["status"], user_id=g.api_user.id, comment=body.get("comment"))
    return _summary(appeal)
