"""``/api/v1/incidents``: register outages and mass incidents, find the active ones for a caller's
address, attach calls, close them (:mod:`crm.incidents.services` does the work)."""
from __future__ import annotations

from flask import g

from crm.api import ApiError, Blueprint, token_required, translates
from crm.i18n import lazy_gettext as _l
from crm.incidents import services as incidents
from crm.incidents.schemas import (ActiveListSchema, ActiveQuerySchema, IncidentCallCreatedSchema, IncidentCallSchema,
                                   IncidentCloseSchema, IncidentCreateSchema, IncidentListSchema, IncidentSchema,
                                   ListQuerySchema, UnknownAddressSchema)

#: who registers incidents (the hotline learns of outages from the utilities by phone too)
CREATORS = ("operator", "supervisor", "admin")
#: who closes them (and so tells the citizens)
CLOSERS = ("supervisor", "admin")
STAFF = ("operator", "supervisor", "admin", "executor")

bp = Blueprint("api_incidents", __name__, description="Outages and mass incidents")


class UnknownAddress(ApiError):
    def __init__(self, exc: incidents.IncidentError):
        super().__init__(422, "unknown_address", str(exc))
        self.addresses = exc.details

    def to_json(self) -> dict:
        return {**super().to_json(), "addresses": list(self.addresses)}


@translates(incidents.IncidentError)
def _incident_error(exc: incidents.IncidentError) -> ApiError:
    if exc.code == "unknown_address":
        return UnknownAddress(exc)
    code = f"invalid_{exc.field or 'incident'}" if exc.code == "invalid" else exc.code
    err = ApiError(exc.status, code, str(exc))
    err.field = exc.field
    return err


def _found(incident_id: int):
    incident = incidents.get(incident_id)
    if incident is None:
        raise ApiError(404, "not_found", _l("инцидент не найден"))
    return incident


@bp.route("/incidents", methods=["POST"])
@token_required(*CREATORS)
@bp.body(IncidentCreateSchema)
@bp.response(201, IncidentSchema)
@bp.errors({400: "bad input (invalid_topic, invalid_kind, invalid_text, invalid_ends_at, invalid_addresses …)"})
@bp.alt_response(422, schema=UnknownAddressSchema, description=(
    "code unknown_address: some `addresses` are not in the buildings register (listed in `addresses`); nothing "
    "created"))
def incident_create(body: dict):
    """Register an outage or mass incident

    Covers the houses of `addresses` (matched to the buildings register in any usual spelling), or every house
    of a `street` or `district`. From `starts_at` (or up to CRM_INCIDENT_UPCOMING_H hours before, for planned work)
    until it is closed, the intake shows its `text` for every covered house, and appeals and calls may be
    linked to it. Logged as `incident.create`."""
    incident = incidents.create(g.api_user, topic=body["topic"], kind=body.get("kind") or "emergency",
                                text=body["text"], starts_at=body["starts_at"], ends_at=body.get("ends_at"),
                                addresses=body.get("addresses"), street=body.get("street"),
                                district=body.get("district"))
    return incidents.view(incident), 201, {"Location": f"{bp.url_prefix}/incidents/{incident.id}"}


@bp.route("/incidents", methods=["GET"])
@token_required(*STAFF)
@bp.query(ListQuerySchema)
@bp.response(200, IncidentListSchema)
def incident_list(args: dict):
    """Incidents, open ones first, then the newest (at most 200)"""
    return {"items": [incidents.view(i) for i in incidents.listing(status=args.get("status"))]}


@bp.route("/incidents/active", methods=["GET"])
@token_required(*STAFF, session_ok=True)
@bp.query(ActiveQuerySchema)
@bp.response(200, ActiveListSchema)
@bp.errors({400: "neither address nor building_id (code invalid_address)"})
def incident_active(args: dict):
    """The open incidents covering a caller's house

    For `address` (any spelling; a house not in the register still matches a street or district incident) or
    the register's `building_id`: incidents started, or starting within CRM_INCIDENT_UPCOMING_H (24) hours, not
    closed. A neighbouring house is not covered. A signed-in staff browser may call it without a token (the
    intake page's script)."""
    if not (args.get("address") or "").strip() and args.get("building_id") is None:
        raise ApiError(400, "invalid_address", _l("укажите адрес (address) или дом реестра (building_id)"))
    found = incidents.active_for(building_id=args.get("building_id"), address=args.get("address"),
                                 topic=args.get("topic"))
    return {"items": [incidents.brief(i) for i in found]}


@bp.route("/incidents/<int:incident_id>", methods=["GET"])
@token_required(*STAFF)
@bp.response(200, IncidentSchema)
@bp.errors({404: "unknown id"})
def incident_get(incident_id: int):
    """An incident with its houses, `appeals_count`, `calls_count` and the ПП 354 recalculation flag"""
    return incidents.view(_found(incident_id))


@bp.route("/incidents/<int:incident_id>/close", methods=["POST"])
@token_required(*CLOSERS)
@bp.body(IncidentCloseSchema)
@bp.response(200, IncidentSchema)
@bp.errors({404: "unknown id", 409: "already closed (code incident_closed)", 400: "text missing (invalid_text)"})
def incident_close(body: dict, incident_id: int):
    """Close an incident: its appeals are resolved and their citizens told

    Each linked appeal still being worked on moves to «Выполнено» with `text` as the comment for the citizen, and
    the status notification goes to each citizen who consented to notifications (nobody else). A second close is
    refused (409), so nobody is told twice. Logged as `incident.close`."""
    _found(incident_id)
    return incidents.view(incidents.close(g.api_user, incident_id, text=body["text"]))


@bp.route("/incidents/<int:incident_id>/calls", methods=["POST"])
@token_required("operator", "admin")
@bp.body(IncidentCallSchema)
@bp.response(201, IncidentCallCreatedSchema)
@bp.errors({404: "unknown incident or citizen", 409: "the incident is closed (incident_closed)",
            400: "call_id not a waiting recording of this citizen (invalid_call_id)"})
def incident_call(body: dict, incident_id: int):
    """Attach a call to an incident instead of opening an appeal

    The incident counts it (`calls_count`). Logged as `incident.call`, naming the caller."""
    _found(incident_id)
    row = incidents.attach_call(g.api_user, incident_id, citizen_id=body["citizen_id"], call_id=body.get("call_id"))
    return {"id": row.id, "incident_id": row.incident_id,
            "calls_count": incidents.counts(row.incident_id)["calls_count"]}, 201
