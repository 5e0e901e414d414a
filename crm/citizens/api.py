"""``/api/v1/citizens``: lookup by phone and the citizen card. Every read goes through
:mod:`crm.citizens.services`, which writes the access-log entry."""
from __future__ import annotations

from flask import request

from crm.api import ApiError, bp, token_required
from crm.api.openapi import check_body
from crm.citizens import services as citizens
from crm.db import db
from crm.errors import api_error

PURPOSE = "appeal_processing"


@bp.errorhandler(citizens.CitizenError)
def _citizen_error(exc: citizens.CitizenError):
    db.session.rollback()
    return api_error(400, f"invalid_{exc.field or 'citizen'}", str(exc))


@bp.get("/citizens")
@token_required("operator", "admin")
def citizens_by_phone():
    """``?phone=`` in any spelling → ``{"items": [card]}`` (masked cards; an empty list when none)."""
    found = citizens.find_by_phone(request.args.get("phone", ""), purpose=PURPOSE)
    return {"items": [citizens.view(c, purpose=PURPOSE) for c in found]}


@bp.post("/citizens/search")
@token_required("operator", "admin")
def citizens_search():
    """``{"phone": "..."}`` → the same ``{"items": [card]}`` as ``GET /citizens?phone=``, with the
    number in the body, so it stays out of URLs (server, proxy and gateway logs)."""
    body = check_body("PhoneSearch")
    found = citizens.find_by_phone(body["phone"], purpose=PURPOSE)
    return {"items": [citizens.view(c, purpose=PURPOSE) for c in found]}


@bp.get("/citizens/<citizen_id>")
@token_required("operator", "admin")
def citizen_card(citizen_id: str):
    """The citizen's card; ``?reveal=true`` shows phone, e-mail and address (logged as a reveal)."""
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise ApiError(404, "not_found", "заявитель не найден")
    reveal = request.args.get("reveal", "").lower() in ("1", "true", "yes")
    return citizens.view(citizen, purpose=PURPOSE, reveal=reveal)
