"""``/api/v1/citizens``: lookup by phone and the citizen card. Every read goes through
:mod:`crm.citizens.services`, which writes the access-log entry."""
from __future__ import annotations

from flask import g

from crm.api import ApiError, Blueprint, token_required, translates
from crm.citizens import services as citizens
from crm.citizens.schemas import (CitizenCardSchema, CitizenListSchema, CitizenRectifiedSchema, CitizenRectifySchema,
                                  PhoneQuerySchema, PhoneSearchSchema, RectifyConflictSchema, RevealQuerySchema)
from crm.i18n import lazy_gettext as _l

PURPOSE = "appeal_processing"

bp = Blueprint("api_citizens", __name__, description="Citizens: look-up by phone, the card")


@translates(citizens.CitizenError)
def _citizen_error(exc: citizens.CitizenError) -> ApiError:
    return ApiError(400, f"invalid_{exc.field or 'citizen'}", str(exc))


class PhoneInUse(ApiError):
    """409 ``phone_in_use``: the corrected phone belongs to other citizens; nothing was changed.
    Carries their ``citizen_ids`` (ids only: no other citizen's data is shown)."""

    def __init__(self, exc: citizens.PhoneInUse):
        super().__init__(409, "phone_in_use", _l("%(reason)s («confirm_duplicate»: true)", reason=exc.args[0]))
        self.citizen_ids = exc.citizen_ids

    def to_json(self) -> dict:
        return {**super().to_json(), "citizen_ids": self.citizen_ids}


@translates(citizens.PhoneInUse)
def _phone_in_use(exc: citizens.PhoneInUse) -> ApiError:
    return PhoneInUse(exc)


#: RFC 9745 ``Deprecation`` (the date the GET alias was deprecated, as a structured-field date) and
#: RFC 8594 ``Link`` to its successor: the phone number in a URL ends up in request logs, proxies
#: and browser history (crm/weblog.py).
DEPRECATION_HEADERS = {"Deprecation": "@1796515200",  # 2026-12-06T00:00:00Z
                       "Link": '</api/v1/citizens/search>; rel="successor-version"'}


@bp.route("/citizens", methods=["GET"])
@token_required("operator", "admin")
@bp.query(PhoneQuerySchema)
@bp.response(200, CitizenListSchema, headers={
    "Deprecation": {"description": "RFC 9745: this alias is deprecated", "schema": {"type": "string"}},
    "Link": {"description": "the successor, POST /api/v1/citizens/search", "schema": {"type": "string"}}})
@bp.errors({400: "not a valid Russian phone number (code invalid_phone)"})
@bp.doc(deprecated=True)
def citizens_by_phone(args: dict):
    """Deprecated alias of POST /citizens/search: the phone number in the URL leaks into logs

    ``{"items": [card]}`` (masked cards; an empty list when none); each match is logged. Kept for
    compatibility (design.md lists it); answers carry a ``Deprecation`` header and a ``Link`` to the
    successor. Request logs drop the query string, but proxies and clients may not."""
    found = citizens.find_by_phone(args["phone"], purpose=PURPOSE)
    return {"items": [citizens.view(c, purpose=PURPOSE) for c in found]}, 200, DEPRECATION_HEADERS


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
        raise ApiError(404, "not_found", _l("заявитель не найден"))
    reveal = args.get("reveal", "").lower() in ("1", "true", "yes")
    return citizens.view(citizen, purpose=PURPOSE, reveal=reveal)


@bp.route("/citizens/<citizen_id>", methods=["PATCH"])
@token_required(*citizens.RECTIFIERS)
@bp.body(CitizenRectifySchema)
@bp.response(200, CitizenRectifiedSchema)
@bp.errors({400: "a bad value (code invalid_<field>)", 404: "unknown id"})
@bp.alt_response(409, schema=RectifyConflictSchema, description=(
    "the citizen's data were erased (code erased), or the new phone belongs to other citizens and "
    "`confirm_duplicate` is not true (code phone_in_use, their ids in `citizen_ids`); nothing changed"))
def citizen_rectify(body: dict, citizen_id: str):
    """Correct a citizen's name, phone, e-mail or address (152-ФЗ ст. 21 ч. 2); operator or DPO

    Blind indexes follow the new values (the citizen is found by the new phone, no longer by the old). The
    access log names the fields changed, never the old or new values. Answers the names of the fields changed.
    A phone that already belongs to other citizens is refused as at registration (409 `phone_in_use`, their
    `citizen_ids`, nothing changed) unless `confirm_duplicate` is true (a shared number, e.g. a household's)."""
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise ApiError(404, "not_found", _l("заявитель не найден"))
    if citizen.erased_at is not None:
        raise ApiError(409, "erased", _l("данные заявителя уничтожены"))
    purpose = "data_subject_request" if g.api_user.role == "dpo" else PURPOSE
    changes = {k: v for k, v in body.items() if k != "confirm_duplicate"}
    return {"id": citizen.id, "changed": citizens.rectify(citizen, changes, user=g.api_user, purpose=purpose,
                                                          confirm_duplicate=bool(body.get("confirm_duplicate")))}
