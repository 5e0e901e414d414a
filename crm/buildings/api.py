"""``/api/v1/buildings``: the register's autocomplete, for the intake form's script (signed-in
browser) and for integrations (bearer token)."""
from __future__ import annotations

from crm.api import Blueprint, token_required
from crm.buildings import services as buildings
from crm.buildings.schemas import BuildingListSchema, BuildingQuerySchema

#: the staff who take or handle appeals
STAFF = ("operator", "supervisor", "admin", "executor")

bp = Blueprint("api_buildings", __name__, description="Buildings register: autocomplete by address")


@bp.route("/buildings", methods=["GET"])
@token_required(*STAFF, session_ok=True)
@bp.query(BuildingQuerySchema)
@bp.response(200, BuildingListSchema)
@bp.errors({400: "q longer than 200 characters or limit outside 1–50 (code invalid_q, invalid_limit)"})
def buildings_search(args: dict):
    """Buildings whose address matches q: each word of q, in any usual spelling, starts a word of the address

    Matched on the normalised address (case, ё/е, punctuation, ул./улица, д./дом, к./корпус … do not
    matter); «ленина 5» finds «ул. Ленина, 5» and «5а», not «15». Exact matches first; at most
    ``limit`` (20). An empty q answers no items. A signed-in staff browser may call it without a token."""
    return {"items": [buildings.view(b) for b in buildings.search(args["q"], args["limit"])]}
