"""``/api/v1/citizens``: lookup by phone and the citizen card. Every read goes through
:mod:`crm.citizens.services`, which writes the access-log entry."""
from __future__ import annotations

from crm.api import ApiError, Blueprint, token_required, translates
from crm.citizens import services as citizens
from crm.citizens.schemas import CitizenCardSchema, CitizenListSchema, PhoneQuerySchema, PhoneSearchSchema, RevealQuerySchema

PURPOSE = "appeal_processing"

bp = Blueprint("api_citizens", __name__, description="Citizens: look-up by phone, the card")


@translates(citizens.CitizenError)
def _citizen_error(exc: citizens.CitizenError) -> ApiError:
    return ApiError(400, f"invalid_{exc.field or 'citizen'}", str(exc))


@bp.route("/citizens", methods=["GET"])
@token_required("operator", "admin")
@bp.query(PhoneQuerySchema)
@bp.response(200, CitizenListSchema)
@bp.errors({400: "not a valid Russian phone number (code invalid_phone)"})
def citizens_by_phone(args: dict):
    """Find citizens by phone (any spelling); each match is logged. The number is in the URL: prefer POST /citizens/search

    ``{"items": [card]}`` (masked cards; an empty list when none)."""
    found = citizens.find_by_phone(args["phone"], purpose=PURPOSE)
    return {"items": [citizens.view(c, purpose=PURPOSE) for c in found]}


@bp.route("/citizens/search", methods=["POST"])
@token_required("operator", "admin")
@bp.body(PhoneSearchSchema)
@bp.response(200, CitizenListSchema)
@bp.errors({400: "malformed JSON or not a valid Russian phone number (code invalid_json, invalid_phone)"})
def citizens_search(body: dict):
    """Find citizens by phone, the number in the JSON body; each match is logged

    The same search and response as GET /citizens?phone=, but the number travels in the request body, so it
    stays out of URLs and therefore out of web-server, proxy and gateway access logs and browser history.
    Prefer this to GET /citizens?phone= (which is kept for compatibility)."""
    found = citizens.find_by_phone(body["phone"], purpose=PURPOSE)
    return {"items": [citizens.view(c, purpose=PURPOSE) for c in found]}


@bp.route("/citizens/<citizen_id>", methods=["GET"])
@token_required("operator", "admin")
@bp.query(RevealQuerySchema)
@bp.response(200, CitizenCardSchema)
@bp.errors({404: "unknown id"})
def citizen_card(args: dict, citizen_id: str):
    """A citizen's card; phone and address masked unless reveal=true (logged as a reveal)"""
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise ApiError(404, "not_found", "заявитель не найден")
    reveal = args.get("reveal", "").lower() in ("1", "true", "yes")
    return citizens.view(citizen, purpose=PURPOSE, reveal=reveal)
